"""`python -m workbench bench kdd-2d`: figure 6.1 in numbers, and hinge vs KDD vs Joint on 2D mode-collapse benchmarks.

Part 1 re-runs figure 6.1 (section 6.2.2): the fake cloud's statistics before and after 200 SGD
steps at lr 10 under the hinge and the KDD generator losses. Part 2 trains the same MLP GAN with
the three losses of eq. (6.18) on 8 Gaussians on a ring and 25 on a grid, over several seeds,
and reports modes covered and high-quality samples (mean ± std). Every loss gets the same
architecture, steps, batch and learning rate; γ = 1 is the thesis' best Joint weight and τ = 0.05
its temperature for unconditional runs (table 6.1's "KDD (Uncond)" and "Joint (Uncond)"; τ = 1 is
for the conditional ones). ``--tau-sweep`` trains KDD and Joint at several τ (hinge once).
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
TAU_SWEEP = (0.01, 0.05, 0.2, 1.0)  # --tau-sweep without values: around table 6.1's 0.05 and 1


def figure_table(summaries: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """One row per (reading of lr, cloud): the statistics of :func:`workbench.methods.kdd_2d.cloud_summary`."""
    rows = []
    for reading, summary in summaries.items():
        for cloud in FIGURE_ROWS:
            if reading != "mean" and cloud == "initial":
                continue
            rows.append({"lr reading": reading, "fake cloud": cloud, **summary[cloud]})
    return pd.DataFrame(rows)


def train_one(config, seed: int, threads: int) -> tuple[int, float, int, float]:
    """One 2D GAN run (in a worker process with ``--workers``): (modes covered, hq %, modes in all, seconds).

    Every draw comes from ``seed`` (see :func:`workbench.methods.kdd_2d.train_gan_2d`), so a run
    gives the same figures in any process.
    """
    from workbench.methods.kdd_2d import train_gan_2d

    torch.set_num_threads(threads)
    result = train_gan_2d(config, seed=seed)
    return result.report.modes, result.report.hq, result.report.total, result.seconds


def run_all(jobs: list, *, workers: int, threads: int, bar: tqdm) -> list[tuple[int, float, int, float]]:
    """``train_one`` for every (config, seed) job, in order; ``workers`` > 1 runs them in that many processes."""
    if workers <= 1:
        out = []
        for config, seed in jobs:
            bar.set_postfix_str(f"{config.mixture} {config.loss} τ {config.tau:g} seed {seed}")
            out.append(train_one(config, seed, threads))
            bar.update()
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train_one, config, seed, threads) for config, seed in jobs]
        for future in futures:
            future.add_done_callback(lambda _: bar.update())
        return [future.result() for future in futures]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5, help="GAN runs per loss and benchmark (seeds seed..seed+N-1)")
    parser.add_argument("--steps", type=int, default=None, help="GAN training steps (default: the preset's)")
    parser.add_argument("--tau", type=float, default=None,
                        help="τ of the vMF kernel (default 0.05: the thesis' τ for unconditional runs, table 6.1; "
                             "1 is its τ for conditional ones)")
    parser.add_argument("--tau-sweep", type=float, nargs="*", default=None, metavar="TAU",
                        help="train KDD and Joint at each τ (hinge once); without values "
                             f"{' '.join(f'{t:g}' for t in TAU_SWEEP)}")
    parser.add_argument("--mixtures", nargs="+", default=["ring8", "grid25"], help="benchmarks: ring8 grid25")
    parser.add_argument("--losses", nargs="+", default=["hinge", "kdd", "joint"], help="losses: hinge kdd joint")
    parser.add_argument("--workers", type=int, default=1,
                        help="GAN runs trained at once, in separate processes of --threads threads each (default 1; "
                             "every run's figures are the same either way)")


# benchmark


@register("kdd-2d", help="KDD vs hinge in 2D: figure 6.1 numbers and mode coverage on ring8 / grid25",
          add_arguments=add_arguments)
def kdd_2d(args: argparse.Namespace) -> BenchResult:
    from workbench.methods.kdd_2d import LOSSES, MIXTURES, config_for, figure_6_1

    for name in args.mixtures:
        if name not in MIXTURES:
            raise SystemExit(f"error: unknown mixture {name!r}; choose from {', '.join(MIXTURES)}")
    for name in args.losses:
        if name not in LOSSES:
            raise SystemExit(f"error: unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if args.tau_sweep is not None and args.tau is not None:
        raise ValueError("--tau and --tau-sweep exclude each other: give one")
    taus = None if args.tau_sweep is None else tuple(args.tau_sweep or TAU_SWEEP)
    if taus is not None and any(t <= 0 for t in taus):
        raise ValueError(f"--tau-sweep values must be positive, got {' '.join(map(str, taus))}")
    if args.tau is not None and args.tau <= 0:
        raise ValueError(f"--tau must be positive, got {args.tau}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
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

    # part 2: the 2D GANs; one variant per (loss, τ): τ None is the preset's (or --tau)
    overrides = {"steps": args.steps} if args.steps is not None else {}
    if args.tau is not None:
        overrides["tau"] = args.tau
    variants = [(loss, None) for loss in args.losses]
    if taus is not None:
        variants = [(loss, None) for loss in args.losses if loss == "hinge"]
        variants += [(loss, t) for t in taus for loss in args.losses if loss != "hinge"]
    target = "grid25" if "grid25" in args.mixtures else args.mixtures[-1]  # the benchmark of the RESULT line
    groups = [(mixture, loss, tau, config_for(args.preset, mixture, loss=loss, **overrides,
                                              **({"tau": tau} if tau else {})))
              for mixture in args.mixtures for loss, tau in variants]
    jobs = [(config, args.seed + i) for *_, config in groups for i in range(args.seeds)]
    bar = tqdm(total=len(jobs), desc="kdd-2d GAN runs", unit="run")
    done = run_all(jobs, workers=args.workers, threads=torch.get_num_threads(), bar=bar)
    bar.close()
    rows, per_variant = [], {}
    for g, (mixture, loss, tau, config) in enumerate(groups):
        results = done[g * args.seeds:(g + 1) * args.seeds]  # (modes, hq, total, seconds) per seed
        modes = [float(r[0]) for r in results]
        hq = [r[1] for r in results]
        (m_mean, m_std), (h_mean, h_std) = mean_std(modes), mean_std(hq)
        rows.append({"benchmark": mixture, "loss": loss, "tau": "-" if loss == "hinge" else f"{config.tau:g}",
                     "modes": m_mean, "modes_std": m_std, "of": results[0][2], "hq_%": h_mean, "hq_std": h_std,
                     "modes per seed": " ".join(str(int(m)) for m in modes),
                     "s/run": statistics.fmean(r[3] for r in results)})
        if mixture == target:
            per_variant[(loss, tau)] = (m_mean, h_mean)
    table = pd.DataFrame(rows)

    def key(loss: str, tau: float | None, what: str) -> str:
        return f"{loss}_{what}" if tau is None else f"{loss}_{what}_tau{tau:g}"

    c = config_for(args.preset, target, **overrides)
    metrics: dict[str, float | int | str] = {}
    if taus is None:
        metrics["tau"] = c.tau
    for what in ("modes", "hq"):
        for (loss, tau), (m_mean, h_mean) in per_variant.items():
            metrics[key(loss, tau, what)] = m_mean if what == "modes" else h_mean
    steps = ", ".join(f"{m} {config_for(args.preset, m, **overrides).steps}" for m in args.mixtures)
    tau_text = (f"τ = {c.tau:g} (the thesis' τ for unconditional runs)" if taus is None
                else f"τ in {', '.join(f'{t:g}' for t in taus)} (--tau-sweep)")
    notes = [f"GAN: MLP G ({c.z_dim}-d Gaussian z, 2×{c.hidden} ReLU) and D (2×{c.hidden} LeakyReLU, then a linear "
             f"layer to the features φ̃, K = {c.hidden}, then one linear unit); Adam lr {c.lr}, "
             f"betas ({c.beta1}, {c.beta2}), batch {c.batch_size}, "
             f"steps {steps} (1 D + 1 G update each), identical for every loss; KDD: vMF kernel {tau_text}, "
             f"leave-one-out, anchors = the batch; joint: γ = {c.gamma}, α = 1",
             "ring8: 8 Gaussians on a circle of radius 2, σ 0.02; grid25: 25 Gaussians at {-4,-2,0,2,4}², σ 0.05; "
             f"{c.n_eval} samples; high quality = within 3σ of the nearest mode; a mode is covered when it holds at "
             f"least {c.min_share:g} × N/M high-quality samples",
             f"RESULT figures: {target}, mean over {args.seeds} seeds from {args.seed}; "
             f"{torch.get_num_threads()} thread(s) × {args.workers} worker(s); "
             f"{(time.perf_counter() - start) / 60:.1f} min in all"]
    if ("hinge", None) in per_variant and len(per_variant) > 1:
        hinge = per_variant[("hinge", None)][0]

        def label(loss: str, tau: float | None) -> str:
            return loss if tau is None else f"{loss} τ {tau:g}"

        better = [label(*v) for v in per_variant if v[0] != "hinge" and per_variant[v][0] > hinge]
        others = ", ".join(f"{label(*v)} {per_variant[v][0]:.1f}" for v in per_variant if v[0] != "hinge")
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
