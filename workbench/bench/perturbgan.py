"""`python -m workbench bench perturbgan`: chapter 3 end to end, tables 3.1-3.3 on synthetic scenes.

One run trains (or loads) four things and scores them:

1. the **oracle**, a supervised U-Net on the scenes' true masks (``oracle-unet``): the proxy
   ground truth of generated composites, as Mask R-CNN was in the thesis;
2. the **PerturbGAN** of ``--preset`` with table 3.1's ``--ablation``;
3. its **encoder** (section 3.2.3), trained on the training split;
4. the **feature network** of FID/KID: Inception from a local file, else the encoder of the
   workbench MAE shipped in ``assets/move-small/mae`` (or ``--mae-run``), labelled as such.

Reported: the generated-mask IoU against the oracle on detected composites with the full-mask
reference IoU and the detected count (table 3.1), FID/KID of the composites (table 3.2), and the
encoder's masks on the test split beside GrabCut and the full mask (table 3.3). ``--generated-only``
stops after the generated layers (table 3.1, the separation figures and the ghost test), which is
what the ladder of issue 16 needs, and saves the encoder and FID/KID phases (4.5 minutes of the
measured ``small`` run).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from workbench.bench import BenchResult, StageTimer, register
from workbench.data.build import scene_preset
from workbench.eval.separation import generated_separation, score_separation, separation_checks

# helpers

N_GENERATED = {"paper": 10_000, "small": 1000, "smoke": 16}  # composites scored against the oracle (table 3.1)
N_REAL = {"paper": 1000, "small": 200, "smoke": 4}  # test images for the encoder and the baselines (table 3.3)
N_QUALITY = {"paper": 10_000, "small": 1000, "smoke": 8}  # images per side for FID/KID (table 3.2)
SHIPPED_MAE = Path(__file__).resolve().parents[2] / "assets" / "move-small" / "mae"


def train(method, out: Path):
    """Train ``method`` with the shared trainer into ``out``; return it in evaluation mode."""
    from workbench.train.trainer import Trainer

    Trainer(method, out_dir=out, progress=True, tensorboard=False).fit()
    return method.eval()


def feature_network(args: argparse.Namespace, device):
    """The FID/KID network of ``--features``/``--inception-weights``/``--mae-run``: Inception from a local
    file, else the shipped MAE's encoder (or ``--mae-run``'s), labelled as such."""
    from workbench.eval.gan_metrics import build_feature_network

    mae_run = args.mae_run or (SHIPPED_MAE if args.features != "inception" and args.inception_weights is None else None)
    return build_feature_network(args.features, inception_weights=args.inception_weights, mae_run=mae_run,
                                 mae_name="assets/move-small/mae" if mae_run == SHIPPED_MAE else None, device=device)


def encoder_and_quality(args: argparse.Namespace, gan, network, runs: Path, timed: StageTimer, device):
    """Tables 3.3 and 3.2 for a trained ``gan``: train its encoder and score it on the test split beside the
    baselines ({method: IoU}); FID/KID of its composites against test images (and of the single-output GAN's,
    with ``--single-output``). Returns (ious, quality, single-output quality or None)."""
    from workbench.data import build_dataset
    from workbench.eval.gan_metrics import image_quality
    from workbench.eval.perturbgan import generated_composites, real_image_scores
    from workbench.methods.perturbgan_encoder import PRESETS as ENCODER_PRESETS
    from workbench.methods.perturbgan_encoder import PerturbEncoder
    from workbench.train.device import seed_everything

    c = gan.config
    gan_path = (args.gan or runs / "gan").resolve()  # recorded, so that the encoder run reloads on its own
    encoder_config = replace(ENCODER_PRESETS[args.preset], seed=args.seed, gan=str(gan_path))
    encoder = timed("encoder", lambda: train(PerturbEncoder(encoder_config, device=device, gan=gan), runs / "encoder"))
    test = build_dataset(c.dataset, size=c.resolution, split="test", seed=args.seed)
    real = timed("real images", lambda: real_image_scores(encoder, test, n=N_REAL[args.preset]))
    if args.chunks:  # the thesis' protocol as well: a fresh encoder per chunk of 100 test images
        chunked = timed("encoder chunks", lambda: real_image_scores(encoder, test, n=N_REAL[args.preset], chunks=True,
                                                                    baselines=()))
        real = pd.concat([real, chunked], ignore_index=True)

    n_quality = N_QUALITY[args.preset]
    reals = torch.stack([test[i]["image"] for i in range(min(n_quality, len(test)))])
    quality = timed("quality", lambda: image_quality(reals, generated_composites(gan, n_quality, seed=args.seed),
                                                     network=network, inception_score=False))
    so_quality = None
    if args.single_output:
        from workbench.methods.stylegan import SingleOutputGAN

        seed_everything(c.seed)
        so_gan = timed("single-output gan", lambda: train(SingleOutputGAN(c, device=device), runs / "single-output"))
        so_quality = image_quality(reals, generated_composites(so_gan, n_quality, seed=args.seed), network=network,
                                   inception_score=False)
    return dict(zip(real["method"], real["iou"])), quality, so_quality


def quality_rows(name: str, quality: dict | None) -> list[tuple[str, str, float]]:
    """Table 3.2's rows (FID, KID ×10³) of one GAN; none without a quality record."""
    if quality is None:
        return []
    return [("3.2", f"{quality['fid_label']}, {name}", quality["fid"]),
            ("3.2", f"{quality['kid_label']} ×10³, {name}", 1e3 * quality["kid_mean"])]


def separation_rows(separation: dict, reference: dict, noshift: dict | None) -> list[tuple[str, str, float]]:
    """Table rows of :func:`workbench.eval.separation.generated_separation` beside the true scenes'
    figures, and the no-shift GAN's beside them when it was trained."""
    rows = [("sep", "detected (fraction; >= 0.9 for the figures to count)", separation["detected"]),
            ("sep", "object in the background: bg_object_area", separation["bg_object_area"]),
            ("sep", "  its floor on true empty backgrounds: bg_floor", reference["bg_floor"]),
            ("sep", "mask diversity (mean pairwise IoU; fixed blob = 1)", separation["mask_diversity"]),
            ("sep", "  true masks of training scenes", reference["true_mask_diversity"]),
            ("sep", "centroid correlation with the oracle's object", separation["centroid_corr"]),
            ("sep", "mask area", separation["mask_area"]),
            ("sep", "  true object area", reference["true_area"]),
            ("sep", "share of the mask a training shift leaves in the frame: mask_shown", separation["mask_shown"]),
            ("sep", "mean mask on the frame's edge (true objects: 0): mask_edge", separation["mask_edge"])]
    rows += [("ghost", GHOST_LABELS[key], separation[key]) for key in GHOST_KEYS if key in separation]
    if noshift is not None:
        rows += [("no-shift", key, noshift[key]) for key in ("gen_mask_iou", "detected", "bg_object_area",
                                                             "mask_diversity", "centroid_corr", "mask_area")]
    return rows


GHOST_KEYS = ("fake_auc", "ghost_auc_duplicate", "ghost_auc_wrong_mask", "ghost_auc_moved")
GHOST_LABELS = {"fake_auc": "D's AUC, real vs the generator's composites",
                "ghost_auc_duplicate": "D's AUC, real vs object copied and moved, original left (ghost)",
                "ghost_auc_wrong_mask": "D's AUC, real vs background moved by a wrong mask (seam)",
                "ghost_auc_moved": "D's AUC, real vs object moved on its empty background (0.5 ideal)"}


def separation_metrics(separation: dict, reference: dict, noshift: dict | None) -> dict[str, float]:
    """The RESULT-line figures of issue 16: detected as a fraction, the separation figures and the no-shift ones."""
    keys = ("detected", "bg_object_area", "mask_diversity", "centroid_corr", "mask_area", "mask_shown", "mask_edge")
    out = {key: separation[key] for key in keys}
    out.update(bg_floor=reference["bg_floor"], true_mask_diversity=reference["true_mask_diversity"],
               true_area=reference["true_area"])
    out.update({key: separation[key] for key in GHOST_KEYS if key in separation})
    if noshift is not None:
        out.update({f"noshift_{key}": noshift[key] for key in ("gen_mask_iou", *keys)})
    return out


def separation_notes(separation: dict, reference: dict, noshift: dict | None) -> list[str]:
    """What the separation figures say, in words (targets of issue 16 section 3)."""
    checks = [(check.target, check.ok) for check in separation_checks(separation, reference)]
    notes = ["separation: " + ", ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks)]
    if noshift is not None:
        notes.append(f"no-shift ablation: gen_mask_iou {noshift['gen_mask_iou']:.3f} vs {separation['gen_mask_iou']:.3f}, "
                     f"centroid_corr {noshift['centroid_corr']:.2f} vs {separation['centroid_corr']:.2f}, "
                     f"bg_object_area {noshift['bg_object_area']:.3f} vs {separation['bg_object_area']:.3f}")
    return notes


def gan_overrides(argv: list[str]) -> dict:
    """The PerturbGAN config fields that ``--gan-arg`` flags set (``train perturbgan``'s spelling), as
    ``{name: value}``; a bad flag is a ValueError naming ``--gan-arg``."""
    from workbench.methods.perturbgan import PRESETS, PerturbGANConfig
    from workbench.train.config import add_config_arguments, config_overrides, normalize_flags

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(f"--gan-arg {' '.join(argv)}: {message}")

    parser = Parser(prog="--gan-arg", add_help=False)
    add_config_arguments(parser, PerturbGANConfig, defaults=PRESETS["small"])
    return config_overrides(parser.parse_args(normalize_flags(argv)), PerturbGANConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from workbench.methods.perturbgan import ABLATIONS

    parser.add_argument("--ablation", choices=list(ABLATIONS), default="default", help="a setting of table 3.1")
    parser.add_argument("--steps", type=int, default=None, help="GAN iterations (default: the preset's)")
    parser.add_argument("--gan", type=Path, default=None, help="score this trained perturbgan run instead of training one")
    parser.add_argument("--oracle", type=Path, default=None, help="a trained oracle-unet run (default: train one here)")
    parser.add_argument("--features", choices=("auto", "inception", "mae"), default="auto",
                        help="FID/KID network: auto = Inception if its file is here, else the MAE")
    parser.add_argument("--inception-weights", type=Path, default=None)
    parser.add_argument("--mae-run", type=Path, default=None,
                        help=f"MAE features from this `train mae` run (default: {SHIPPED_MAE.relative_to(SHIPPED_MAE.parents[2])})")
    parser.add_argument("--single-output", action="store_true",
                        help="also train the single-output StyleGAN of the same size for table 3.2 (doubles the GAN time)")
    parser.add_argument("--chunks", action="store_true", help="also score the thesis' per-chunk encoders (slow)")
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the no-shift GAN that is otherwise trained beside a default run for comparison")
    parser.add_argument("--gan-arg", action="append", default=[], metavar="ARG",
                        help="extra `train perturbgan` config flag for the GAN and its no-shift ablation "
                             "(repeat; with =, as in --gan-arg=--discriminator=projected)")
    parser.add_argument("--runs", type=Path, default=None, help="folder of the trained runs (default: runs/bench/perturbgan/...)")
    parser.add_argument("--generated-only", action="store_true",
                        help="score the generated layers only (table 3.1 and the separation figures): no encoder "
                             "(table 3.3) and no FID/KID (table 3.2)")


@register("perturbgan", help="PerturbGAN (ch. 3): generated-mask IoU vs an oracle, FID/KID, encoder IoU vs GrabCut",
          add_arguments=add_arguments)
def perturbgan_bench(args: argparse.Namespace) -> BenchResult:
    from workbench.eval.perturbgan import generated_mask_scores
    from workbench.eval.oracle import evaluate_oracle, load_or_train_oracle
    from workbench.methods.perturbgan import PRESETS, PerturbGAN, apply_ablation
    from workbench.train.checkpoint import load_method
    from workbench.train.device import pick_device, seed_everything

    start = time.perf_counter()
    device = pick_device(args.device)
    runs = args.runs or Path("runs/bench/perturbgan") / f"{args.preset}-{args.ablation}-{time.strftime('%Y%m%d-%H%M%S')}"
    timed = StageTimer()

    # the GAN's config first: the oracle must see the same scenes at the same resolution
    overrides = gan_overrides(args.gan_arg)
    if args.gan is not None and overrides:
        raise ValueError("--gan-arg sets options of a GAN trained here; it cannot change the --gan run")
    if args.gan is not None:
        gan = load_method(args.gan, device=device, method="perturbgan")
    else:
        config = apply_ablation(replace(PRESETS[args.preset], seed=args.seed, **overrides), args.ablation)
        if args.steps is not None:
            config = replace(config, steps=args.steps)
        seed_everything(config.seed)
        gan = PerturbGAN(config, device=device)
    c = gan.config
    if not c.dataset.startswith("synthetic"):
        raise ValueError(f"the bench needs synthetic scenes (true masks for the oracle), not {c.dataset!r}")

    network = None if args.generated_only else feature_network(args, device)  # before training: a missing file stops it early

    oracle = timed("oracle", lambda: load_or_train_oracle(args.oracle, preset=args.preset, dataset=c.dataset,
                                                          resolution=c.resolution, device=device,
                                                          out_dir=runs / "oracle"))
    oracle_iou = evaluate_oracle(oracle, n=N_REAL[args.preset])["iou"]

    if args.gan is None:
        gan = timed("gan", lambda: train(gan, runs / "gan"))
    generated = timed("generated masks", lambda: generated_mask_scores(gan, oracle, n=N_GENERATED[args.preset],
                                                                        seed=args.seed))
    separation = timed("separation", lambda: score_separation(gan, oracle, preset=scene_preset(c.dataset),
                                                              n=N_GENERATED[args.preset], seed=args.seed,
                                                              progress=True))  # with the ghost test
    reference = separation  # the record also holds the true scenes' figures
    noshift = None
    if args.gan is None and args.ablation == "default" and not args.no_ablation:  # the shift's own contribution
        seed_everything(config.seed)
        noshift_gan = PerturbGAN(apply_ablation(config, "no-shift"), device=device)
        noshift_gan = timed("no-shift gan", lambda: train(noshift_gan, runs / "no-shift"))
        noshift = generated_separation(noshift_gan, oracle, n=N_GENERATED[args.preset], seed=args.seed)

    iou, quality, so_quality = ({}, None, None) if args.generated_only else encoder_and_quality(args, gan, network, runs,
                                                                                            timed, device)
    total = (time.perf_counter() - start) / 60

    rows = [
        ("3.1", "generated-mask IoU vs oracle (detected)", generated["gen_mask_iou"]),
        ("3.1", "full-mask reference IoU (detected)", generated["full_mask_ref_iou"]),
        ("3.1", f"detected (of {generated['n']})", generated["detected"]),
        ("3.1", "generated-mask IoU vs oracle (all)", generated["gen_mask_iou_all"]),
        ("3.1", "mean generated mask area", generated["gen_mask_area"]),
        *separation_rows(separation, reference, noshift),
        *quality_rows("layered GAN", quality), *quality_rows("single-output GAN", so_quality),
        *[("3.3", f"{name} IoU (test split)", value) for name, value in iou.items()],
        ("-", "oracle IoU on the test split (its own accuracy)", oracle_iou),
    ]
    table = pd.DataFrame(rows, columns=["table", "measure", "value"])
    metrics = {"gen_mask_iou": generated["gen_mask_iou"], "full_mask_ref_iou": generated["full_mask_ref_iou"],
               **separation_metrics(separation, reference, noshift),
               **({} if args.generated_only else {
                   "encoder_iou": iou["encoder"], "grabcut_iou": iou.get("grabcut"), "full_iou": iou.get("full"),
                   **({"encoder_chunks_iou": iou["encoder (chunks)"]} if args.chunks else {}),
                   "fid_kind": network.kind.replace(" ", "_"), "fid": quality["fid"],
                   **({"so_fid": so_quality["fid"]} if so_quality else {})}),
               "oracle_iou": oracle_iou,
               "discriminator": c.discriminator, "ablation": args.ablation if args.gan is None else "as-trained",
               "minutes": total}
    notes = [f"{c.dataset} at {c.resolution} px, preset {args.preset}, ablation {args.ablation}, {c.steps} GAN steps, "
             f"seed {args.seed}, discriminator {c.discriminator} ({c.adversarial_loss}); runs in {runs}",
             f"minutes: {timed.summary()}; total {total:.1f} on "
             f"{torch.get_num_threads()} threads",
             f"detected = the oracle's mask covers >= 1% of the composite; {generated['n']} composites",
             *separation_notes(separation, reference, noshift),
             ("--generated-only: no encoder, no FID/KID" if network is None else f"features: {network.kind}" +
              ("" if network.is_inception else " — not Inception: comparable between runs of this bench only"))]
    return BenchResult(name="perturbgan", table=table, metrics=metrics, notes=notes)
