"""Copy a `layered` run and its `layered-post` run into the app's shipped checkpoints (weights only); score them.

    python scripts/export_layered_asset.py --run runs/bench/layered/small-c/gan \
        --post runs/bench/layered/small-c/post --oracle runs/bench/layered/small-c/oracle \
        --out assets/layered-small \
        --trained-with "python -m workbench bench layered --preset small --setting c ..."

1. writes the weights-only checkpoints ``OUT/gan`` and ``OUT/post``
   (:func:`workbench.methods.move_assets.export_weights_only`: config, step, modules and EMA; no
   optimizer or RNG state: they load, they do not resume). The post-trained U-Net's config names
   ``OUT/gan`` as its ``generator``, relative to the working directory when ``OUT`` lies inside it
   (the Triplet browser also looks for it relative to the folders above ``OUT/post``);
2. loads the *copies* back (the U-Net as the Triplet browser loads it) and scores both segmenters
   of table 4.1 as ``python -m workbench bench layered`` does: the joint one (the discriminator's
   mask channel, settings a-c) and the post-trained U-Net, with
   :func:`workbench.eval.segmenter.evaluate_segmenter` on the first ``--n`` test scenes of the
   run's dataset at its resolution and seed; and the generator as the bench does, against the
   ``--oracle`` U-Net (an ``oracle-unet`` run on the same scenes): the separation figures of issue 16
   (:func:`workbench.eval.separation.score_separation`: generated-mask IoU, detected share, object
   in the background against its floor on true empty backgrounds, mask diversity against the true
   masks', centroid correlation, mask area against the true object area) and the ghost test of its
   discriminator, on the scene preset of the run's ``synthetic:PRESET``;
3. writes ``OUT/metrics.json`` (the generator's record under ``"separation"``), the Triplet
   browser's figure for seeds 0-7 with the segmenters' rows as ``OUT/triplets.png``, and
   ``OUT/README.md`` (what the folder holds, the exact commands, the scores and the separation
   figures), and prints the metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from apps.tabs.triplet_browser import figure_grid, load_segmenter  # noqa: E402
from workbench.data.build import scene_preset  # noqa: E402
from workbench.data import build_dataset, require_masks  # noqa: E402
from workbench.eval.asset_scores import separation_table  # noqa: E402
from workbench.eval.separation import score_separation  # noqa: E402
from workbench.eval.segmenter import evaluate_segmenter  # noqa: E402
from workbench.train.checkpoint import find_checkpoint, load_method, read_checkpoint  # noqa: E402
from workbench.methods.move_assets import export_weights_only  # noqa: E402

SEEDS = 8  # columns of OUT/triplets.png
SCORES = (("iou", "IoU"), ("accuracy", "pixel accuracy"), ("max_f_beta", "max F_β (β² = 0.3)"))  # README columns

# helpers


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _recorded_path(folder: Path) -> str:
    """``folder`` relative to the working directory when it lies inside it, else absolute."""
    relative = os.path.relpath(folder.resolve())
    return Path(relative).as_posix() if not relative.startswith("..") else folder.resolve().as_posix()


def _check_pair(gan_source: Path, post_config: dict) -> None:
    """Refuse a U-Net that was post-trained on another generator than ``gan_source``."""
    generator = Path(post_config.get("generator", "")).expanduser()
    if not post_config.get("generator") or not generator.exists():
        print(f"note: the U-Net's generator {post_config.get('generator')!r} is not here; pairing not checked")
        return
    if find_checkpoint(generator).resolve() != gan_source.resolve():
        raise SystemExit(f"the U-Net was post-trained on {find_checkpoint(generator)}, not on {gan_source}; "
                         "pass the `layered` run it was trained on as --run")


def _readme(*, name: str, gan, post, metrics: dict, export_command: str, trained_with: list[str]) -> str:
    """OUT/README.md: what the folder holds, how it was made, and the scores."""
    c, p = gan.config, post.config
    max_mask = f", mask area ≤ {c.max_mask:g} (the workbench's `max_mask`)" if c.max_mask < 1 else ""
    made = "\n".join(trained_with) if trained_with else (
        f"# the runs {metrics['source_gan']} and {metrics['source_post']} (full configs: gan/config.json, "
        "post/config.json)")
    rows = [("joint segmenter: the discriminator's mask channel", metrics["joint"]),
            ("post-trained U-Net (`layered-post`)", metrics["post"])]
    table = "\n".join(
        f"| {name} | " + " | ".join("–" if scores is None else f"{scores[key]:.3f}" for key, _ in SCORES) + " |"
        for name, scores in rows)
    no_joint = "" if metrics["joint"] is not None else (
        f"\nSetting ({c.setting}) has no joint segmenter; only the post-trained U-Net is scored.\n")
    return f"""# `{name}`: the chapter-4 checkpoints the Triplet browser loads

Workbench checkpoints, weights only (no optimizer or RNG state: they load, they do not resume),
{metrics['size_mb']:.1f} MB in all:

- `gan/`: a conditional layered GAN (`layered`, chapter 4) of table 4.1's setting ({c.setting}):
  {metrics['setting_title']}.
  The generator and the discriminator (`modules.safetensors`) and the EMA generator used for
  sampling (`ema.safetensors`), step {gan.step};
- `post/`: a U-Net post-trained on that frozen generator's composites and masks (`layered-post`,
  section 4.1.2), step {post.step}; its config names `gan/` as its `generator`.

`metrics.json` holds the scores below; `triplets.png` is the Triplet browser's figure for seeds
0–{SEEDS - 1}: background, foreground, mask, the segmenters' predictions on the composite (with
each column's IoU against the generated mask), F ⊙ m and the composite.

Load them with `workbench.train.load_method("assets/layered-small/gan")` and
`apps.tabs.triplet_browser.load_segmenter("assets/layered-small/post")` (which finds `gan/` from any
working directory), or pick “Shipped layered GAN” in the app's Triplet browser tab.

## How it was made

From the repository root, seed {c.seed}:

```bash
{made}
{export_command}
```

- GAN: `{c.dataset}` at {c.resolution} px, generator widths {c.width} to {c.max_width}, z = {c.z_dim},
  w = {c.w_dim}, {c.mapping_layers} mapping layers, batch {c.batch_size}, {c.steps:,} steps, δ = {c.max_shift}·R,
  η = {c.min_mask:g}, γ₁ = {c.size_weight:g}, γ₂ = {c.binary_weight:g}{max_mask};
- U-Net: width {p.width}, depth {p.depth}, batch {p.batch_size}, {p.steps:,} steps.

## Scores (the exported copies, re-scored by the script)

{metrics['test_images']} test scenes of `{c.dataset}` at {c.resolution} px (split `test`, seed {c.seed}),
scored by `workbench.eval.segmenter.evaluate_segmenter` (masks at 0.5; max F_β over thresholds):

| segmenter | {' | '.join(label for _, label in SCORES)} |
|---|{'---:|' * len(SCORES)}
{table}
{no_joint}
## Does the generator separate object from background? (issue 16)

{separation_table(metrics['separation'])}
"""


# the script


def main(argv: list[str] | None = None) -> dict:
    """Export, reload, score and describe (see the module docstring); returns the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the `train layered` run (or checkpoint)")
    parser.add_argument("--post", type=Path, required=True, help="the `train layered-post` run trained on --run")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "layered-small")
    parser.add_argument("--oracle", type=Path, required=True,
                        help="an `oracle-unet` run trained on the GAN's scenes (the separation figures' proxy truth)")
    parser.add_argument("--n", type=int, default=300, help="test scenes scored (the layered bench's `small` count)")
    parser.add_argument("--n-generated", type=int, default=1000,
                        help="generated composites of the separation figures (the layered bench's `small` count)")
    parser.add_argument("--ghost-n", type=int, default=200, help="test scenes of the discriminator's ghost test")
    parser.add_argument("--trained-with", action="append", default=[],
                        help="a command that trained the runs, written verbatim into OUT/README.md (repeatable)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/export_layered_asset.py",
                          *(sys.argv[1:] if argv is None else argv)])

    try:
        gan_source = read_checkpoint(args.run, method="layered").path
        post_source = read_checkpoint(args.post, method="layered-post").path
        oracle_source = read_checkpoint(args.oracle, method="oracle-unet").path
        preset = scene_preset(read_checkpoint(gan_source).config["dataset"])  # the figures need true scenes
    except (OSError, ValueError) as error:  # CheckpointError: no checkpoint, another method, damaged files
        raise SystemExit(str(error)) from None
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first")
    post_record = json.loads((post_source / "config.json").read_text())
    _check_pair(gan_source, post_record["config"])
    export_weights_only(gan_source, args.out / "gan", config=json.loads((gan_source / "config.json").read_text()),
                        half=False)
    post_record["config"]["generator"] = _recorded_path(args.out / "gan")
    export_weights_only(post_source, args.out / "post", config=post_record, half=False)

    gan = load_method(args.out / "gan", method="layered")
    post = load_segmenter(args.out / "post", device="cpu")
    c = gan.config
    test = build_dataset(c.dataset, size=c.resolution, split="test", n=args.n, seed=c.seed)
    require_masks(test, c.dataset, purpose="scoring the segmenters needs ground-truth masks")
    joint = evaluate_segmenter(gan.segment, test, spec=c.dataset) if gan.setting.segmenter else None
    post_scores = evaluate_segmenter(post.predict, test, spec=c.dataset)
    oracle = load_method(oracle_source, method="oracle-unet")
    separation = score_separation(gan, oracle, preset=preset, n=args.n_generated, ghost_n=args.ghost_n,
                                  oracle_path=str(args.oracle))

    grid = figure_grid(gan, seed=0, seeds=SEEDS, post=post, cell=96)  # (H, W, 3) in [0, 1], the tab's figure
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(args.out / "triplets.png")
    metrics = {"setting": c.setting, "setting_title": gan.setting.title, "dataset": c.dataset,
               "resolution": c.resolution, "test_images": len(test), "joint": joint, "post": post_scores,
               "gan_step": gan.step, "post_step": post.step, "source_gan": str(gan_source),
               "source_post": str(post_source), "size_mb": round(_size_mb(args.out), 2), "separation": separation}
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    readme = _readme(name=args.out.name, gan=gan, post=post, metrics=metrics, export_command=command,
                     trained_with=args.trained_with)
    (args.out / "README.md").write_text(readme)
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
