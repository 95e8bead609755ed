"""Score the no-learning baselines on a shipped checkpoint's held-out test scenes; store them in its metrics.json.

    python scripts/score_asset_baselines.py --asset assets/move-small --dataset synthetic:benchmark --size 64 --n 500
    python scripts/score_asset_baselines.py --asset assets/layered-small --dataset synthetic:benchmark --size 32 --n 300

The app's panels state what a shipped model scores *against the baselines* on the same scenes
(:mod:`workbench.eval.asset_scores`). The export scripts stored only the model's own scores;
this script runs :func:`workbench.eval.baselines.run_baselines` (full image, centred ellipse,
GrabCut) on the same split, size, count and seed, and writes them under ``"baselines"`` of
``ASSET/metrics.json``, with the command that made them. The model's scores are left as they are.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from workbench.data import build_dataset  # noqa: E402
from workbench.eval.baselines import run_baselines  # noqa: E402

NAMES = ("full", "center", "grabcut")  # the baselines the panels quote
KEPT = ("iou", "accuracy", "max_f_beta", "corloc")  # the figures stored per baseline


def main(argv: list[str] | None = None) -> dict:
    """Score the baselines and merge them into ``ASSET/metrics.json``; returns what was stored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asset", type=Path, required=True, help="the shipped folder that holds metrics.json")
    parser.add_argument("--dataset", required=True, help="the dataset the model was scored on")
    parser.add_argument("--size", type=int, required=True, help="the image size it was scored at")
    parser.add_argument("--n", type=int, required=True, help="how many test images it was scored on")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    file = args.asset / "metrics.json"
    if not file.is_file():
        raise SystemExit(f"error: {file} does not exist; --asset must name a shipped folder with a metrics.json")
    command = shlex.join(["python", "scripts/score_asset_baselines.py", *(sys.argv[1:] if argv is None else argv)])
    dataset = build_dataset(args.dataset, size=args.size, split=args.split, n=args.n, seed=args.seed)
    table = run_baselines(dataset, n=args.n, names=list(NAMES), progress=False)
    stored = {"dataset": args.dataset, "split": args.split, "size": args.size, "n": len(dataset), "seed": args.seed,
              "command": command,
              **{row["baseline"]: {key: float(row[key]) for key in KEPT} for row in table.to_dict("records")}}
    text = file.read_text()
    lines = text.splitlines()
    indent = len(lines[1]) - len(lines[1].lstrip()) if len(lines) > 1 else 2  # keep the file's own layout
    metrics = json.loads(text)
    metrics["baselines"] = stored
    file.write_text(json.dumps(metrics, indent=indent or 2) + "\n")
    print(json.dumps(stored, indent=2))
    return stored


if __name__ == "__main__":
    main()
