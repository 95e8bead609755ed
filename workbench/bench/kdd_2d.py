"""`python -m workbench bench kdd-2d`: figure 6.1 in numbers, and hinge vs KDD vs Joint on 2D mode-collapse benchmarks.

Part 1 re-runs figure 6.1 (section 6.2.2): the fake cloud's statistics before and after 200 SGD
steps at lr 10 under the hinge and the KDD generator losses. Part 2 trains the same MLP GAN with
the three losses of eq. (6.18) on 8 Gaussians on a ring and 25 on a grid, over several seeds,
and reports modes covered and high-quality samples (mean ± std). Every loss gets the same
architecture, steps, batch and learning rate; τ = 1 and γ = 1 are the thesis' defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from workbench.bench import BenchResult, register

# helpers

FIGURE_ROWS = ("initial", "hinge", "kdd")


def figure_table(summaries: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """One row per (reading of lr, cloud): the statistics of :func:`workbench.methods.kdd_2d.cloud_summary`."""
    rows = []
    for reading, summary in summaries.items():
        for cloud in FIGURE_ROWS:
            if reading != "mean" and cloud == "initial":
                continue
            rows.append({"lr reading": reading, "fake cloud": cloud, **summary[cloud]})
    return pd.DataFrame(rows)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5, help="GAN runs per loss and benchmark (seeds seed..seed+N-1)")
    parser.add_argument("--steps", type=int, default=None, help="GAN training steps (default: the preset's)")
    parser.add_argument("--tau", type=float, default=None, help="τ of the vMF kernel (default 1, the thesis')")
    parser.add_argument("--mixtures", nargs="+", default=["ring8", "grid25"], help="benchmarks: ring8 grid25")
    parser.add_argument("--losses", nargs="+", default=["hinge", "kdd", "joint"], help="losses: hinge kdd joint")


# benchmark


@register("kdd-2d", help="KDD vs hinge in 2D: figure 6.1 numbers and mode coverage on ring8 / grid25",
          add_arguments=add_arguments)
def kdd_2d(args: argparse.Namespace) -> BenchResult:
    from workbench.methods.kdd_2d import LOSSES, MIXTURES, config_for, figure_6_1, train_gan_2d

    for name in args.mixtures:
        if name not in MIXTURES:
            raise SystemExit(f"error: unknown mixture {name!r}; choose from {', '.join(MIXTURES)}")
    for name in args.losses:
        if name not in LOSSES:
            raise SystemExit(f"error: unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    start = time.perf_counter()
    smoke = args.preset == "smoke"

    # part 1: figure 6.1
    fig_kw = dict(n=200, steps=20) if smoke else {}
    fig = figure_6_1(seed=args.seed, **fig_kw)
    per_point = figure_6_1(seed=args.seed, reduction="sum", record_every=10**9, **fig_kw)
    fig_table = figure_table({"mean": fig.summary, "sum": per_point.summary})
    s = fig.settings
    print(f"## Figure 6.1: {s['n']} real points (two Gaussian modes at (2, ±2), σ 0.5) and {s['n']} fake points "
          f"(uniform square, side 2, centred at (-3, 0)); linear classifier w = ({s['w_x']:.3f}, {s['w_y']:.3f}), "
          f"b = {s['b']:.3f} ({s['classifier_loss']} loss, gradient descent); {s['steps']} SGD steps at lr {s['lr']}")
    print(fig_table.to_markdown(index=False, floatfmt=".4g"))
    print("lr reading 'mean': the loss is the mean over the fake points (each point moves by lr/N times its "
          "per-sample gradient); 'sum': each point moves by lr times its per-sample gradient. on_a_mode: share "
          "within 3σ of a real mode; finite: share of points that did not diverge.\n")

    # part 2: the 2D GANs
    overrides = {"steps": args.steps} if args.steps is not None else {}
    if args.tau is not None:
        overrides["tau"] = args.tau
    target = "grid25" if "grid25" in args.mixtures else args.mixtures[-1]  # the benchmark of the RESULT line
    rows, per_loss = [], {}
    bar = tqdm(total=len(args.mixtures) * len(args.losses) * args.seeds, desc="kdd-2d GAN runs", unit="run")
    for mixture in args.mixtures:
        for loss in args.losses:
            config = config_for(args.preset, mixture, loss=loss, **overrides)
            results = []
            for i in range(args.seeds):
                bar.set_postfix_str(f"{mixture} {loss} seed {args.seed + i}")
                results.append(train_gan_2d(config, seed=args.seed + i))
                bar.update()
            modes = [float(r.report.modes) for r in results]
            hq = [r.report.hq for r in results]
            (m_mean, m_std), (h_mean, h_std) = mean_std(modes), mean_std(hq)
            rows.append({"benchmark": mixture, "loss": loss, "modes": m_mean, "modes_std": m_std,
                         "of": results[0].report.total, "hq_%": h_mean, "hq_std": h_std,
                         "modes per seed": " ".join(str(int(m)) for m in modes),
                         "s/run": statistics.fmean(r.seconds for r in results)})
            if mixture == target:
                per_loss[loss] = (m_mean, h_mean)
    bar.close()
    table = pd.DataFrame(rows)

    metrics: dict[str, float | int | str] = {}
    for key in ("modes", "hq"):
        for loss in args.losses:
            if loss in per_loss:
                metrics[f"{loss}_{key}"] = per_loss[loss][0 if key == "modes" else 1]
    c = config_for(args.preset, target, **overrides)
    steps = ", ".join(f"{m} {config_for(args.preset, m, **overrides).steps}" for m in args.mixtures)
    notes = [f"GAN: MLP G ({c.z_dim}-d Gaussian z, 2×{c.hidden} ReLU) and D (2×{c.hidden} LeakyReLU features φ̃, "
             f"K = {c.hidden}, then one linear unit); Adam lr {c.lr}, betas ({c.beta1}, {c.beta2}), "
             f"batch {c.batch_size}, "
             f"steps {steps} (1 D + 1 G update each), identical for every loss; KDD: vMF kernel τ = {c.tau}, "
             f"leave-one-out, anchors = the batch; joint: γ = {c.gamma}, α = 1",
             "ring8: 8 Gaussians on a circle of radius 2, σ 0.02; grid25: 25 Gaussians at {-4,-2,0,2,4}², σ 0.05; "
             f"{c.n_eval} samples; high quality = within 3σ of the nearest mode; a mode is covered when it holds at "
             f"least {c.min_share:g} × N/M high-quality samples",
             f"RESULT figures: {target}, mean over {args.seeds} seeds from {args.seed}; "
             f"{torch.get_num_threads()} thread(s); {(time.perf_counter() - start) / 60:.1f} min in all"]
    if "hinge" in per_loss and len(per_loss) > 1:
        hinge = per_loss["hinge"][0]
        better = [loss for loss in per_loss if loss != "hinge" and per_loss[loss][0] > hinge]
        others = ", ".join(f"{loss} {per_loss[loss][0]:.1f}" for loss in per_loss if loss != "hinge")
        if better:
            verb = "cover" if len(better) > 1 else "covers"
            notes.append(f"{target}: {' and '.join(better)} {verb} more modes than hinge on average "
                         f"(hinge {hinge:.1f}; {others}; mean over seeds)")
        else:
            notes.append(f"{target}: neither KDD nor Joint covers more modes than hinge on average here "
                         f"(hinge {hinge:.1f}; {others}; mean over seeds)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kdd-2d-figure-6-1.json").write_text(json.dumps(
        {"settings": fig.settings, "table": json.loads(fig_table.to_json(orient="records")),
         "gan_config": asdict(c)}, indent=2))
    return BenchResult(name="kdd-2d", table=table, metrics=metrics, notes=notes)
