"""`python -m workbench bench layered`: chapter 4 end to end, one setting of table 4.1 on synthetic scenes.

One run:

1. trains the conditional layered GAN of ``--preset`` in table 4.1's ``--setting`` (a, b, c or d);
2. scores its joint segmenter (settings a-c: the discriminator's mask channel) on the test split;
3. post-trains a U-Net on the frozen generator's composites and masks (``layered-post``) and
   scores it on the same images;
4. measures FID/KID of the composites against test images (Inception from a local file, else the
   workbench MAE shipped in ``assets/move-small/mae``, labelled as such);
5. scores the foundation's baselines on the same images, for the "beats every baseline" check.

Table 4.1's columns (joint IoU, post-training IoU, FID) come first, then pixel accuracy and
max-F_β (β² = 0.3) of both segmenters, the baselines and the parameter counts.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from workbench.bench import BenchResult, StageTimer, register
from workbench.bench.perturbgan import (feature_network, separation_metrics, separation_notes,
                                        separation_rows, train)
from workbench.data.build import scene_preset
from workbench.eval.separation import generated_separation, score_separation

N_TEST = {"paper": 1000, "small": 300, "smoke": 8}  # test images scored
N_QUALITY = {"paper": 5000, "small": 1000, "smoke": 8}  # images per side for FID/KID (thesis: 5K)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from workbench.methods.layered import DISC_TRUNKS, SETTINGS, SIZE_LOSS_ON
    from workbench.nets.layered import GENERATOR_NETWORKS
    from workbench.nets.stylegan2 import ARCHITECTURES

    parser.add_argument("--setting", choices=list(SETTINGS), default="d", help="a row of table 4.1")
    parser.add_argument("--steps", type=int, default=None, help="GAN iterations (default: the preset's)")
    parser.add_argument("--max-mask", type=float, default=None,
                        help="the workbench's upper mask-area hinge (default: the preset's; 1: off, as in the thesis)")
    parser.add_argument("--rgb-init", type=float, default=None,
                        help="scale of the generator's initial to-RGB colour weights (default: the preset's; 1: StyleGAN2)")
    parser.add_argument("--network", choices=sorted(GENERATOR_NETWORKS), default=None,
                        help="the networks (default: the preset's, StyleGAN2; stylegan: chapter 3's, a ladder rung)")
    parser.add_argument("--disc-trunk", choices=DISC_TRUNKS, default=None,
                        help="the discriminator's trunk (default: the preset's, auto: the one of --network)")
    parser.add_argument("--g-architecture", choices=ARCHITECTURES, default=None,
                        help="the StyleGAN2 generator's outputs (default: the preset's, skip; orig: StyleGAN2's no-skip ablation)")
    parser.add_argument("--size-loss-on", choices=SIZE_LOSS_ON, default=None,
                        help="the mask the size hinges read (default: the preset's; original: eq. 4.3's unshifted G_m(z))")
    parser.add_argument("--post-steps", type=int, default=None, help="post-training iterations (default: the preset's)")
    parser.add_argument("--gan", type=Path, default=None,
                        help="score this trained `layered` run instead of training one (its own setting is reported)")
    parser.add_argument("--post", type=Path, default=None,
                        help="score this trained `layered-post` run instead of post-training one")
    parser.add_argument("--eval-on", action="append", default=[], metavar="SPEC",
                        help="also score both segmenters on this dataset with masks (repeatable): cub:PATH and "
                             "flowers102:PATH (centre crops, test split), duts-te:PATH, ecssd:PATH, pairs:IMAGES,MASKS")
    parser.add_argument("--dataset", default=None, help="scenes with masks to train and test on (default: the preset's)")
    parser.add_argument("--features", choices=("auto", "inception", "mae"), default="auto",
                        help="FID/KID network: auto = Inception if its file is here, else the MAE")
    parser.add_argument("--inception-weights", type=Path, default=None)
    parser.add_argument("--mae-run", type=Path, default=None, help="MAE features from this `train mae` run")
    parser.add_argument("--oracle", type=Path, default=None,
                        help="a trained oracle-unet run for the separation figures (default: train one here)")
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the no-shift GAN (max_shift 0) that is otherwise trained beside the setting")
    parser.add_argument("--runs", type=Path, default=None, help="folder of the trained runs (default: runs/bench/layered/...)")


@register("layered", help="chapter 4: joint and post-trained segmenter IoU, FID, vs baselines (table 4.1)",
          add_arguments=add_arguments)
def layered_bench(args: argparse.Namespace) -> BenchResult:
    from workbench.data import build_dataset, require_masks
    from workbench.eval.baselines import BASELINES, run_baselines
    from workbench.eval.gan_metrics import image_quality
    from workbench.eval.perturbgan import generated_composites
    from workbench.eval.oracle import load_or_train_oracle
    from workbench.eval.segmenter import evaluate_segmenter
    from workbench.methods.layered import PRESETS, SETTINGS, LayeredGAN
    from workbench.methods.layered_post import PRESETS as POST_PRESETS
    from workbench.methods.layered_post import PostSegmenter
    from workbench.nets.layered import GENERATOR_NETWORKS
    from workbench.nets.unet_discriminator import parameter_count
    from workbench.train.checkpoint import load_method
    from workbench.train.device import pick_device, seed_everything

    start = time.perf_counter()
    device = pick_device(args.device)
    runs = args.runs or Path("runs/bench/layered") / f"{args.preset}-{'scored' if args.gan else args.setting}-{time.strftime('%Y%m%d-%H%M%S')}"
    timed = StageTimer()

    if args.gan is not None:
        gan = load_method(args.gan, device=device, method="layered")
    else:
        overrides = {"setting": args.setting, "seed": args.seed}
        if args.steps is not None:
            overrides["steps"] = args.steps
        for name in ("max_mask", "rgb_init", "size_loss_on", "network", "disc_trunk", "g_architecture"):
            if getattr(args, name) is not None:
                overrides[name] = getattr(args, name)
        if args.dataset is not None:
            overrides["dataset"] = args.dataset
        config = replace(PRESETS[args.preset], **overrides)
        seed_everything(config.seed)
        gan = LayeredGAN(config, device=device)
    c = gan.config
    setting = SETTINGS[c.setting]
    test = build_dataset(c.dataset, size=c.resolution, split="test", n=N_TEST[args.preset], seed=args.seed)
    require_masks(test, c.dataset, purpose="the layered bench scores segmenters on ground-truth masks")

    network = feature_network(args, device)  # before training, so that a missing file stops the bench early

    oracle = timed("oracle", lambda: load_or_train_oracle(args.oracle, preset=args.preset, dataset=c.dataset,
                                                          resolution=c.resolution, device=device,
                                                          out_dir=runs / "oracle"))
    if args.gan is None:
        gan = timed("gan", lambda: train(gan, runs / "gan"))
    gan_path = (args.gan or runs / "gan").resolve()
    n_generated = N_QUALITY[args.preset]
    separation = timed("separation", lambda: score_separation(gan, oracle, preset=scene_preset(c.dataset), n=n_generated,
                                                              seed=args.seed, progress=True))  # with the ghost test
    reference = separation  # the record also holds the true scenes' figures
    noshift = None
    if args.gan is None and not args.no_ablation:  # the same setting without the shift (max_shift 0)
        seed_everything(config.seed)
        noshift_gan = timed("no-shift gan", lambda: train(LayeredGAN(replace(config, max_shift=0.0), device=device),
                                                          runs / "no-shift"))
        noshift = generated_separation(noshift_gan, oracle, n=n_generated, seed=args.seed)
    joint = timed("joint eval", lambda: evaluate_segmenter(gan.segment, test)) if setting.segmenter else None

    if args.post is not None:
        post = load_method(args.post, device=device, method="layered-post")
        post_config = post.config
    else:
        post_config = replace(POST_PRESETS[args.preset], seed=args.seed, generator=str(gan_path))
        if args.post_steps is not None:
            post_config = replace(post_config, steps=args.post_steps)
        seed_everything(post_config.seed)
        post = timed("post-training", lambda: train(PostSegmenter(post_config, device=device, gan=gan), runs / "post"))
    post_scores = timed("post eval", lambda: evaluate_segmenter(post.predict, test))
    other_rows = []
    for spec in args.eval_on:  # table 4.2-4.5 style rows on real datasets, at the GAN's scale
        other = build_dataset(spec, size=c.resolution, split="test")
        for name, segmenter in (("joint", gan if setting.segmenter else None), ("post-training", post)):
            if segmenter is not None:
                scores = evaluate_segmenter(segmenter.predict, other, spec=spec)
                other_rows += [(spec, f"{name}: {key}", scores[key]) for key in ("iou", "accuracy", "max_f_beta")]

    reals = torch.stack([test[i]["image"] for i in range(len(test))])
    n_quality = N_QUALITY[args.preset]
    if len(reals) < n_quality:  # more test images for the statistics of real images
        more = build_dataset(c.dataset, size=c.resolution, split="test", n=n_quality, seed=args.seed)
        reals = torch.stack([more[i]["image"] for i in range(len(more))])
    quality = timed("quality", lambda: image_quality(reals, generated_composites(gan, n_quality, seed=args.seed),
                                                     network=network, inception_score=False))
    baselines = timed("baselines", lambda: run_baselines(test, names=list(BASELINES), progress=False))
    best = baselines.loc[baselines["iou"].idxmax()]
    total = (time.perf_counter() - start) / 60

    options = dict(resolution=c.resolution, z_dim=c.z_dim, w_dim=c.w_dim, mapping_layers=c.mapping_layers,
                   width=c.width, max_width=c.max_width)
    network_class = GENERATOR_NETWORKS[c.network]  # chapter 3's pair, built of the same network
    two_generators = torch.nn.ModuleList([network_class(out_channels=3, **options),
                                          network_class(out_channels=4, **options)])
    fid, kid = quality["fid_label"], quality["kid_label"]
    nan = float("nan")
    rows = [
        ("4.1", f"({c.setting}) {setting.title}: joint training IoU", joint["iou"] if joint else nan),
        ("4.1", "post-training IoU", post_scores["iou"]),
        ("4.1", fid, quality["fid"]),
        ("4.1", f"{kid} ×10³", 1e3 * quality["kid_mean"]),
        ("4.2", "joint: pixel accuracy", joint["accuracy"] if joint else nan),
        ("4.2", "joint: max F_β", joint["max_f_beta"] if joint else nan),
        ("4.2", "post-training: pixel accuracy", post_scores["accuracy"]),
        ("4.2", "post-training: max F_β", post_scores["max_f_beta"]),
        *[("baseline", f"{row.baseline} IoU", row.iou) for row in baselines.itertuples()],
        *separation_rows(separation, reference, noshift),
        *other_rows,
    ]
    g_params, g3_params = parameter_count(gan.module("generator")), parameter_count(two_generators)
    table = pd.DataFrame(rows, columns=["table", "measure", "value"])
    metrics = {"setting": c.setting, "joint_iou": joint["iou"] if joint else "-", "post_iou": post_scores["iou"],
               "post_acc": post_scores["accuracy"], "post_maxfb": post_scores["max_f_beta"],
               "fid_kind": network.kind.replace(" ", "_"), "fid": quality["fid"],
               "grabcut_iou": float(baselines.set_index("baseline").loc["grabcut", "iou"]),
               "best_baseline": best["baseline"], "best_baseline_iou": float(best["iou"]), "g_params": g_params,
               "gen_mask_iou": separation["gen_mask_iou"], **separation_metrics(separation, reference, noshift),
               "minutes": total}
    notes = [f"{c.dataset} at {c.resolution} px, preset {args.preset}, setting ({c.setting}), max_mask {c.max_mask}, "
             f"rgb_init {c.rgb_init}, size hinges on the {c.size_loss_on} mask, {c.network} generator"
             f"{f' ({c.g_architecture} outputs)' if c.network == 'stylegan2' else ''}, "
             f"{gan.discriminator.architecture} discriminator trunk, "
             f"{c.steps} GAN steps, "
             f"{post_config.steps} post-training steps, seed {args.seed}; {len(test)} test images; runs in {runs}",
             f"minutes: {timed.summary()}; total {total:.1f} on "
             f"{torch.get_num_threads()} threads",
             *separation_notes(separation, reference, noshift),
             f"parameters: conditional {c.network} generator {g_params:,}, chapter 3's two generators of the same "
             f"network and widths "
             f"{g3_params:,} ({g_params / g3_params:.2f}×); discriminator {parameter_count(gan.module('discriminator')):,}",
             f"features: {network.kind}" + ("" if network.is_inception else
                                            " — not Inception: comparable between runs of this bench only")]
    return BenchResult(name="layered", table=table, metrics=metrics, notes=notes)
