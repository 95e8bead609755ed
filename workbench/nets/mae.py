"""Masked Autoencoder (MAE [44]) with the public checkpoint's parameter names, plus MOVE's soft inpainting.

Two ways to run it:

- **Pre-training** (:meth:`MAE.forward`): each image loses a random 75% of its patches, the
  encoder sees only the kept ones, the decoder fills in mask tokens and predicts the pixels of
  every patch; the loss is the pixel MSE on the masked patches (optionally on per-patch
  normalised pixels).
- **MOVE's differentiable inpainting** (thesis section 5.2.2, figure 5.3): the encoder sees *all*
  patches (:meth:`MAE.encode`); before the decoder, each patch token is blended with the mask
  token, ξ̂_j = m̂_j · ξ_MSK + (1 − m̂_j) · ξ_j, where m̂ is the inpainting mask of eq. (5.4)
  max-pooled to the patch grid (:meth:`MAE.decode`). The blend happens in the decoder's width, so
  after ``decoder_embed`` and before ``decoder_pos_embed`` is added; the class token is left
  alone. With m̂ = 0 the same decoder autoencodes the image, so one encoder pass serves both the
  inpainting and the autoencoding of x (:meth:`MAE.inpaint` with ``latent=``).

The state dict is exactly that of the official ``mae_visualize_vit_large.pth`` /
``mae_visualize_vit_large_ganloss.pth`` files (top-level key ``"model"``), which
:func:`load_mae` reads strictly. Images enter the network ImageNet-normalised
(:meth:`MAE.normalize`); patches are flattened in the official (row, column, channel) order.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from workbench.nets.vit import Block, PatchEmbed, init_vit_weights, rescale_pos_embed, resize_pos_embed, sincos_2d
from workbench.nets.weights import StateDictMismatchError, find_weights, load_pth, load_state_dict_strict, weights_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MAE_URL = "https://dl.fbaipublicfiles.com/mae/visualize/"  # + mae_visualize_vit_large[_ganloss].pth
MAE_FILES = ("mae_visualize_vit_large_ganloss.pth", "mae_visualize_vit_large.pth")  # GAN-loss (MOVE's), MSE

# helpers


def _grid_of(n: int) -> tuple[int, int]:
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f"{n} patch tokens are not a square grid; pass grid=(rows, cols)")
    return side, side


# classes


class MAE(nn.Module):
    """ViT encoder + light ViT decoder, named as the public MAE checkpoints (defaults: ViT-L/16 at 224 px)."""

    def __init__(self, *, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 1024,
                 depth: int = 24, num_heads: int = 16, decoder_embed_dim: int = 512, decoder_depth: int = 8,
                 decoder_num_heads: int = 16, mlp_ratio: float = 4.0, norm_pix_loss: bool = False):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.embed_dim, self.decoder_embed_dim = embed_dim, decoder_embed_dim
        self.norm_pix_loss = norm_pix_loss
        self.pos_resample = "when_needed"  # or "official" (MOVE's composer; see position_table); not saved

        # encoder
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(sincos_2d(embed_dim, self.grid_size, self.grid_size)[None], requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        # decoder
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(sincos_2d(decoder_embed_dim, self.grid_size, self.grid_size)[None],
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, num_heads=decoder_num_heads, mlp_ratio=mlp_ratio)
                                             for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans)

        self.apply(init_vit_weights)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    # pixels <-> patches

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> ImageNet-normalised, the network's input and output space."""
        mean, std = x01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x01 - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize` (no clamping)."""
        mean, std = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return x * std + mean

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, P*P*C), patches row-major, each flattened as (row, column, channel)."""
        b, c, h, w = imgs.shape
        p = self.patch_size
        x = imgs.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, P, P, C)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x: torch.Tensor, *, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, N, P*P*C) -> (B, C, H, W); ``grid`` (rows, cols) of the patches, square by default."""
        b, n, _ = x.shape
        gh, gw = grid or _grid_of(n)
        p, c = self.patch_size, self.in_chans
        x = x.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)  # (B, C, h, P, w, P)
        return x.reshape(b, c, gh * p, gw * p)

    # encoder

    def position_table(self, h: int, w: int) -> torch.Tensor:
        """The encoder's position table (1, 1+N, D) for an (h, w)-pixel input, per ``pos_resample``.

        ``"when_needed"`` (default): the stored table on the stored grid, else a bicubic resize to the
        grid (:func:`resize_pos_embed`). ``"official"``: as the official MOVE composer, the stored table
        only for an input of exactly ``img_size`` × ``img_size`` (224 px for the official MAEs), else
        DINO's scale-factor resample (:func:`rescale_pos_embed`), even when the grid is the stored one
        (the official test compares token counts with and without the class token, so it never passes).
        """
        grid = (h // self.patch_size, w // self.patch_size)
        if self.pos_resample == "official":
            same = (h, w) == (self.img_size, self.img_size)
            return self.pos_embed if same else rescale_pos_embed(self.pos_embed, grid)
        return resize_pos_embed(self.pos_embed, grid)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch tokens with positions (B, N, D) and the class token with its position (B, 1, D)."""
        b, _, h, w = x.shape
        pos = self.position_table(h, w)  # (1, 1+N, D)
        tokens = self.patch_embed(x) + pos[:, 1:]  # (B, N, D)
        # the class token keeps the stored row 0 either way (the official adds pos_embed[:, :1])
        return tokens, (self.cls_token + pos[:, :1]).expand(b, -1, -1)

    def _block_index(self, k: int) -> int:
        depth = len(self.blocks)
        if not -depth <= k < depth:
            raise IndexError(f"block {k} out of range for an encoder of {depth} blocks")
        return k % depth

    def encode(self, x: torch.Tensor, *, return_block: int | None = None):
        """All tokens of the normalised image x (B, 3, H, W), no masking -> (B, 1+N, D) after the final norm.

        With ``return_block=k`` (negative counts from the end), returns ``(latent, tokens)`` where
        ``tokens`` (B, 1+N, D) is the output of block k, before any norm. H and W may be any
        multiples of P (the position table is resized).
        """
        patches, cls = self._embed(x)
        tokens = torch.cat([cls, patches], dim=1)  # (B, 1+N, D)
        k = None if return_block is None else self._block_index(return_block)
        middle = None
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i == k:
                middle = tokens
        latent = self.norm(tokens)
        return latent if k is None else (latent, middle)

    def encode_until(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """The tokens (B, 1+N, D) after block ``block`` (negative counts from the end); later blocks are not run."""
        k = self._block_index(block)
        patches, cls = self._embed(x)
        tokens = torch.cat([cls, patches], dim=1)  # (B, 1+N, D)
        for block_module in self.blocks[: k + 1]:
            tokens = block_module(tokens)
        return tokens

    # decoder

    def decode(self, latent: torch.Tensor, *, patch_mask: torch.Tensor | None = None,
               grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Pixels (B, N, P*P*3) of every patch from encoder tokens (B, 1+N, D), soft-masked by ``patch_mask``.

        ``patch_mask`` (B, N), or (B, 1, rows, cols) / (B, rows, cols) in row-major token order,
        holds m̂ in [0, 1]: 1 replaces a token by the mask token (inpaint it), 0 keeps it
        (autoencode it), values in between blend them (section 5.2.2); ``None`` means all zeros.
        Differentiable in ``patch_mask``.
        """
        b, n1, _ = latent.shape
        grid = grid or _grid_of(n1 - 1)
        y = self.decoder_embed(latent)  # (B, 1+N, Dd)
        if patch_mask is not None:
            m = patch_mask.reshape(b, -1, 1).to(y.dtype)  # (B, N, 1)
            if m.shape[1] != n1 - 1:
                raise ValueError(f"patch_mask has {m.shape[1]} entries per image, the latent {n1 - 1} patch tokens")
            patches = m * self.mask_token + (1 - m) * y[:, 1:]  # (B, N, Dd)
            y = torch.cat([y[:, :1], patches], dim=1)
        y = y + resize_pos_embed(self.decoder_pos_embed, grid)
        for block in self.decoder_blocks:
            y = block(y)
        return self.decoder_pred(self.decoder_norm(y))[:, 1:]  # (B, N, P*P*3)

    def inpaint(self, x: torch.Tensor, patch_mask: torch.Tensor | None, *,
                latent: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised image (B, 3, H, W) inpainted where ``patch_mask`` is 1 (autoencoded where it is 0 / ``None``).

        Pass ``latent=self.encode(x)`` to share one encoder pass between several decodings.
        """
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        latent = self.encode(x) if latent is None else latent
        return self.unpatchify(self.decode(latent, patch_mask=patch_mask, grid=grid), grid=grid)

    # pre-training

    def random_masking(self, n: int, batch: int, *, mask_ratio: float, device: torch.device,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample random masking by sorting uniform noise: (ids_keep (B, K), mask (B, N), ids_restore (B, N)).

        ``mask`` is 1 on removed patches, 0 on kept ones; K = int(N * (1 - mask_ratio)).
        """
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        keep = int(n * (1 - mask_ratio))
        noise = torch.rand(batch, n, generator=generator,
                           device=generator.device if generator is not None else device).to(device)  # (B, N)
        ids_shuffle = noise.argsort(dim=1)  # ascending: the first K are kept
        ids_restore = ids_shuffle.argsort(dim=1)  # (B, N)
        mask = torch.ones(batch, n, device=device)
        mask[:, :keep] = 0
        mask = mask.gather(1, ids_restore)  # (B, N) in the original token order
        return ids_shuffle[:, :keep], mask, ids_restore

    def forward_encoder(self, x: torch.Tensor, *, mask_ratio: float, generator: torch.Generator | None = None):
        """Encode only the kept patches: (latent (B, 1+K, D), mask (B, N), ids_restore (B, N))."""
        patches, cls = self._embed(x)  # (B, N, D), (B, 1, D)
        b, n, d = patches.shape
        ids_keep, mask, ids_restore = self.random_masking(n, b, mask_ratio=mask_ratio, device=x.device,
                                                          generator=generator)
        kept = patches.gather(1, ids_keep[..., None].expand(-1, -1, d))  # (B, K, D)
        tokens = torch.cat([cls, kept], dim=1)  # (B, 1+K, D)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor, *,
                        grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Fill the removed positions with mask tokens, unshuffle, decode: (B, 1+K, D) -> (B, N, P*P*3)."""
        y = self.decoder_embed(latent)  # (B, 1+K, Dd)
        b, k1, dd = y.shape
        n = ids_restore.shape[1]
        filled = torch.cat([y[:, 1:], self.mask_token.expand(b, n + 1 - k1, -1)], dim=1)  # (B, N, Dd) shuffled
        filled = filled.gather(1, ids_restore[..., None].expand(-1, -1, dd))  # (B, N, Dd) original order
        y = torch.cat([y[:, :1], filled], dim=1) + resize_pos_embed(self.decoder_pos_embed, grid or _grid_of(n))
        for block in self.decoder_blocks:
            y = block(y)
        return self.decoder_pred(self.decoder_norm(y))[:, 1:]  # (B, N, P*P*3)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The regression target (B, N, P*P*3): patches of x, per-patch standardised when ``norm_pix_loss``."""
        target = self.patchify(x)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, *,
             visible_weight: float = 0.0) -> torch.Tensor:
        """Mean squared error per patch, averaged over the masked patches (+ ``visible_weight`` x over the kept ones)."""
        per_patch = (pred - self.target(x)).square().mean(dim=-1)  # (B, N)
        loss = (per_patch * mask).sum() / mask.sum().clamp_min(1)
        if visible_weight:
            loss = loss + visible_weight * (per_patch * (1 - mask)).sum() / (1 - mask).sum().clamp_min(1)
        return loss

    def forward(self, x: torch.Tensor, *, mask_ratio: float = 0.75, generator: torch.Generator | None = None,
                visible_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MAE pre-training on normalised images x (B, 3, H, W): (loss, pred (B, N, P*P*3), mask (B, N))."""
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        latent, mask, ids_restore = self.forward_encoder(x, mask_ratio=mask_ratio, generator=generator)
        pred = self.forward_decoder(latent, ids_restore, grid=grid)
        return self.loss(x, pred, mask, visible_weight=visible_weight), pred, mask


# constructors


def mae_vit_large_patch16(**kw) -> MAE:
    """ViT-L/16 MAE (1024 wide, 24 blocks, 16 heads; decoder 512 x 8, 16 heads), 224 px: the official checkpoints."""
    return MAE(**{"patch_size": 16, "embed_dim": 1024, "depth": 24, "num_heads": 16, "decoder_embed_dim": 512,
                  "decoder_depth": 8, "decoder_num_heads": 16, **kw})


def mae_vit_base_patch16(**kw) -> MAE:
    """ViT-B/16 MAE (768 wide, 12 blocks, 12 heads; decoder 512 x 8, 16 heads), 224 px."""
    return MAE(**{"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12, "decoder_embed_dim": 512,
                  "decoder_depth": 8, "decoder_num_heads": 16, **kw})


def mae_tiny(**kw) -> MAE:
    """A CPU-sized MAE: 64 px, patch 8 (an 8 x 8 grid), 192 wide, 6 blocks, 3 heads; decoder 128 x 2, 4 heads."""
    return MAE(**{"img_size": 64, "patch_size": 8, "embed_dim": 192, "depth": 6, "num_heads": 3,
                  "decoder_embed_dim": 128, "decoder_depth": 2, "decoder_num_heads": 4, **kw})


ARCHS = {"mae_vit_large_patch16": mae_vit_large_patch16, "mae_vit_base_patch16": mae_vit_base_patch16,
         "mae_tiny": mae_tiny}


def build_mae(arch: str, **kw) -> MAE:
    """The MAE of architecture ``arch`` (a key of :data:`ARCHS`), with constructor overrides ``kw``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown MAE architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch](**kw)


# loading


def missing_weights_error(path: str | Path, *, flag: str = "--mae-weights") -> FileNotFoundError:
    """The error for an MAE weights file that is not there: what to fetch, from where, and where to put it."""
    name = Path(path).name
    official = name if name in MAE_FILES else MAE_FILES[0]
    return FileNotFoundError(
        f"MAE weights {path} not found. Download {official} by hand from {MAE_URL}{official} "
        f"(the MSE-trained variant is {MAE_URL}{MAE_FILES[1]}) and put it in {weights_dir()} "
        f"(or set $WORKBENCH_WEIGHTS), or pass its path with {flag}. "
        "To stay offline, pre-train one with `python -m workbench train mae` and pass the run folder instead.")


def load_mae(path: str | Path, *, model: MAE | None = None, arch: str = "mae_vit_large_patch16") -> MAE:
    """An MAE with the weights at ``path``, loaded strictly; the model is returned in eval mode.

    ``path`` is an official ``.pth`` (state dict under the top-level key ``"model"``, read with
    ``torch.load(weights_only=True)``) or a bare file name looked up in :func:`weights_dir`. The
    weights go into ``model``, or a new ``arch`` model. Any missing, unexpected or mis-shaped key
    is an error that lists them. (A ``train mae`` run folder loads with
    :func:`workbench.methods.mae.load_mae_from_run`.)
    """
    found = find_weights(path)
    if found is None:
        raise missing_weights_error(path)
    if found.is_dir():
        raise IsADirectoryError(f"{found} is a folder: official MAE weights are a .pth file; a `python -m workbench "
                                "train mae` run folder loads with workbench.methods.mae.load_mae_from_run")
    state = load_pth(found, key="model")
    model = build_mae(arch) if model is None else model
    try:
        load_state_dict_strict(model, state, source=str(found))
    except StateDictMismatchError as error:
        own = set(model.state_dict())
        missing = own - set(state)
        if missing and all(k.startswith(("decoder_", "mask_token")) for k in missing):
            raise StateDictMismatchError(f"{error}. {found.name} holds an encoder only (like the official "
                                         f"mae_pretrain_vit_*.pth); inpainting needs the decoder too: use "
                                         f"{MAE_FILES[0]} or {MAE_FILES[1]} from {MAE_URL}") from error
        raise
    return model.eval()
