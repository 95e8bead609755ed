"""Image-quality metrics for the GAN chapters: FID, KID, Inception Score, density and coverage.

The chapters' generators (3, 4 and 6) are compared by how close their samples are to real images
in the feature space of a fixed network (thesis section 6.4 reports FID and KID):

- **FID** (Fréchet distance of Gaussians fitted to the two feature clouds), **KID** (an unbiased
  polynomial-kernel MMD², mean and std over random subsets) and the **Inception Score** (from
  class probabilities) are computed by torchmetrics, with the feature network plugged in as a
  module (``FrechetInceptionDistance(feature=<nn.Module>)``).
- **Density and coverage** (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models") are implemented here, on the same features: with B(x, r) the open ball
  around x and NND_k(x) the distance from real x to its k-th nearest other real sample,

      density  = 1/(kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]
      coverage = 1/N    Σ_i 1[∃ j: Y_j ∈ B(X_i, NND_k(X_i))]

  for N real features X and M fake features Y (k = 5).

Two feature networks (:func:`build_feature_network`):

- ``"inception"``: the TF-ported Inception-v3 that torchmetrics and torch-fidelity use (2048-d pool
  features, 1008 logits), from the local file ``weights-inception-2015-12-05-6726825d.pth`` in the
  workbench weights folder (:func:`~workbench.nets.weights.weights_dir`) or in torch hub's
  checkpoint cache; it is never downloaded. Its metrics have the plain names FID, KID, IS.
- ``"mae"``: the mean-pooled (or class-token) encoder features of a workbench MAE, e.g. one
  pre-trained offline with ``python -m workbench train mae``. Its values are *not* FID: the
  result's ``kind`` says which MAE (``"mae-mean:runs/mae-small"``) and tables say
  "FID (MAE features)". There is no Inception Score for it (an MAE has no class probabilities).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nets.mae import MAE
from workbench.nets.weights import find_weights, load_pth, load_state_dict_strict, weights_dir

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's port of the TF FID Inception
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
DENSITY_K = 5  # nearest neighbours of density and coverage (Naeem et al. 2020)

# helpers


def _hub_checkpoint(name: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps the file ``name``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def find_inception_weights(path: str | Path | None = None) -> Path | None:
    """The Inception weights file: ``path`` when given (a path or a bare name in the weights folder);
    otherwise :data:`INCEPTION_FILE` in :func:`~workbench.nets.weights.weights_dir`, then in torch hub's
    checkpoint cache. ``None`` when none of them exists. Never downloads."""
    if path is not None:
        return find_weights(path)
    for candidate in (weights_dir() / INCEPTION_FILE, _hub_checkpoint(INCEPTION_FILE)):
        if candidate.is_file():
            return candidate
    return None


def missing_inception_error(path: str | Path | None = None) -> FileNotFoundError:
    """The error for an absent Inception file: what to fetch, where to put it, and the offline alternative."""
    wanted = f"Inception weights {path}" if path is not None else f"Inception weights {INCEPTION_FILE}"
    return FileNotFoundError(
        f"{wanted} not found. Download {INCEPTION_URL} by hand and put it in {weights_dir()} "
        f"(or set $WORKBENCH_WEIGHTS, or place it in torch hub's cache {_hub_checkpoint('').parent}), or pass "
        "its path as inception_weights=. To stay offline, use MAE features instead (kind='mae' with mae= or "
        "mae_run=, e.g. a `python -m workbench train mae` run); their values are not comparable to published FIDs.")


def _to_float01(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 in [0, 255] or float in [0, 1] -> float32 in [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255
    return images.float()


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> uint8, truncating as torchmetrics does with ``normalize=True``."""
    if images.dtype == torch.uint8:
        return images
    return (images.clamp(0, 1) * 255).byte()


def check_images(images: torch.Tensor, *, what: str = "images") -> torch.Tensor:
    """``images`` when it is a (B, 3, H, W) uint8 tensor or a float tensor in [0, 1]; a clear error otherwise."""
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{what} must be (B, 3, H, W) tensors, got {shape}")
    if images.dtype != torch.uint8:
        if not images.is_floating_point():
            raise ValueError(f"{what} must be float in [0, 1] or uint8, got {images.dtype}")
        lo, hi = images.min().item(), images.max().item()
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise ValueError(f"{what} must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
                             "(map a tanh generator's output with (x + 1) / 2)")
    return images


def _batches(images, *, batch_size: int, what: str) -> Iterable[torch.Tensor]:
    """(b, 3, H, W) chunks of at most ``batch_size`` from a tensor or an iterable of tensors / {"image": ...} dicts."""
    source = [images] if torch.is_tensor(images) else images
    for batch in source:
        if isinstance(batch, dict):
            batch = batch["image"]
        batch = check_images(batch, what=what)
        yield from batch.split(batch_size)


def _inception_skeleton() -> nn.Module:
    """torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's TF-ported Inception) with its layers only.

    Its constructor insists on loading weights, with ``torch.load(path, weights_only=False)`` (or a
    download). It is handed an in-memory pickle of an empty dict that this function wrote itself, and
    the empty load is skipped, so that no file is ever unpickled by it; the caller loads the weights
    it read safely with :func:`~workbench.nets.weights.load_state_dict_strict`.
    """
    import io

    from torchmetrics.image.fid import NoTrainInceptionV3

    class _Skeleton(NoTrainInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):
            if not state_dict:  # the constructor's load of the empty placeholder below
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    _Skeleton.__name__ = _Skeleton.__qualname__ = "FIDInceptionV3"
    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    return _Skeleton(name="inception-v3-compat", features_list=["2048", "logits_unbiased"],
                     feature_extractor_weights_path=placeholder)


# classes


class InceptionFeatures(nn.Module):
    """The FID Inception-v3 of torchmetrics (torch-fidelity's TF port), frozen: images -> (B, 2048) pool features.

    Takes (B, 3, H, W) float images in [0, 1] or uint8 images; floats are quantised to uint8 as
    torchmetrics does, then resized to 299 px inside the network. :meth:`features_and_logits` also
    returns the (B, 1008) unbiased logits that the Inception Score needs. ``num_features`` tells
    torchmetrics the feature width, so ``FrechetInceptionDistance(feature=this)`` works directly.
    """

    num_features = 2048
    num_classes = 1008

    def __init__(self, weights: str | Path):
        super().__init__()
        path = Path(weights)
        state = load_pth(path)  # read once, weights-only: the file's pickle can hold tensors and nothing else
        self.net = _inception_skeleton()
        load_state_dict_strict(self.net, state, source=str(path))  # wrong keys or shapes raise, naming them
        self.weights = path

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> pool features (B, 2048) and unbiased logits (B, 1008)."""
        pooled, logits = self.net._torch_fidelity_forward(_to_uint8(images))
        return pooled.reshape(images.shape[0], -1), logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]  # (B, 2048)


class MAEEncoderFeatures(nn.Module):
    """The encoder of a workbench MAE as a frozen feature network: images -> (B, D).

    Images (float [0, 1] or uint8, any size) are resized to the MAE's input size, ImageNet-normalised
    and encoded with all patches visible; the features are the mean of the patch tokens after the
    final norm (``pool="mean"``) or the class token (``pool="cls"``). The MAE is put in evaluation
    mode and stays there.
    """

    def __init__(self, mae: MAE, *, pool: Literal["mean", "cls"] = "mean"):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")
        self.mae = mae.eval()  # features in evaluation mode; gradients are never taken (no_grad)
        self.pool = pool
        self.num_features = mae.embed_dim

    def train(self, mode: bool = True) -> "MAEEncoderFeatures":
        return super().train(False)  # frozen for good

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _to_float01(images)  # (B, 3, H, W)
        size = self.mae.img_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        tokens = self.mae.encode(self.mae.normalize(x))  # (B, 1+N, D)
        return tokens[:, 1:].mean(dim=1) if self.pool == "mean" else tokens[:, 0]  # (B, D)


@dataclass
class FeatureNetwork:
    """A feature network for the image-quality metrics, with the label its figures must carry.

    ``kind`` is ``"inception"`` (the metrics are FID / KID / IS proper) or ``"mae-<pool>:<source>"``
    (features of that MAE; the figures are "FID (MAE features)" etc.). ``module`` maps
    (B, 3, H, W) images to (B, D) features and can be handed to torchmetrics as ``feature=``.
    """

    kind: str
    module: nn.Module

    @property
    def has_logits(self) -> bool:
        """Whether the network gives class logits (needed by the Inception Score)."""
        return hasattr(self.module, "features_and_logits")

    @property
    def is_inception(self) -> bool:
        return self.kind == "inception"

    def label(self, metric: str) -> str:
        """How a table names ``metric`` ("FID", "KID", "IS") for this network: "FID" or "FID (MAE features)"."""
        return metric if self.is_inception else f"{metric} (MAE features)"

    def to(self, device: str | torch.device) -> "FeatureNetwork":
        self.module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @torch.no_grad()
    def extract(self, images, *, batch_size: int = 50, what: str = "images") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (N, D) and, when the network has them, logits (N, C) of all images, on the CPU in float64.

        ``images``: an (N, 3, H, W) tensor or an iterable of such batches (or of ``{"image": ...}`` dicts),
        float in [0, 1] or uint8.
        """
        device = self.device
        features, logits = [], []
        for batch in _batches(images, batch_size=batch_size, what=what):
            batch = batch.to(device)
            if self.has_logits:
                f, lg = self.module.features_and_logits(batch)
                logits.append(lg.double().cpu())
            else:
                f = self.module(batch)
            features.append(f.double().cpu())  # (b, D)
        if not features:
            raise ValueError(f"{what}: no images")
        return torch.cat(features), (torch.cat(logits) if logits else None)


class _Precomputed(nn.Module):
    """Hands features that were already extracted to a torchmetrics metric (its ``feature=`` module)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


# feature networks


def _mae_name(mae: MAE) -> str:
    return f"vit{mae.embed_dim}x{len(mae.blocks)}-p{mae.patch_size}-{mae.img_size}px"


def build_feature_network(kind: Literal["auto", "inception", "mae"] = "auto", *,
                          inception_weights: str | Path | None = None, mae: MAE | None = None,
                          mae_run: str | Path | None = None, mae_pool: Literal["mean", "cls"] = "mean",
                          mae_name: str | None = None, device: str | torch.device = "cpu") -> FeatureNetwork:
    """The feature network of the image-quality metrics.

    - ``"inception"``: Inception-v3 from ``inception_weights`` or the local :data:`INCEPTION_FILE`
      (see :func:`find_inception_weights`); a clear error when it is absent. Never downloads.
    - ``"mae"``: the encoder of ``mae`` (a :class:`~workbench.nets.mae.MAE`) or of the ``train mae``
      run/checkpoint folder ``mae_run``; kind ``"mae-<pool>:<run path or mae_name>"``.
    - ``"auto"``: Inception when its file is found, else the MAE when one is given, else the error
      that names the Inception file and where to put it (also when ``inception_weights`` names a
      file that is not there).
    """
    if kind not in ("auto", "inception", "mae"):
        raise ValueError(f"kind must be 'auto', 'inception' or 'mae', got {kind!r}")
    if kind in ("auto", "inception"):
        found = find_inception_weights(inception_weights)
        if found is not None:
            return FeatureNetwork(kind="inception", module=InceptionFeatures(found)).to(device)
        if kind == "inception" or inception_weights is not None or (mae is None and mae_run is None):
            raise missing_inception_error(inception_weights)  # a named file that is absent is an error too
    if mae is not None and mae_run is not None:
        raise ValueError("pass either mae= or mae_run=, not both")
    if mae_run is not None:
        from workbench.methods.mae import load_mae_from_run

        mae, source = load_mae_from_run(mae_run), mae_name or str(mae_run)
    elif mae is not None:
        source = mae_name or _mae_name(mae)
    else:
        raise ValueError("kind='mae' needs an MAE: pass mae= (a workbench MAE) or mae_run= (a `train mae` run folder)")
    module = MAEEncoderFeatures(mae, pool=mae_pool)
    return FeatureNetwork(kind=f"mae-{mae_pool}:{source}", module=module).to(device)


# density and coverage


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, M) between rows of a (N, D) and b (M, D), in float64."""
    return torch.cdist(a.double(), b.double())


@torch.no_grad()
def density_coverage(real_features: torch.Tensor, fake_features: torch.Tensor, *, k: int = DENSITY_K,
                     chunk: int = 4096) -> dict[str, float]:
    """Density and coverage of Naeem et al. (2020) with k nearest neighbours (open balls, as their code).

    ``real_features`` (N, D), ``fake_features`` (M, D); N must exceed k. Identical sets give
    density 1 and coverage 1; a fake cloud far from every real ball gives 0 and 0. Density is not
    bounded by 1 (fakes packed where real samples are dense score above 1). Fake features are
    processed in chunks of ``chunk`` rows so that memory stays O(N · chunk).
    """
    real = torch.as_tensor(real_features).double().reshape(len(real_features), -1)  # (N, D)
    fake = torch.as_tensor(fake_features).double().reshape(len(fake_features), -1)  # (M, D)
    n, m = real.shape[0], fake.shape[0]
    if n <= k:
        raise ValueError(f"density/coverage with k={k} needs more than {k} real samples, got {n}")
    if m == 0 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need fake features of the real features' width {real.shape[1]}, got {tuple(fake.shape)}")
    radii = torch.cat([_pairwise(part, real).kthvalue(k + 1, dim=1).values  # (n,) self is the 1st
                       for part in real.split(chunk)])  # (N,) NND_k of each real sample
    inside_count = torch.zeros((), dtype=torch.float64)
    covered = torch.zeros(n, dtype=torch.bool)
    for part in fake.split(chunk):
        inside = _pairwise(part, real) < radii[None]  # (m, N): fake j lies in real i's ball
        inside_count += inside.sum()
        covered |= inside.any(dim=0)
    return {"density": float(inside_count / (k * m)), "coverage": float(covered.double().mean())}


# FID, KID, IS through torchmetrics


@torch.no_grad()
def quality_from_features(real_features: torch.Tensor, fake_features: torch.Tensor, *, kind: str,
                          fake_logits: torch.Tensor | None = None, kid_subset_size: int | None = None,
                          kid_subsets: int = 100, is_splits: int = 10, k: int = DENSITY_K,
                          seed: int = 0) -> dict[str, float | int | str]:
    """FID, KID (mean, std), IS (from ``fake_logits``, when given), density and coverage of extracted features.

    FID/KID/IS are torchmetrics' (the features enter through a pass-through ``feature=`` module);
    KID's random subsets and IS's shuffle use ``seed``. ``kid_subset_size`` defaults to
    min(1000, min(N, M) // 2) (at least 2), so that the subsets differ and ``kid_std`` means something.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    n, m = len(real_features), len(fake_features)
    if n < 2 or m < 2:
        raise ValueError(f"FID needs at least 2 real and 2 fake images, got {n} and {m}")
    width = real_features.shape[1]
    subset = kid_subset_size or max(2, min(1000, min(n, m) // 2))
    if subset > min(n, m):
        raise ValueError(f"kid_subset_size {subset} exceeds the number of real ({n}) or fake ({m}) images")
    passthrough = _Precomputed(width)
    fid = FrechetInceptionDistance(feature=passthrough)
    with warnings.catch_warnings():  # KID and IS keep every feature: we hand them features, not images
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=passthrough, subsets=kid_subsets, subset_size=subset)
        score = None
        if fake_logits is not None:  # IS of the fakes, from their class logits
            score = InceptionScore(feature=_Precomputed(fake_logits.shape[1]), splits=min(is_splits, m))
    for metric in (fid, kid):
        metric.update(real_features.double(), real=True)
        metric.update(fake_features.double(), real=False)
    out: dict[str, float | int | str] = {"kind": kind, "n_real": n, "n_fake": m}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out["fid"] = float(fid.compute())
        kid_mean, kid_std = kid.compute()
        out["kid_mean"], out["kid_std"] = float(kid_mean), float(kid_std)
        if score is not None:
            score.update(fake_logits.double())
            is_mean, is_std = score.compute()
            out["is_mean"], out["is_std"] = float(is_mean), float(is_std)
    out.update(density_coverage(real_features, fake_features, k=k))
    return out


def image_quality(real, fake, *, network: FeatureNetwork, kid_subset_size: int | None = None,
                  kid_subsets: int = 100, batch_size: int = 50, inception_score: bool | None = None,
                  is_splits: int = 10, k: int = DENSITY_K, seed: int = 0) -> dict[str, float | int | str]:
    """Image quality of ``fake`` against ``real`` in the features of ``network``.

    ``real`` / ``fake``: (N, 3, H, W) tensors, or iterables of (B, 3, H, W) batches (or dataset
    ``{"image": ...}`` batches), float in [0, 1] or uint8. Each image goes through the network once.

    Returns ``fid``, ``kid_mean``, ``kid_std``, ``density``, ``coverage`` (on the same features),
    ``kind`` (the network's label: only ``"inception"`` makes them FID/KID proper), ``n_real``,
    ``n_fake``, ``fid_label`` / ``kid_label`` (the names for tables) and, when the network has class
    logits, ``is_mean`` / ``is_std`` (Inception Score of ``fake``). ``inception_score``: ``None``
    computes it when available; ``True`` requires it (an error for MAE features); ``False`` skips it.
    Without logits the result says so under ``is_note`` instead.
    """
    if inception_score and not network.has_logits:
        raise ValueError(f"the Inception Score needs class probabilities; {network.kind} features have none "
                         "(use the Inception network, or inception_score=False)")
    want_is = network.has_logits and inception_score is not False
    real_features, _ = network.extract(real, batch_size=batch_size, what="real images")
    fake_features, fake_logits = network.extract(fake, batch_size=batch_size, what="fake images")
    out = quality_from_features(real_features, fake_features, kind=network.kind,
                                fake_logits=fake_logits if want_is else None, kid_subset_size=kid_subset_size,
                                kid_subsets=kid_subsets, is_splits=is_splits, k=k, seed=seed)
    out["fid_label"], out["kid_label"] = network.label("FID"), network.label("KID")
    if not network.has_logits:
        out["is_note"] = f"Inception Score not available: {network.kind} features have no class probabilities"
    return out
