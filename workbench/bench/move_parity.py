"""`python -m workbench bench move-parity`: the workbench's MOVE against reference tensors of the official code.

The fixtures (``shared/fixtures/move-official``; its README says what each tensor is) hold inputs
and outputs of the official MOVE code. Each check function here recomputes a group of them with
the workbench (the ``paper`` preset's switches) and returns one row per compared output:
``{"item", "max_abs_diff", "tolerance"}``. A row passes when ``max_abs_diff <= tolerance``.

Tolerances: 4x the output's float32 rounding scale, the fixture's ``float32_vs_float64_maxabs``
(the largest |float32 - float64| of the official computation). Where a fixture gives none (the
mask losses, the BatchNorm statistics after a train step), the scale is measured the same way on
the workbench's computation: run once in float32 and once in float64 from the same inputs, and
take the largest difference (at least one float32 ulp of the reference value).

Checks (the issue-13 items they prove):

- :func:`composer_checks` (items 1, 6): the tiny official MAE loaded by its official key names,
  both inpainter paths (``gan``: autoencoded composites; ``mse``: real pixels), every output and
  the mask gradient, with the official mean-colour shift fill.
- :func:`mask_loss_checks` (item 2): the nine official mask-loss terms and their total, on m and
  on m_δ, for both fixture configs and the warm-up steps.
- :func:`segmenter_head_checks` (item 5): the official head (widths, bias, zero padding,
  LeakyReLU 0.01, LayerNorm eps 1e-6) loaded by the official keys, train and eval mode, and the
  BatchNorm statistics after the train-mode call.
- :func:`~workbench.bench.move_parity_discriminator.discriminator_checks` (items 3, 4, section 1):
  the official projected discriminator, its encodings, logits and hinge losses, the BatchNorm
  state after a train call; :func:`~workbench.bench.move_parity_discriminator.metrics_checks`
  (item 10): ``eval --convention official`` against the official metrics script.

The list :data:`CHECKS` is what the benchmark runs; other modules' check functions (same signature,
``fn(fixtures: Path) -> list[dict]``) are added to it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from workbench.bench import BenchResult, register
from workbench.bench.move_parity_discriminator import discriminator_checks, metrics_checks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
F32_EPS = float(torch.finfo(torch.float32).eps)  # 2^-23
FACTOR = 4.0  # tolerance = FACTOR x the float32 rounding scale
DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "move-official"

# helpers


def find_fixtures(path: str | Path | None = None) -> Path:
    """The fixtures folder (``path``, else ``../shared/fixtures/move-official`` of the repository root)."""
    folder = Path(path).expanduser() if path is not None else DEFAULT_FIXTURES.resolve()
    if not (folder / "README.md").is_file() or not (folder / "composer.json").is_file():
        raise FileNotFoundError(f"MOVE reference fixtures not found in {folder} (expected README.md, composer.json, "
                                "...); pass their folder with --fixtures")
    return folder


def _row(item: str, diff: float, tolerance: float) -> dict:
    return {"item": item, "max_abs_diff": float(diff), "tolerance": float(tolerance)}


def _maxabs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0


def _load(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file; floating tensors as float32 (the float16 ones are exact)."""
    from safetensors.torch import load_file

    return {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path)).items()}


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] images (B, 3, H, W) -> ImageNet-normalised, as the official ``normalize`` (float32 sub, then div)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x01.dtype).view(1, 3, 1, 1)
    return (x01 - mean) / std


def rounding_scale(f32: torch.Tensor, f64: torch.Tensor) -> float:
    """The measured float32 rounding scale: max |f32 − f64|, at least one ulp of the largest value."""
    return max(_maxabs(f32, f64), F32_EPS * float(f64.abs().max()))


# the composer (items 1 and 6)


def fixture_mae(fixtures: Path):
    """The composer fixture's tiny MAE (``composer.json`` → ``mae_config``), its official keys loaded strictly.

    The official MAE keys are the workbench MAE's own names (``workbench.nets.mae``), so the map is the identity.
    """
    from workbench.nets.mae import MAE
    from workbench.nets.weights import load_state_dict_strict

    cfg = json.loads((fixtures / "composer.json").read_text())["mae_config"]
    mae = MAE(img_size=cfg["img_size"], patch_size=cfg["patch_size"], in_chans=cfg["in_chans"],
              embed_dim=cfg["embed_dim"], depth=cfg["depth"], num_heads=cfg["num_heads"],
              decoder_embed_dim=cfg["decoder_embed_dim"], decoder_depth=cfg["decoder_depth"],
              decoder_num_heads=cfg["decoder_num_heads"], mlp_ratio=cfg["mlp_ratio"])
    load_state_dict_strict(mae, _load(fixtures / "composer_mae.safetensors"), source="composer_mae.safetensors")
    return mae.eval()


def fixture_move(fixtures: Path, **overrides):
    """A MOVE of the ``paper`` preset's composer switches around the fixture MAE, at 224 px, on the CPU.

    Only the composer is used: the rest is the ``smoke`` preset's small parts (MAE features, no DINO).
    """
    from dataclasses import replace

    from workbench.methods.move import MOVE, PRESETS

    paper = PRESETS["paper"]
    parity = {k: getattr(paper, k) for k in ("shift_fill", "inpainter", "share_encoder", "shift_autoencoding",
                                            "mask_loss_on", "mae_pos_resample", "mask_loss_pool")}
    config = replace(PRESETS["smoke"], size=224, **{**parity, **overrides})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MOVE(config, mae=fixture_mae(fixtures))


OUR_NAMES = {  # official composer output -> key of MOVE.compose
    "pred_bg": "background", "real_ae": "autoencoded", "real_ae_shifted": "shifted_source",
    "composed_noshift": "composed", "composed": "shifted", "real_ae_shift_cp": "copy_paste",
}


def composer_checks(fixtures: Path, *, overrides: dict | None = None) -> list[dict]:
    """Every composer output of both official paths, and the MAE latent (``composer.safetensors``).

    ``overrides``: MOVE config switches to check instead of the paper preset's (e.g. ``shift_fill="black"``).
    """
    fixtures = Path(fixtures)
    info = json.loads((fixtures / "composer.json").read_text())
    scale = info["float32_vs_float64_maxabs"]
    ref = _load(fixtures / "composer.safetensors")
    x01 = ref["image_u8"].to(torch.float32) / 255  # (2, 3, 224, 224)
    offset = ref["shifts"].flip(1)  # official (dx, dy) -> workbench (dy, dx)
    rows = [_row("composer: x_norm (input normalisation)", _maxabs(normalize(x01), ref["x_norm"]), 0.0)]
    for path, inpainter in (("gan", "gan"), ("mse", "mse")):
        move = fixture_move(fixtures, **{**(overrides or {}), "inpainter": inpainter})
        mask = ref["mask"].clone().requires_grad_(True)  # (2, 1, 224, 224)
        out = move.compose(x01, mask, offset)
        if path == "gan":
            with torch.no_grad():
                latent = move.encode_mae(x01)
            rows.append(_row("composer: latent (final normalised MAE latent)", _maxabs(latent, ref["latent"]),
                             FACTOR * scale["latent"]))
            rows.append(_row("composer: mask_shifted", _maxabs(out["shifted_mask"], ref["mask_shifted"]),
                             FACTOR * scale["mask_shifted"]))
            keep = 1 - out["inpaint_mask"].flatten(1)  # (2, 196) the official bg_encoder_mask
            rows.append(_row("composer: bg_encoder_mask", _maxabs(keep, ref["bg_encoder_mask"]),
                             FACTOR * scale["bg_encoder_mask"]))
        for name, ours in OUR_NAMES.items():
            key = f"{path}.{name}"
            if key in ref:
                rows.append(_row(f"composer {path}: {name}", _maxabs(normalize(out[ours].detach()), ref[key]),
                                 FACTOR * scale[key]))
        (grad,) = torch.autograd.grad(normalize(out["shifted"]).sum(), mask)
        key = f"{path}.grad_mask_sum_composed"
        rows.append(_row(f"composer {path}: grad_mask_sum_composed", _maxabs(grad, ref[key]), FACTOR * scale[key]))
    return rows


# the mask losses (item 2)


def _official_total(terms: dict[str, torch.Tensor], *, alphas: dict[str, float]) -> torch.Tensor:
    """The official total: α · term per (version, loss), summed in the official order (version-major)."""
    total = torch.zeros((), dtype=terms["bin"].dtype)
    for v in range(terms["bin"].numel()):
        for name in ("bin", "min", "max"):
            total = total + alphas[name] * terms[name][v]
    return total


def mask_loss_checks(fixtures: Path) -> list[dict]:
    """The official mask-loss terms and totals (``mask_losses.json``) from the workbench's ``mask_loss_terms``."""
    from workbench.methods.move import PRESETS, bin_ramp, mask_loss_terms
    from workbench.ops import translate

    fixtures = Path(fixtures)
    info = json.loads((fixtures / "mask_losses.json").read_text())
    ref = _load(fixtures / "mask_losses.safetensors")
    masks, offset = ref["masks"], ref["shifts"].flip(1)  # (4, 1, 224, 224); (dx, dy) -> (dy, dx)
    versions = {"org": masks, "shifted": translate(masks, offset)}
    names = {"bin": "bin", "min": "minarea", "max": "maxarea"}
    rows = []
    for config_name, cfg in info["configs"].items():
        for on, mask in versions.items():
            key = "mask" if on == "org" else "mask_shifted"
            entries = [e for e in info["results"] if e["config"] == config_name and e["mask_loss_on"] == on]
            diffs, scales = [], []
            for dtype in (torch.float32, torch.float64):
                terms = mask_loss_terms(mask.to(dtype), patch=PRESETS["paper"].mask_loss_pool, pooled=True,
                                        min_area=cfg["min_mask_area"], max_area=cfg["max_mask_area"])
                values = []
                for e in entries:
                    alphas = {"bin": bin_ramp(e["segmenter_step"], weight=cfg["bin_mask_alpha"],
                                              ramp_steps=cfg["bin_warmup_iters"]),
                              "min": cfg["min_mask_alpha"], "max": cfg["max_mask_alpha"]}
                    raw = [terms[n][v] for v in range(3) for n in ("bin", "min", "max")]
                    values.append(torch.stack([_official_total(terms, alphas=alphas), *raw]))
                if dtype == torch.float32:
                    ours32 = torch.stack(values)
                else:
                    ours64 = torch.stack(values)
            keys = [key, "mask_avg16", "mask_max16"]  # the official names of the three versions
            expected = torch.tensor([[e["total"], *[e["raw"][f"{names[n]}_{k}"] for k in keys
                                                    for n in ("bin", "min", "max")]] for e in entries],
                                    dtype=torch.float64)
            diffs.append(_maxabs(ours32, expected))
            scales.append(rounding_scale(ours32, ours64))
            rows.append(_row(f"mask losses {config_name}, on {on}: total and 9 terms, {len(entries)} steps",
                             max(diffs), FACTOR * max(scales)))
    rows.append(mask_loss_pool_check(info, versions))
    return rows


def mask_loss_pool_check(info: dict, versions: dict[str, torch.Tensor]) -> dict:
    """``MOVE.mask_losses`` of a MOVE whose MAE has 8-px patches, with the paper's ``mask_loss_pool`` (16): the
    official sums of L_bin and L_min over the three versions (default config, m and m_δ), which pool by 16 whatever
    the MAE."""
    from dataclasses import replace

    from workbench.methods.move import MOVE, PRESETS

    config = replace(PRESETS["smoke"], mask_loss_pool=PRESETS["paper"].mask_loss_pool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        move = MOVE(config)  # the smoke preset's tiny MAE, 8-px patches
    diffs, scales = [], []
    for on, mask in versions.items():
        raw = next(e["raw"] for e in info["results"] if e["config"] == "default" and e["mask_loss_on"] == on)
        key = "mask" if on == "org" else "mask_shifted"
        expected = torch.tensor([sum(raw[f"{n}_{k}"] for k in (key, "mask_avg16", "mask_max16"))
                                 for n in ("bin", "minarea")], dtype=torch.float64)
        ours32, ours64 = (torch.stack([move.mask_losses(mask.to(dtype))[n] for n in ("bin", "min")])
                          for dtype in (torch.float32, torch.float64))
        diffs.append(_maxabs(ours32, expected))
        scales.append(rounding_scale(ours32, ours64))
    return _row(f"mask losses pooled by mask_loss_pool={config.mask_loss_pool} with an "
                f"{move.mae.patch_size}-px-patch MAE (L_bin, L_min sums on m and m_δ)", max(diffs),
                FACTOR * max(scales))


# the segmenter head (item 5)


def segmenter_head_checks(fixtures: Path) -> list[dict]:
    """The official head (``segmenter_head.safetensors``) built and loaded by the official keys, train and eval."""
    from workbench.methods.move_official import head_from_official, head_key_map

    fixtures = Path(fixtures)
    info = json.loads((fixtures / "segmenter_head.json").read_text())
    scale = info["float32_vs_float64_maxabs"]
    ref = _load(fixtures / "segmenter_head.safetensors")
    weights = {k: v for k, v in ref.items() if k.startswith("weights.")}
    tokens = ref["input.tokens"]  # (2, 785, 384), class token first
    side = int(round((tokens.shape[1] - 1) ** 0.5))
    grid = tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, side, side)  # (2, 384, 28, 28) row-major
    head = head_from_official(weights, prefix="weights.")
    rows = []
    widths = [m.out_channels for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    rows.append(_row(f"segmenter head: widths {widths} vs official {info['widths']}",
                     0.0 if widths == info["widths"] else float("inf"), 0.0))
    inputs: dict[str, torch.Tensor] = {}  # the BatchNorm inputs of the train call, for the statistics' rounding scale
    bns = {name: m for name, m in head.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: inputs.__setitem__(name, args[0].detach()))
             for name, m in bns.items()]
    before = {name: (m.running_mean.clone(), m.running_var.clone()) for name, m in bns.items()}
    with torch.no_grad():
        head.eval()
        rows.append(_row("segmenter head: mask_eval", _maxabs(head(grid), ref["mask_eval"]),
                         FACTOR * scale["mask_eval"]))
        head.train()
        rows.append(_row("segmenter head: mask_train", _maxabs(head(grid), ref["mask_train"]),
                         FACTOR * scale["mask_train"]))
    for hook in hooks:
        hook.remove()
    ours = head.state_dict()
    mapping = head_key_map(head, prefix="after_train.")
    for stat in ("running_mean", "running_var", "num_batches_tracked"):
        keys = [k for k in ref if k.startswith("after_train.") and k.endswith(stat)]
        diff = max(_maxabs(ours[mapping[k]], ref[k]) for k in keys)
        tol = 0.0
        if stat != "num_batches_tracked":  # the same momentum update from float64 statistics of the same inputs
            scales = []
            for k in keys:
                name = mapping[k].rsplit(".", 1)[0]
                x = inputs[name].double()  # (B, C, H, W)
                batch = x.mean((0, 2, 3)) if stat == "running_mean" else x.var((0, 2, 3), unbiased=True)
                old = before[name][0 if stat == "running_mean" else 1].double()
                scales.append(rounding_scale(ours[mapping[k]], 0.9 * old + 0.1 * batch))
            tol = FACTOR * max(scales)
        rows.append(_row(f"segmenter head: BatchNorm {stat} after the train call ({len(keys)} layers)", diff, tol))
    return rows


CHECKS: list[Callable[[Path], list[dict]]] = [composer_checks, mask_loss_checks, segmenter_head_checks,
                                               discriminator_checks, metrics_checks]


def run_checks(fixtures: Path, checks: list[Callable[[Path], list[dict]]] | None = None) -> pd.DataFrame:
    """Every check's rows as a table with the ratio diff/tolerance and pass (diff <= tolerance)."""
    rows = [row for check in (CHECKS if checks is None else checks) for row in check(fixtures)]
    table = pd.DataFrame(rows, columns=["item", "max_abs_diff", "tolerance"])
    table["ratio"] = [d / t if t > 0 else (0.0 if d == 0 else float("inf"))
                      for d, t in zip(table["max_abs_diff"], table["tolerance"])]
    table["pass"] = table["max_abs_diff"] <= table["tolerance"]
    return table


# the benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fixtures", type=Path, default=None,
                        help="folder of the official MOVE reference tensors (default: ../shared/fixtures/move-official "
                             "beside the repository)")


@register("move-parity", help="recompute the official MOVE reference tensors (composer, mask losses, head, ...) "
                              "and compare them within 4x their float32 rounding scale", add_arguments=add_arguments)
def run(args: argparse.Namespace) -> BenchResult:
    fixtures = find_fixtures(getattr(args, "fixtures", None))
    torch.manual_seed(args.seed)
    table = run_checks(fixtures)
    failed = int((~table["pass"]).sum())
    max_ratio = float(table["ratio"].max()) if len(table) else 0.0
    notes = [f"fixtures: {fixtures}", "tolerance: 4x the float32 rounding scale of each output (see the module "
             "docstring); ratio = max_abs_diff / tolerance"]
    if failed:
        notes.append("FAILED: " + "; ".join(table.loc[~table["pass"], "item"]))
    return BenchResult(name="move-parity", table=table,
                       metrics={"checks": len(table), "failed": failed, "max_ratio": max_ratio}, notes=notes)
