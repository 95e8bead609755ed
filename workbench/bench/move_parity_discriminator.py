"""Fixture checks of MOVE's projected discriminator, its hinge losses and the official metrics (issue 13).

The reference tensors (``shared/fixtures/move-official``, see its README) were computed by the
official MOVE code. Each function here recomputes them with the workbench and returns one row per
compared output: ``{"item", "max_abs_diff", "tolerance"}``. A row passes when
``max_abs_diff <= tolerance``; the tolerance is 4x the output's float32 rounding scale
(``float32_vs_float64_maxabs`` of the fixture's JSON) where the fixture gives one, and is stated
next to each row otherwise. ``python -m workbench bench move-parity`` prints them; the tests of
``tests/test_move_parity_discriminator.py`` and ``tests/test_eval_official_metrics.py`` assert them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
F32_EPS = float(np.finfo(np.float32).eps)  # 2^-23

# helpers


def _row(item: str, diff: float, tolerance: float) -> dict:
    return {"item": item, "max_abs_diff": float(diff), "tolerance": float(tolerance)}


def _maxabs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def denormalize(x_norm: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised images (B, 3, H, W) -> [0, 1] (float32, ``x·std + mean``)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x_norm * std + mean


def decode_discriminator_weights(fixtures: Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``discriminator_weights.safetensors`` under its official key, floats as float32.

    Spectral-norm ``weight_orig`` tensors are stored as packed sign bits (README, "File formats"):
    bit 1 is +2^e, bit 0 is -2^e, C order, most significant bit first.
    """
    from safetensors.numpy import load_file

    meta = json.loads((fixtures / "discriminator.json").read_text())["encodings"]
    raw = load_file(str(fixtures / "discriminator_weights.safetensors"))
    out = {}
    for key, value in raw.items():
        encoding = meta.get(key, {}).get("encoding")
        if encoding == "signbits":
            shape, e = meta[key]["shape"], meta[key]["exponent"]
            n = int(np.prod(shape))
            bits = np.unpackbits(value)[:n].astype(np.float32)
            out[key] = torch.from_numpy((bits * 2 - 1).reshape(shape) * np.float32(2.0 ** e))
        elif np.issubdtype(value.dtype, np.floating):
            out[key] = torch.from_numpy(value.astype(np.float32))
        else:
            out[key] = torch.from_numpy(value)
    return out


@lru_cache(maxsize=2)
def _pyramid(bn_pass: bool):
    from workbench.nets.discriminators import EfficientNetPyramid

    return EfficientNetPyramid(None, resize=224, bn_pass=bn_pass)


def build_fixture_discriminator(fixtures: Path):
    """(pyramid, discriminator, stored state): the workbench's official-architecture discriminator with the
    fixture's tensors loaded by their official names; the pyramid runs the constructor's BatchNorm pass itself."""
    from workbench.nets.projected_gan import ProjectedGANDiscriminator, from_official_state
    from workbench.nets.weights import load_state_dict_strict

    pyramid = _pyramid(True)
    D = ProjectedGANDiscriminator(channels=pyramid.channels)
    state = from_official_state(decode_discriminator_weights(fixtures))
    load_state_dict_strict(D, state, source=str(fixtures / "discriminator_weights.safetensors"))
    return pyramid, D, state


def fixture_inputs(fixtures: Path) -> dict[str, torch.Tensor]:
    """The discriminator's four inputs of the fixtures, in [0, 1]: real224, fake224, real64, fake64."""
    from safetensors.torch import load_file

    composer = load_file(str(fixtures / "composer.safetensors"))
    io = load_file(str(fixtures / "discriminator_io.safetensors"))
    normalised = {"real224": composer["x_norm"], "fake224": composer["mse.real_ae_shift_cp"],
                  "real64": io["input.real64"], "fake64": io["input.fake64"]}
    return {k: denormalize(v.float()) for k, v in normalised.items()}


# discriminator


def discriminator_checks(fixtures: Path) -> list[dict]:
    """Recompute every discriminator fixture output: EfficientNet statistics after the constructor,
    logits in eval and train mode at 224 and 64 px, the state after a train call, the hinge losses,
    the trainable parameter count and the official checkpoint's key list."""
    from safetensors.torch import load_file

    from workbench.losses import Hinge
    from workbench.nets.projected_gan import official_efficientnet_key, official_key

    fixtures = Path(fixtures)
    info = json.loads((fixtures / "discriminator.json").read_text())
    scale = info["float32_vs_float64_maxabs"]
    io = load_file(str(fixtures / "discriminator_io.safetensors"))
    stored = decode_discriminator_weights(fixtures)
    pyramid, D, state = build_fixture_discriminator(fixtures)
    rows = []

    # the constructor's all-zero pass through the EfficientNet in training mode (BatchNorm statistics)
    for kind in ("running_mean", "running_var", "num_batches_tracked"):
        diffs, refs = [], []
        for key, value in pyramid.net.state_dict().items():
            if key.endswith(kind) and key.startswith(("conv_stem", "bn1", "blocks")):
                ref = stored[official_efficientnet_key(key)]
                diffs.append(_maxabs(value, ref))
                refs.append(float(ref.double().abs().max()))
        # tolerance: 4 float32 ulps of the largest statistic (one momentum step of float32 sums)
        tolerance = 0.0 if kind == "num_batches_tracked" else 4 * F32_EPS * max(refs)
        rows.append(_row(f"effnet BN {kind} after the constructor's pass ({len(diffs)} tensors)", max(diffs), tolerance))

    # logits: eval mode, and train mode from the stored state each time
    inputs = fixture_inputs(fixtures)
    logits = {}
    with torch.no_grad():
        for mode in ("eval", "train"):
            for name, x in inputs.items():
                D.load_state_dict(state)
                D.train(mode == "train")
                out = D(pyramid(x))  # (2, 64)
                logits[f"{mode}.{name}"] = out
                key = f"{mode}.{name}.logits"
                rows.append(_row(f"logits {key}", _maxabs(out, io[key]), 4 * scale[key]))
                if mode == "train" and name == "real224":
                    after = {k.removeprefix("after_train_real224."): v for k, v in io.items()
                             if k.startswith("after_train_real224.")}
                    ours = {official_key(k): v for k, v in D.state_dict().items()}
                    for kind in ("weight_u", "weight_v", "running_mean", "running_var", "num_batches_tracked"):
                        keys = [k for k in after if k.endswith(kind)]
                        diff = max(_maxabs(ours[k], after[k]) for k in keys)
                        # u, v: 4 ulps of a unit vector's entries; BN statistics: the logits' rounding scale
                        tolerance = {"weight_u": 4 * F32_EPS, "weight_v": 4 * F32_EPS,
                                     "num_batches_tracked": 0.0}.get(kind, 4 * scale[key])
                        rows.append(_row(f"state after train.real224: {kind} ({len(keys)} tensors)", diff, tolerance))
    D.load_state_dict(state)

    # hinge losses over every patch logit (one fake and one real set)
    hinge = Hinge()
    for mode in ("eval", "train"):
        for size in ("224", "64"):
            fake, real = logits[f"{mode}.fake{size}"], logits[f"{mode}.real{size}"]
            ref = info["losses"][f"{mode}.{size}"]
            loss_d = hinge.from_sets([real], [fake])  # mean over every patch logit of each set
            loss_g = hinge.generator(fake)
            rows.append(_row(f"loss_d {mode}.{size}", abs(float(loss_d) - ref["loss_d"]), 4 * scale[f"loss_d {mode}.{size}"]))
            rows.append(_row(f"loss_g {mode}.{size}", abs(float(loss_g) - ref["loss_g"]), 4 * scale[f"loss_g {mode}.{size}"]))

    # architecture: trainable parameters and the official checkpoint's keys and shapes
    trainable = sum(p.numel() for p in D.parameters() if p.requires_grad)
    rows.append(_row("trainable parameters", abs(trainable - info["trainable_parameter_count"]), 0))
    ours = {official_key(k): tuple(v.shape) for k, v in D.state_dict().items()}
    ours.update({official_efficientnet_key(k): tuple(v.shape) for k, v in pyramid.net.state_dict().items()
                 if k.startswith(("conv_stem", "bn1", "blocks")) and not k.endswith(("weight", "bias"))})
    ckpt = {k: tuple(v["shape"]) for k, v in info["official_ckpt_discriminator_keys"].items()}
    frozen = {k for k in ours if ".scratch." in k}  # the official checkpoint drops the frozen random mixing
    missing = set(ckpt) - set(ours)
    extra = set(ours) - set(ckpt) - frozen
    shapes = sum(ours[k] != ckpt[k] for k in set(ckpt) & set(ours))
    rows.append(_row(f"official checkpoint keys ({len(ckpt)}): missing + unexpected + mis-shaped",
                     len(missing) + len(extra) + shapes, 0))
    mapped = {official_efficientnet_key(t): t for t in pyramid.net.state_dict()
              if t.startswith(("conv_stem", "bn1", "blocks.")) and int(t.split(".")[1] if t.startswith("blocks") else 0) < 7}
    wrong = sum(mapped.get(k) != v for k, v in info["effnet_official_to_timm_keys"].items())
    rows.append(_row("EfficientNet key map official -> timm: differing entries", wrong, 0))
    return rows


# metrics


def metrics_checks(fixtures: Path) -> list[dict]:
    """Recompute the official ``segmentation_eval.py`` outputs of the metrics fixture with
    :func:`workbench.eval.folders.evaluate_folders_official` (``eval --convention official``): per-image IoU, accuracy, precision and recall at
    0.5, the F-beta curves, each image's max and argmax, the PIL-resized predictions, and the
    aggregates (mean IoU, mean accuracy, FBetaMax, FBetaArgMax, FBetaMaxPerImg, F-beta at 0.5)."""
    from PIL import Image
    from safetensors.numpy import load_file

    from workbench.eval.folders import evaluate_folders_official, read_official_prediction
    from workbench.eval.metrics import official_aggregates

    fixtures = Path(fixtures)
    info = json.loads((fixtures / "metrics.json").read_text())
    curves = load_file(str(fixtures / "metrics_curves.safetensors"))
    root = fixtures / "metrics"
    per_image, summary, details = evaluate_folders_official(root / "pred" / "cls", root / "gt" / "cls", progress=False)
    names = list(per_image["name"])
    rows = []
    ulp = F32_EPS / 2  # float32 rounding of one value in [0.5, 1]

    # the resize: PIL bilinear of the 8-bit prediction to the ground truth's size
    diffs = []
    for path in sorted((root / "pred_resized" / "cls").iterdir()):
        gt_size = Image.open(root / "gt" / "cls" / path.name).size
        ours = read_official_prediction(root / "pred" / "cls" / path.name, size=gt_size)
        diffs.append(float(np.abs(ours.astype(np.int64) - np.asarray(Image.open(path), np.int64)).max()))
    rows.append(_row(f"PIL-resized predictions ({len(diffs)} images, grey levels)", max(diffs), 0))

    # per-image values (float32 computations, exact up to one rounding)
    per = info["per_image"]
    for column, key in (("iou", "iou"), ("accuracy", "accuracy"), ("precision", "precision_at_0.5"),
                        ("recall", "recall_at_0.5"), ("max_f_beta", "fbeta_max")):
        diff = max(abs(float(v) - per[n][key]) for n, v in zip(names, per_image[column]))
        rows.append(_row(f"per-image {key} ({len(names)} images)", diff, 4 * ulp))
    argmax = max(abs(int(v) - per[n]["fbeta_argmax"]) for n, v in zip(names, per_image["best_level"]))
    rows.append(_row("per-image fbeta_argmax", argmax, 0))
    order = [int(n.removeprefix("img")) for n in names]
    for key, ours_key in (("precision", "precision"), ("recall", "recall"), ("fbeta", "f_beta")):
        diff = np.abs(details[ours_key].astype(np.float64) - curves[key][order]).max()
        rows.append(_row(f"curves {key} ({len(names)} x 256)", diff, 4 * ulp))

    # aggregates; the official float32 means depend on the folder listing order (README, 1e-7 level), so the
    # tolerance is 4x the float32 rounding scale of a mean of N float32 values: N ulps
    reference = info["official_fbeta"]
    n = len(names)
    agg_tol = 4 * n * ulp
    ours = {"Mean IoU": summary["iou"][0], "Mean Accuracy": summary["accuracy"][0], "FBetaMax": summary["max_f_beta"][0],
            "FBetaMaxPerImg": summary["max_f_beta_per_image"][0]}
    for key, value in ours.items():
        rows.append(_row(key, abs(float(value) - reference[key]), agg_tol))
    rows.append(_row("FBetaArgMax", abs(int(round(summary["max_f_beta_threshold"][0] * 256)) - reference["FBetaArgMax"]), 0))
    rows.append(_row("FBeta (not max), plain mode", abs(float(summary["f_beta"][0]) - info["official_plain"]["FBeta (not max)"][0]),
                     agg_tol))
    again = official_aggregates(curves["fbeta"])  # the aggregation alone, on the official curves
    rows.append(_row("FBetaMax from the official curves", abs(again["max_f_beta"] - reference["FBetaMax"]), agg_tol))
    return rows
