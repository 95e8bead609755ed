"""Vision Transformer building blocks shared by the MAE (``workbench.nets.mae``) and the feature extractors.

The parameter names are those of the public ViT/MAE/DINO checkpoints (timm's naming): a block has
``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``; a patch embedding has
``proj``. Nothing else carries parameters, so a state dict of these modules is exactly the public one.

Position embeddings are the fixed 2D sine-cosine table of MAE (thesis section 2.3 / MAE [44]):
the first half of the channels encodes the column, the second half the row, each half as
``[sin(pos * ω), cos(pos * ω)]`` with ``ω_k = 10000^(-k / (D/4))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# helpers


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """The 1D sine-cosine embedding of ``positions`` (M,) -> (M, dim), dim even."""
    if dim % 2:
        raise ValueError(f"sine-cosine embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (M, dim)


def sincos_2d(dim: int, grid_h: int, grid_w: int, *, cls_token: bool = True) -> torch.Tensor:
    """MAE's fixed 2D sine-cosine position table, (1 + grid_h * grid_w, dim) with a zero row for the class token.

    Tokens are in row-major order (row 0 first). The first dim/2 channels encode the column index,
    the last dim/2 the row index, as the official MAE table does.
    """
    if dim % 4:
        raise ValueError(f"2D sine-cosine embedding needs a width divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")  # (gh, gw) each
    table = torch.cat([sincos_1d(dim // 2, cols.reshape(-1)), sincos_1d(dim // 2, rows.reshape(-1))], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim, dtype=table.dtype), table], dim=0)
    return table.float()  # (1 + gh*gw, dim)


def resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], *, prefix: int = 1) -> torch.Tensor:
    """A (1, prefix + gh0*gw0, D) position table resized bicubically to ``grid`` (gh, gw); unchanged when it fits.

    The ``prefix`` rows (the class token) are kept as they are; the stored grid must be square.
    """
    n = pos_embed.shape[1] - prefix
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"position table of {n} patch tokens is not a square grid")
    gh, gw = grid
    if (gh, gw) == (side, side):
        return pos_embed
    head, patches = pos_embed[:, :prefix], pos_embed[:, prefix:]  # (1, prefix, D), (1, n, D)
    patches = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, D, side, side)
    patches = F.interpolate(patches.float(), size=(gh, gw), mode="bicubic", align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(1, gh * gw, -1).to(pos_embed.dtype)  # (1, gh*gw, D)
    return torch.cat([head, patches], dim=1)


def rescale_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], *, prefix: int = 1) -> torch.Tensor:
    """A (1, prefix + N, D) position table resampled for a ``grid`` (gh, gw) as DINO's ``interpolate_pos_encoding``.

    The √N × √N patch rows are resized bicubically (no antialiasing) by the scale factors
    ((gh + 0.1)/√N, (gw + 0.1)/√N) (the 0.1 guards against rounding down), which samples other points
    than a resize to exactly (gh, gw) (:func:`resize_pos_embed`) and is not the identity even at the
    stored grid. Always resamples: callers decide when (DINO: unless the grid is the stored one; the
    official MOVE composer: unless the image is exactly 224 × 224). Rows stay row-major (gh first).
    """
    n = pos_embed.shape[1] - prefix
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"position table of {n} patch tokens is not a square grid")
    gh, gw = grid
    table = pos_embed[:, prefix:].reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, D, √N, √N)
    table = F.interpolate(table, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side), mode="bicubic")  # (1, D, gh, gw)
    if table.shape[-2:] != (gh, gw):  # pragma: no cover - DINO asserts the same
        raise RuntimeError(f"the position table's resize gave {tuple(table.shape[-2:])}, not {(gh, gw)}")
    return torch.cat([pos_embed[:, :prefix], table.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], dim=1)


# classes


class PatchEmbed(nn.Module):
    """Non-overlapping P x P patches -> D-wide tokens: (B, C, H, W) -> (B, H/P * W/P, D), row-major."""

    def __init__(self, *, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of the patch size {p}")
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection (with bias) and an output ``proj``."""

    def __init__(self, dim: int, *, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d/h)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, N, d/h)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # (B, N, D)


class Mlp(nn.Module):
    """``fc1`` -> GELU -> ``fc2``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorm eps 1e-6."""

    def __init__(self, dim: int, *, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))  # (B, N, D)
        return x + self.mlp(self.norm2(x))


def init_vit_weights(module: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear layers with zero bias, unit LayerNorms (use with ``apply``)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
