"""Bundle a `train move` run and its `train mae` run into the app's shipped MOVE checkpoint, and score it.

    python scripts/export_move_asset.py --mae-run runs/mae-small --move-run runs/move-small --out assets/move-small

1. writes the self-contained bundle (:func:`workbench.methods.move_assets.export_move_bundle`:
   weights only, the MAE in float16);
2. loads the *bundle* back and scores it on the held-out test split of the synthetic scenes, as
   ``python -m workbench bench move`` does (IoU, accuracy, max-Fβ, CorLoc at MOVE's size), and
   through the app's path (scenes rendered at the Shift explorer's 128 px, resized for MOVE and back);
3. writes ``OUT/metrics.json`` and prints the figures and the bundle's size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from workbench.bench.move import score  # noqa: E402
from workbench.data import build_dataset  # noqa: E402
from workbench.data.build import parse_spec  # noqa: E402
from workbench.data.synthetic import render_scene  # noqa: E402
from workbench.methods.move_assets import export_move_bundle, load_move  # noqa: E402
from workbench.methods.move_explore import predict_mask  # noqa: E402


def app_iou(method, *, dataset: str, n: int, size: int, seed: int) -> float:
    """Mean IoU of MOVE's mask through the app's path on the first ``n`` test scenes rendered at ``size``."""
    dataset = build_dataset(dataset, size=size, split="test", n=n, seed=seed)
    ious = []
    for i in range(len(dataset)):
        item = dataset[i]
        image = item["image"].permute(1, 2, 0).numpy()  # (H, W, 3)
        truth = item["mask"][0].numpy() > 0.5
        pred = predict_mask(method, image) > 0.5
        union = (pred | truth).sum()
        ious.append((pred & truth).sum() / union if union else 1.0)
    return float(np.mean(ious))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mae-run", type=Path, required=True, help="the `train mae` run (or checkpoint) MOVE used")
    parser.add_argument("--move-run", type=Path, required=True, help="the `train move` run (its newest checkpoint)")
    parser.add_argument("--out", type=Path, required=True, help="the bundle folder to write (must not exist)")
    parser.add_argument("--n-test", type=int, default=500, help="test scenes scored (default 500, as bench move)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic test scenes (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    out = export_move_bundle(move_run=args.move_run, mae_run=args.mae_run, out=args.out)
    method = load_move(out)  # the bundle as shipped: float16 MAE, EMA head
    kind, preset = parse_spec(method.config.dataset)  # the scenes MOVE trained on
    if kind != "synthetic":
        raise SystemExit(f"error: the run trained on {method.config.dataset!r}; "
                         "the asset is scored on synthetic scenes")
    test = build_dataset(method.config.dataset, size=method.config.size, split="test", n=args.n_test, seed=args.seed)
    scores = score(method, test)
    scene_size = render_scene(0, preset=preset, size=128)[0].shape[0]
    metrics = {
        "dataset": method.config.dataset, "split": "test", "images": len(test), "seed": args.seed,
        "size": method.config.size, "step": method.step,
        "iou": scores["iou"], "accuracy": scores["accuracy"], "max_f_beta": scores["max_f_beta"],
        "corloc": scores["corloc"],
        "app_iou_128px_first_100": app_iou(method, dataset=method.config.dataset, n=min(100, args.n_test),
                                           size=scene_size, seed=args.seed),
        "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    for key, value in metrics.items():
        print(f"{key:>26}: {value:.4f}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
