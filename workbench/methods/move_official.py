"""The official MOVE code (adambielski/move-seg) in the workbench: its key names and its released model.

The official checkpoint (``checkpoint-N.pth``, written by the official ``ModelSaver``) holds the
state dict of the official composer under ``"model"``, with an ``argparse.Namespace`` of the
training options under ``"args"`` (and again in ``checkpoint-N.args`` beside it). Its keys:

==========================================  ==================================  ===================
official key                                 workbench module                    in the checkpoint
==========================================  ==================================  ===================
``segmenter.feature_extractor.norm.*``       ``head.norm.*`` (LayerNorm, eps 1e-6)  always
``segmenter.segmenter_head.model.{i}.*``     ``head.blocks.{i}.*`` (i < n)       always
``segmenter.segmenter_head.model.{n}.*``     ``head.out.*`` (the 1x1 conv)       always
``segmenter.feature_extractor.model.*``      ``extractor.vit.*`` (timm DINO ViT-S/8,
                                             the same names)                     epoch 0 only
``mae_model.*``                              ``MAE`` (workbench.nets.mae, the same names)  epoch 0 only
==========================================  ==================================  ===================

A checkpoint saved after the first epoch keeps only the trained parameters and the buffers, so the
frozen DINO and MAE weights are not in it: :func:`load_official_move` then takes DINO from
``features_weights`` or the usual lookup (:class:`workbench.nets.features.DinoFeatures`). Prediction
does not use the MAE; its keys are checked by prefix and left out.

Reading is safe: ``torch.load(weights_only=True)`` with one extra allowed class,
``argparse.Namespace`` (a plain attribute holder), so a checkpoint that pickles anything else is
refused; the ``.args`` file is read the same way.

:class:`OfficialMOVE` predicts as the official ``infer.py``: the image resized so that its shorter
side is 448 px (bicubic, aspect kept), padded by reflection to a multiple of the patch size on the
right and bottom, segmented, cropped back; the workbench then resizes the mask to the input's size
(bilinear, as the official ``segmentation_eval.py`` does before scoring). The DINO tokens are the
official extractor's (:func:`official_dino_features`): at any size other than 224 × 224 the
position table is resized as DINO's ``interpolate_pos_encoding`` does it (bicubic by the scale
factor (n + 0.1)/√N per axis, no antialiasing), not as timm resizes it (to the exact size, with
antialiasing), which gives other tokens.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.nets.mae import IMAGENET_MEAN, IMAGENET_STD
from workbench.nets.segmenter import SegmenterHead
from workbench.nets.vit import rescale_pos_embed
from workbench.nets.weights import CheckpointError, StateDictMismatchError, _weights_only_failure, \
    load_state_dict_strict
from workbench.ops.rescale import pad_to_multiple, segment_at_shorter_side

__all__ = ["OFFICIAL_DINO", "OFFICIAL_HEAD", "OFFICIAL_MAE", "OFFICIAL_NORM", "OfficialMOVE", "dino_position_table",
           "head_from_official", "head_key_map", "load_official_move", "official_dino_features",
           "read_official_checkpoint"]

OFFICIAL_NORM = "segmenter.feature_extractor.norm."  # the trainable LayerNorm on the frozen tokens
OFFICIAL_HEAD = "segmenter.segmenter_head.model."  # the conv head
OFFICIAL_DINO = "segmenter.feature_extractor.model."  # the frozen DINO ViT (epoch-0 checkpoints only)
OFFICIAL_MAE = "mae_model."  # the frozen MAE (epoch-0 checkpoints only)
INFERENCE_SIZE = 448  # the official infer.py's shorter side
DEFAULT_ARGS = {"feature_extractor": "dino_vits8", "extractor_block_layer": -2, "segmenter_head": "conv_minc128"}

# key maps


def head_key_map(head: SegmenterHead, *, prefix: str = "segmenter.") -> dict[str, str]:
    """Official key -> key of ``head``'s state dict, for every entry of ``head``.

    ``prefix`` is what comes before ``feature_extractor.`` / ``segmenter_head.``: ``"segmenter."``
    in the official composer and checkpoint, ``"weights."`` in the reference fixtures' files.
    """
    n = len(head.blocks)
    mapping = {}
    for key in head.state_dict():
        if key.startswith("norm."):
            mapping[f"{prefix}feature_extractor.{key}"] = key
        elif key.startswith("blocks."):
            mapping[f"{prefix}segmenter_head.model.{key.removeprefix('blocks.')}"] = key
        elif key.startswith("out."):
            mapping[f"{prefix}segmenter_head.model.{n}.{key.removeprefix('out.')}"] = key
        else:  # pragma: no cover - the head has no other entries
            raise KeyError(f"no official name for head entry {key}")
    return mapping


def head_from_official(state: dict[str, torch.Tensor], *, prefix: str = "segmenter.") -> SegmenterHead:
    """The official head of a state dict: built from its shapes (widths, depth, patch size) and loaded strictly.

    The official ``conv`` heads are ``log2(P)`` upsampling blocks and one without upsampling, each
    ``blockd`` times (3x3 conv with bias, BatchNorm, LeakyReLU 0.01), then a 1x1 conv, with zero padding;
    a LayerNorm (eps 1e-6) on the tokens when ``feature_extractor.norm`` is there.
    """
    head_prefix = f"{prefix}segmenter_head.model."
    entries: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith(head_prefix):
            index, _, rest = key.removeprefix(head_prefix).partition(".")
            entries.setdefault(int(index), {})[rest] = value
    if not entries:
        raise CheckpointError(f"no official segmenter head in the state dict (no keys {head_prefix}*)")
    n = max(entries)  # the 1x1 conv
    widths, depth = [], None
    for i in range(n):
        convs = sorted((k for k, v in entries.get(i, {}).items() if k.endswith(".weight") and v.ndim == 4),
                       key=lambda k: int(k.split(".")[0]))
        if not convs:
            raise CheckpointError(f"official head block {i} has no convolution ({head_prefix}{i}.*)")
        widths.append(int(entries[i][convs[0]].shape[0]))
        if depth is None:
            depth = len(convs)
    in_dim = int(entries[0][min((k for k, v in entries[0].items() if k.endswith(".weight") and v.ndim == 4),
                                key=lambda k: int(k.split(".")[0]))].shape[1])
    norm = f"{prefix}feature_extractor.norm.weight" in state
    head = SegmenterHead(in_dim=in_dim, patch_size=2 ** (n - 1), widths=widths, conv_per_block=depth or 1,
                         slope=0.01, padding_mode="zeros", bias=True, norm=norm, norm_eps=1e-6)
    mapping = head_key_map(head, prefix=prefix)
    ours = {mapping[k]: v for k, v in state.items() if k in mapping}
    load_state_dict_strict(head, ours, source="the official segmenter head")
    return head


# the official DINO tokens


def dino_position_table(pos_embed: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding``: the (1, 1 + N, D) table for an (h, w) token grid, (1, 1 + h·w, D).

    Unchanged for the stored square grid; else the √N × √N patch rows resized bicubically (no
    antialiasing) by the scale factors ((h + 0.1)/√N, (w + 0.1)/√N), as DINO does (the 0.1 guards
    against rounding down), which samples other points than a resize to exactly (h, w).
    """
    n = pos_embed.shape[1] - 1
    if h * w == n and h == w:
        return pos_embed
    return rescale_pos_embed(pos_embed, (h, w))


def official_dino_features(extractor: nn.Module, x01: torch.Tensor) -> torch.Tensor:
    """The official extractor's tokens (B, D, H/P, W/P) of images (B, 3, H, W) in [0, 1] (H, W multiples of P).

    DINO's ``prepare_tokens`` (patch embedding, class token, :func:`dino_position_table`), then the
    blocks up to ``extractor.block``; the class token dropped. ``extractor`` is a
    :class:`~workbench.nets.features.DinoFeatures` (timm's ViT holds DINO's weights under the same names).
    """
    vit = extractor.vit
    b, _, h, w = x01.shape
    mean, std = x01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tokens = vit.patch_embed.proj((x01 - mean) / std)  # (B, D, h, w)
    gh, gw = tokens.shape[-2:]
    tokens = torch.cat([vit.cls_token.expand(b, -1, -1), tokens.flatten(2).transpose(1, 2)], dim=1)  # (B, 1+h·w, D)
    tokens = tokens + dino_position_table(vit.pos_embed, gh, gw)
    for block in vit.blocks[: extractor.block + 1]:
        tokens = block(tokens)
    return tokens[:, 1:].transpose(1, 2).reshape(b, -1, gh, gw)  # (B, D, h, w)


# reading the checkpoint


def _load_restricted(path: Path) -> Any:
    """``torch.load(weights_only=True)`` that also allows ``argparse.Namespace`` (and nothing else)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, TypeError, AttributeError,
            IndexError, OverflowError, MemoryError, UnicodeDecodeError) as error:  # what a hostile file can raise
        raise CheckpointError(f"{path} cannot be read as an official MOVE checkpoint: "
                              f"{_weights_only_failure(error)}") from error


def _args_dict(args: Any) -> dict[str, Any]:
    if isinstance(args, argparse.Namespace):
        return dict(vars(args))
    if isinstance(args, dict):
        return dict(args)
    return {}


def read_official_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict (``ckpt["model"]``) and the training options of an official MOVE checkpoint.

    The options come from the checkpoint's ``"args"`` entry, else from ``<stem>.args`` beside it,
    else they are empty. Both files are read with ``weights_only=True`` (``argparse.Namespace`` allowed).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"official MOVE checkpoint {path} does not exist")
    obj = _load_restricted(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state, args = obj["model"], _args_dict(obj.get("args"))
    elif isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        state, args = obj, {}  # a bare state dict
    else:
        keys = ", ".join(map(str, list(obj)[:12])) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} is not an official MOVE checkpoint: no 'model' state dict (top level: {keys})")
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: 'model' holds non-tensor entries: {', '.join(bad[:5])}")
    beside = path.with_suffix(".args")
    if not args and beside.is_file():
        loaded = _load_restricted(beside)
        args = _args_dict(loaded.get("args") if isinstance(loaded, dict) else loaded)
    return state, args


# the model


class OfficialMOVE(nn.Module):
    """A released MOVE model in workbench modules: frozen DINO features + the official head; predicts masks.

    ``predict`` has the interface of :meth:`workbench.methods.move.MOVE.predict` (images in [0, 1],
    masks at the input size), so :func:`workbench.eval.predict.predict_folder` and the apps take it.
    """

    name = "move"

    def __init__(self, extractor: nn.Module, head: SegmenterHead, *, size: int | None = INFERENCE_SIZE,
                 args: dict[str, Any] | None = None, source: str = ""):
        super().__init__()
        self.extractor, self.head = extractor, head
        self.size, self.args, self.source = size, dict(args or {}), source
        self.padding = "reflect"  # to the patch size, as the official infer.py; "edge" repeats the border
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    @torch.no_grad()
    def segment(self, x01: torch.Tensor) -> torch.Tensor:
        """Masks (B, 1, H, W) of images (B, 3, H, W) in [0, 1] at their own size, padded to the patch
        (``self.padding``: "reflect" as the official, or "edge")."""
        h, w = x01.shape[-2:]
        x = pad_to_multiple(x01.to(self.device), self.extractor.patch_size, padding=self.padding)
        features = official_dino_features(self.extractor, x)  # (B, D, H/P, W/P)
        return self.head(features)[..., :h, :w]

    @torch.no_grad()
    def predict(self, x01: torch.Tensor, *, size: int | None = None) -> torch.Tensor:
        """Soft masks (B, 1, H, W) for images (B, 3, H, W) in [0, 1], computed at the official inference size.

        The images are resized so that the shorter side is ``size`` (default ``self.size``, 448;
        ``None`` keeps them), bicubic with antialiasing, aspect kept; the masks are resized back
        (bilinear with antialiasing).
        """
        size = self.size if size is None else size
        return segment_at_shorter_side(self.segment, x01.to(self.device).float(), size=size)


def _dino_from_state(name: str, state: dict[str, torch.Tensor], *, source: str):
    from workbench.nets.features import DinoFeatures

    with torch.random.fork_rng(devices=[]):
        extractor = DinoFeatures(name, pretrained=False)
    load_state_dict_strict(extractor.vit, state, source=source)
    extractor.source = source
    return extractor


def load_official_move(path: str | Path, features_weights: str | Path | None = None, *,
                       device: str | torch.device = "cpu", args: dict[str, Any] | None = None,
                       size: int | None = INFERENCE_SIZE) -> OfficialMOVE:
    """The official MOVE model of checkpoint ``path`` as an :class:`OfficialMOVE` on ``device``.

    DINO comes from the checkpoint when it holds it (an epoch-0 checkpoint), else from
    ``features_weights`` (a DINO or timm file), else from the usual lookup (weights folder, Hugging
    Face cache, download when online). ``args`` overrides the checkpoint's training options (the
    ones used: ``feature_extractor``, only ``dino_vits8``; ``extractor_block_layer``, default −2).
    Every key is accounted for: the head's and DINO's are loaded strictly, the MAE's are left out,
    anything else is an error.
    """
    from workbench.nets.features import DINO_MODELS, DinoFeatures

    path = Path(path).expanduser()
    state, file_args = read_official_checkpoint(path)
    options = {**DEFAULT_ARGS, **file_args, **(args or {})}
    name = options["feature_extractor"]
    if name not in DINO_MODELS:
        raise CheckpointError(f"{path} was trained on {name!r} features; the workbench loads official checkpoints "
                              f"on DINO features ({', '.join(DINO_MODELS)})")
    known = (OFFICIAL_NORM, OFFICIAL_HEAD, OFFICIAL_DINO, OFFICIAL_MAE)
    unknown = sorted(k for k in state if not k.startswith(known))
    if unknown:
        raise StateDictMismatchError(f"{path}: keys that are not in an official MOVE checkpoint: "
                                     f"{', '.join(unknown[:12])}" + (f" ({len(unknown)} in all)" if len(unknown) > 12 else ""))
    head = head_from_official(state)
    dino = {k.removeprefix(OFFICIAL_DINO): v for k, v in state.items() if k.startswith(OFFICIAL_DINO)}
    if dino:
        extractor = _dino_from_state(name, dino, source=f"{path} ({OFFICIAL_DINO}*)")
    else:
        extractor = DinoFeatures(name, weights=features_weights)
    block = int(options.get("extractor_block_layer", -2))
    depth = len(extractor.vit.blocks)
    if not -depth <= block < depth:
        raise CheckpointError(f"extractor_block_layer {block} is out of range for {name} ({depth} blocks)")
    extractor.block = block % depth
    if head.in_dim != extractor.embed_dim or head.patch_size != extractor.patch_size:
        raise StateDictMismatchError(f"{path}: the head expects {head.in_dim}-wide tokens of patch {head.patch_size}, "
                                     f"{name} gives {extractor.embed_dim}-wide tokens of patch {extractor.patch_size}")
    model = OfficialMOVE(extractor, head, size=size, args=options, source=str(path))
    return model.to(device).eval()
