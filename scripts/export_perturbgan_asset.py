"""Copy a `train perturbgan` run into the app's shipped checkpoint (weights only) and score it.

    python scripts/export_perturbgan_asset.py --run runs/bench/perturbgan/small-default/gan \
        --oracle runs/bench/perturbgan/small-default/oracle --out assets/perturbgan-small \
        --trained-with "python -m workbench bench perturbgan --preset small ..."

1. writes the weights-only checkpoint (:func:`workbench.methods.move_assets.export_weights_only`:
   config, step, modules and EMA; no optimizer or RNG state: it loads, it does not resume);
2. loads the *copy* back and scores it as ``python -m workbench bench perturbgan`` does: the
   generated-mask IoU against the oracle on ``--n`` composites (table 3.1), and the separation
   figures of issue 16 (:func:`workbench.eval.separation.score_separation`: object in the
   background against its floor on true empty backgrounds, mask diversity against the true masks',
   centroid correlation, mask area against the true object area, detected share) with the ghost
   test of its discriminator (AUCs of real scenes against a duplicated object, a wrong-mask seam, a
   moved object and its own composites), on the scene preset of the run's ``synthetic:PRESET``;
3. writes ``OUT/metrics.json`` (the separation record under ``"separation"``), the Triplet
   browser's figure 3.3 for seeds 0-7 as ``OUT/triplets.png`` and ``OUT/README.md`` (what the
   folder holds, the exact commands, the scores and the separation figures), and prints the metrics.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from apps.tabs.triplet_browser import figure_grid  # noqa: E402
from workbench.data.build import scene_preset  # noqa: E402
from workbench.eval.asset_scores import separation_table  # noqa: E402
from workbench.eval.separation import score_separation  # noqa: E402
from workbench.eval.perturbgan import generated_mask_scores  # noqa: E402
from workbench.train.checkpoint import load_method, read_checkpoint  # noqa: E402
from workbench.methods.move_assets import export_weights_only  # noqa: E402


def _readme(*, name: str, gan, metrics: dict, export_command: str, trained_with: list[str]) -> str:
    """OUT/README.md: what the folder holds, how it was made, and the scores."""
    c = gan.config
    made = "\n".join(trained_with) if trained_with else f"# the run {metrics['source']} (full config: config.json)"
    return f"""# `{name}`: the PerturbGAN checkpoint the Triplet browser loads

A workbench checkpoint of `perturbgan` (chapter 3), weights only (no optimizer or RNG state: it
loads, it does not resume), {metrics['size_mb']:.1f} MB: the two StyleGAN generators and the
discriminator (`modules.safetensors`), the EMA generators used for sampling (`ema.safetensors`),
the config and the step ({gan.step}). `metrics.json` holds the scores below; `triplets.png` is the
Triplet browser's figure 3.3 for seeds 0–7.

Load it with `workbench.train.load_method("assets/{name}")`, or train an encoder on it with
`python -m workbench train perturbgan-encoder --gan assets/{name}`.

## How it was made

From the repository root, seed {c.seed}:

```bash
{made}
{export_command}
```

`{c.dataset}` at {c.resolution} px, two generators of widths {c.width} to {c.max_width}, z = {c.z_dim},
w = {c.w_dim}, {c.mapping_layers} mapping layers, batch {c.batch_size}, {c.steps:,} steps, δ = {c.max_shift}·R,
η = {c.min_mask:g}, γ₁ = {c.size_weight:g}, γ₂ = {c.binary_weight:g}.

## Scores (the exported copy, re-scored by the script)

| measure | value |
|---|---:|
| generated-mask IoU against the oracle U-Net, {metrics['detected']:,} detected of {metrics['n']:,} composites | {metrics['gen_mask_iou']:.3f} |
| full-mask reference IoU (detected) | {metrics['full_mask_ref_iou']:.3f} |

## Does the generator separate object from background? (issue 16)

{separation_table(metrics['separation'])}
"""


def main(argv: list[str] | None = None) -> dict:
    """Export, reload and score (see the module docstring); returns the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the `train perturbgan` run (or checkpoint)")
    parser.add_argument("--oracle", type=Path, required=True, help="an `oracle-unet` run trained on the same scenes")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "perturbgan-small")
    parser.add_argument("--n", type=int, default=1000,
                        help="generated composites scored against the oracle (IoU and separation figures)")
    parser.add_argument("--ghost-n", type=int, default=200, help="test scenes of the discriminator's ghost test")
    parser.add_argument("--trained-with", action="append", default=[],
                        help="a command that trained the runs, written verbatim into OUT/README.md (repeatable)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/export_perturbgan_asset.py",
                          *(sys.argv[1:] if argv is None else argv)])

    try:
        run = read_checkpoint(args.run, method="perturbgan")
        oracle_source = read_checkpoint(args.oracle, method="oracle-unet").path
        preset = scene_preset(run.config["dataset"])  # the separation figures need the true scenes
    except (OSError, ValueError) as error:  # CheckpointError: no checkpoint, another method, damaged files
        raise SystemExit(str(error)) from None
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first")
    source = run.path
    config = json.loads((source / "config.json").read_text())
    export_weights_only(source, args.out, config=config, half=False)

    gan = load_method(args.out, method="perturbgan")
    oracle = load_method(oracle_source, method="oracle-unet")
    scores = generated_mask_scores(gan, oracle, n=args.n)
    separation = score_separation(gan, oracle, preset=preset, n=args.n, ghost_n=args.ghost_n,
                                  oracle_path=str(args.oracle))
    grid = figure_grid(gan, seed=0, seeds=8, cell=96)  # (H, W, 3) in [0, 1], the tab's figure 3.3
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(args.out / "triplets.png")
    size_mb = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
    metrics = {**scores, "source": str(source), "step": gan.step, "size_mb": round(size_mb, 2),
               "separation": separation}
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.out / "README.md").write_text(_readme(name=args.out.name, gan=gan, metrics=metrics, export_command=command,
                                                trained_with=args.trained_with))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
