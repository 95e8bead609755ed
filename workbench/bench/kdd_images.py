"""`python -m workbench bench kdd-images`: the 32-px image GAN of chapter 6 with the hinge, KDD and Joint losses.

Trains the KDD GAN method (``kdd-gan``) three times, with ``--loss hinge`` (the BigGAN baseline,
eqs. 6.2, 6.3), ``--loss kdd`` (eqs. 6.5-6.9) and ``--loss joint`` (eq. 6.18, γ = 1), same preset,
seed and number of steps, τ by the thesis' rule (0.05 on the unconditional synthetic scenes, as
table 6.1's "(Uncond)" rows; ``--tau`` overrides it), then scores
``--n-eval`` images of each EMA generator against as many held-out real images (the dataset's
test split), as section 6.4 does: FID, KID, density and coverage on one feature network.

The feature network is Inception-v3 when its weights file is on this machine (see
:mod:`workbench.eval.gan_metrics`), else the encoder of a workbench MAE (``--mae-run``, or one
pre-trained here with ``train mae`` at the same preset): then the figures are "FID (MAE features)",
not FID, and ``fid_kind`` in the RESULT line says which MAE.

The last line is ``RESULT kdd-images hinge_fid=… kdd_fid=… joint_fid=… fid_kind=… hinge_kid=… …
hinge_density=… … hinge_coverage=… … tau=… minutes=…`` (each figure for hinge, kdd and joint).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.bench import BenchResult, register

LOSSES = ("hinge", "kdd", "joint")  # the objectives compared: eq. (6.18) with (γ, α) = (0, 1), (1, 0), (1, 1)
N_EVAL = {"paper": 10_000, "small": 500, "smoke": 16}  # images scored per set, by preset

# helpers


def train_run(method: str, argv: list[str]):
    """Build and train a method through the shared launcher; return the trained method in eval mode."""
    from workbench.train.launch import build

    trainer = build(method, argv)
    trainer.fit()
    return trainer.method.eval()


@torch.no_grad()
def generated(method, n: int, *, seed: int, batch_size: int = 250) -> torch.Tensor:
    """``n`` images (n, 3, R, R) in [0, 1] from the method's EMA generator, on the CPU, fixed codes."""
    parts = [method.generate(min(batch_size, n - i), seed=seed + i).cpu() for i in range(0, n, batch_size)]
    return torch.cat(parts)


def real_images(dataset, *, batch_size: int = 250):
    """Batches (B, 3, R, R) of a dataset's images, for the feature network."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return (batch["image"] for batch in loader)


def feature_network(args: argparse.Namespace, common: list[str], *, runs: Path, device: torch.device):
    """Inception when its file is here (or ``--features inception``), else an MAE: given or pre-trained now."""
    from workbench.eval.gan_metrics import build_feature_network, find_inception_weights

    named = args.inception_weights is not None  # a named file is used, or its absence is the error
    if args.features == "inception" or (args.features == "auto" and (named or find_inception_weights())):
        return build_feature_network("inception", inception_weights=args.inception_weights, device=device)
    mae_run = args.mae_run
    if mae_run is None:
        mae_run = runs / "mae"
        train_run("mae", [*common, "--dataset", args.dataset, "--out", str(mae_run)])
    return build_feature_network("mae", mae_run=mae_run, device=device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="synthetic:benchmark", help="dataset spec (train and test splits)")
    parser.add_argument("--steps", type=int, default=None, help="GAN steps, the same for every loss "
                        "(default: the preset's)")
    parser.add_argument("--tau", type=float, default=None,
                        help="τ of the vMF kernel for kdd and joint (default: the thesis' rule, 0.05 for these "
                             "unconditional runs as in table 6.1, 1 for conditional ones)")
    parser.add_argument("--n-eval", type=int, default=None,
                        help=f"generated and real images scored (default by preset: {N_EVAL})")
    parser.add_argument("--features", choices=("auto", "inception", "mae"), default="auto",
                        help="feature network: inception when its weights file is found (auto), or an MAE")
    parser.add_argument("--inception-weights", type=Path, default=None,
                        help="the Inception weights file (default: looked up in the weights folder and torch hub)")
    parser.add_argument("--mae-run", type=Path, default=None,
                        help="MAE features from this `train mae` run (default: pre-train one here)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="where the runs are written (default runs/bench/kdd-images/<time>)")


# benchmark


@register("kdd-images", help="train the 32-px image GAN with the hinge, KDD and Joint losses; FID, KID, density, "
          "coverage",
          add_arguments=add_arguments)
def kdd_images_bench(args: argparse.Namespace) -> BenchResult:
    from workbench.data import build_dataset
    from workbench.eval.gan_metrics import DENSITY_K, quality_from_features
    from workbench.train.device import pick_device

    start = time.perf_counter()
    runs = args.runs or Path("runs/bench/kdd-images") / time.strftime("%Y%m%d-%H%M%S")
    common = ["--preset", args.preset, "--device", args.device, "--seed", str(args.seed), "--no-tensorboard",
              "--no-progress"]
    n_eval = args.n_eval or N_EVAL[args.preset]
    if n_eval <= DENSITY_K:
        raise ValueError(f"--n-eval must exceed k = {DENSITY_K} (density and coverage), got {n_eval}")

    # the feature network first: a missing weights file should stop the bench before any training
    t0 = time.perf_counter()
    network = feature_network(args, common, runs=runs, device=pick_device(args.device))
    feature_minutes = (time.perf_counter() - t0) / 60

    if args.tau is not None and args.tau <= 0:
        raise ValueError(f"--tau must be positive, got {args.tau}")
    gan_argv = [*common, "--dataset", args.dataset, *(["--steps", str(args.steps)] if args.steps is not None else []),
                *(["--tau", str(args.tau)] if args.tau is not None else [])]
    trained, train_minutes = {}, {}
    for loss in LOSSES:
        t0 = time.perf_counter()
        trained[loss] = train_run("kdd-gan", [*gan_argv, "--loss", loss, "--out", str(runs / loss)])
        train_minutes[loss] = (time.perf_counter() - t0) / 60
    config = trained["hinge"].config

    t0 = time.perf_counter()
    synthetic = args.dataset.strip().lower().startswith("synthetic")  # scenes are drawn: any n exists
    real = build_dataset(args.dataset, size=config.resolution, split="test", seed=args.seed,
                         n=n_eval if synthetic else None)
    if len(real) > n_eval:  # a seeded random subset: folders list files in order (classes: one class after another)
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))[:n_eval]
        real = torch.utils.data.Subset(real, pick.tolist())
    real_features, _ = network.extract(real_images(real), what="real images")
    scores = {}
    for loss, method in trained.items():
        fake_features, fake_logits = network.extract(generated(method, n_eval, seed=args.seed), what=f"{loss} images")
        scores[loss] = quality_from_features(real_features, fake_features, kind=network.kind, fake_logits=fake_logits,
                                             seed=args.seed)
    eval_minutes = (time.perf_counter() - t0) / 60
    minutes = (time.perf_counter() - start) / 60

    fid, kid = network.label("FID"), network.label("KID")
    rows = []
    for loss, s in scores.items():
        row = {"loss": loss, "steps": config.steps, fid: s["fid"], f"{kid} ×10³": 1e3 * s["kid_mean"],
               f"{kid} std ×10³": 1e3 * s["kid_std"], "density": s["density"], "coverage": s["coverage"]}
        if "is_mean" in s:
            row["IS"] = s["is_mean"]
        rows.append({**row, "train min": train_minutes[loss]})
    metrics: dict[str, float | str] = {f"{loss}_fid": scores[loss]["fid"] for loss in LOSSES}
    metrics["fid_kind"] = network.kind.replace(" ", "_")
    for key, field in (("kid", "kid_mean"), ("density", "density"), ("coverage", "coverage")):
        metrics.update({f"{loss}_{key}": scores[loss][field] for loss in LOSSES})
    metrics["tau"] = trained["kdd"].config.kernel_tau
    metrics["minutes"] = minutes
    notes = [f"{args.dataset}: {n_eval} generated images per loss against {len(real)} real test images at "
             f"{config.resolution} px; {config.steps} steps each, seed {args.seed}; τ = "
             f"{trained['kdd'].config.kernel_tau:g} for kdd and joint (γ = {trained['joint'].config.gamma:g}); "
             f"feature network "
             f"{feature_minutes:.1f} min, scoring {eval_minutes:.1f} min, total {minutes:.1f} min on "
             f"{torch.get_num_threads()} threads",
             f"features: {network.kind}" + ("" if network.is_inception else
                                            " — not Inception: these are not FID/KID values comparable to papers, "
                                            "only to each other; put the Inception weights file in place for FID"),
             *([] if synthetic else ["folders without a test split (folder:, classes:) are used whole, so the real "
                                     "images may include the training images (a seeded random subset)"]),
             "lower FID/KID is better; density measures fidelity (≈1 when fakes sit where reals do) and coverage "
             "diversity (share of real neighbourhoods hit); few images bias FID upwards"]
    return BenchResult(name="kdd-images", table=pd.DataFrame(rows), metrics=metrics, notes=notes)
