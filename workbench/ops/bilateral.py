"""The fast bilateral solver (Barron & Poole, ECCV 2016): edge-aware refinement of soft masks.

MOVE (section 5.4.1, table 5.2, "+ Bilateral"), TokenCut and Deep Spectral refine predicted masks
with it. Given a reference image, a target map ``t`` (the soft mask) and a per-pixel confidence
``c``, the solver finds the map ``x`` that stays close to ``t`` where ``c`` is high and is smooth
*along* the image, not across its edges:

    minimise over x   λ/2 · Σ_ij Ŵ_ij (x_i − x_j)²  +  Σ_i c_i (x_i − t_i)²

where Ŵ is a bistochastised bilateral affinity (pixels are alike when they are close in position
*and* in colour). The problem is solved in *bilateral space*, on a coarse grid, never per pixel:

1. **splat** (S): every pixel goes to the vertex of a 5-D grid at
   ``floor(x / σ_spatial), floor(y / σ_spatial), floor(Y / σ_luma), floor(U / σ_chroma),
   floor(V / σ_chroma)`` (YUV on the 8-bit scale, the JPEG YCbCr matrix, chroma offset 128); only
   occupied vertices are kept, so S is a sparse (vertices × pixels) matrix of ones;
2. **blur** (B): a [1 2 1] filter along each of the five axes over the occupied vertices,
   ``B = 2·5·I + Σ_d (N_d⁻ + N_d⁺)`` with N_d^± the neighbour matrices;
3. **bistochastise**: diagonal ``n`` with ``n ⊙ B n ≈ m = S 1`` (pixels per vertex), by the
   fixed-point iteration ``n ← sqrt(n ⊙ m / (B n))`` (10 steps), then ``m̂ = n ⊙ B n``;
4. **solve** ``A y = b`` with ``A = λ (diag(m̂) − diag(n) B diag(n)) + diag(S c)`` and
   ``b = S (c ⊙ t)``, by conjugate gradients preconditioned with the diagonal of A (Jacobi,
   diagonal clamped at 1e-5), started from ``y₀ = S(c ⊙ t) / S c``;
5. **slice** (Sᵀ): every pixel reads its vertex, ``x = Sᵀ y``.

The exact minimiser is a weighted average of the targets (A is a diagonally dominant M-matrix), so
it lies within ``[min t, max t]``; the returned map is clipped to that range, which only removes the
small excursions of a truncated CG run.

Hyper-parameters are those MOVE's released inference uses for its "+ Bilateral" rows, the same as
TokenCut's saliency setting: σ_spatial = 16 px, σ_luma = 16, σ_chroma = 8 (8-bit units),
λ = 256, uniform confidence 0.999, at most 25 CG iterations with tolerance 1e-5. MOVE keeps the
soft solver output; TokenCut further binarises at 0.5, fills holes and keeps the largest
component (not done here).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["BilateralGrid", "bilateral_solve", "refine_mask", "rgb_to_yuv"]

SIGMA_SPATIAL = 16.0  # pixels per grid cell along x and y (MOVE/TokenCut)
SIGMA_LUMA = 16.0  # 8-bit luma levels per grid cell (MOVE/TokenCut)
SIGMA_CHROMA = 8.0  # 8-bit chroma levels per grid cell (MOVE/TokenCut)
LAM = 256.0  # λ, weight of the smoothness term (MOVE/TokenCut)
CONFIDENCE = 0.999  # uniform confidence of the target when none is given (MOVE/TokenCut)
CG_MAX_ITER = 25  # conjugate-gradient iterations at most
CG_TOL = 1e-5  # stop when |residual| <= tol · |b|
DIAG_MIN = 1e-5  # clamp of A's diagonal in the Jacobi preconditioner
BISTOCHASTIC_STEPS = 10  # fixed-point steps of the bistochastisation

# JPEG YCbCr: rows Y, U (Cb), V (Cr) from R, G, B on the 8-bit scale; U and V get +128
_RGB_TO_YUV = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]])
_YUV_OFFSET = np.array([0.0, 128.0, 128.0])

# helpers


def rgb_to_yuv(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (H, W, 3) float64 YUV on the 8-bit scale (Y in [0, 255], U, V around 128)."""
    return (np.asarray(image, dtype=np.float64) * 255.0) @ _RGB_TO_YUV.T + _YUV_OFFSET


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"the reference image must be RGB (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"the reference image must be float in [0, 1] or uint8, got dtype {image.dtype}")
    if not np.isfinite(image).all() or image.min() < -1e-6 or image.max() > 1 + 1e-6:
        raise ValueError("the reference image must hold finite values in [0, 1]")
    return image.astype(np.float64)


def _plane(values: np.ndarray | float | None, shape: tuple[int, int], *, what: str, default: float) -> np.ndarray:
    if values is None:
        return np.full(shape, default)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return np.full(shape, float(values))
    if values.shape != shape:
        raise ValueError(f"the {what} has shape {values.shape}, the image {shape}; they must match")
    if not np.isfinite(values).all():
        raise ValueError(f"the {what} holds NaN or infinite values")
    return values


def pcg(A: sp.spmatrix, b: np.ndarray, x0: np.ndarray, *, inv_diag: np.ndarray, max_iter: int,
        tol: float) -> tuple[np.ndarray, int]:
    """Conjugate gradients for the SPD system ``A x = b``, Jacobi-preconditioned by ``inv_diag``.

    Stops after ``max_iter`` iterations or when ``|b − A x| <= tol · |b|``; returns ``(x, iterations)``.
    """
    x = x0.copy()
    r = b - A @ x  # residual
    z = inv_diag * r  # preconditioned residual
    p = z.copy()  # search direction
    rz = float(r @ z)
    stop = tol * float(np.linalg.norm(b))
    for i in range(max_iter):
        if float(np.linalg.norm(r)) <= stop:
            return x, i
        Ap = A @ p
        alpha = rz / float(p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        z = inv_diag * r
        rz_next = float(r @ z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    return x, max_iter


# classes


class BilateralGrid:
    """The simplified bilateral grid of one reference image: splat, blur and slice as sparse matrices.

    ``image`` (H, W, 3) RGB in [0, 1] (or uint8); σ's as in the module docstring.
    """

    dim = 5  # x, y, luma, chroma U, chroma V

    def __init__(self, image: np.ndarray, *, sigma_spatial: float = SIGMA_SPATIAL, sigma_luma: float = SIGMA_LUMA,
                 sigma_chroma: float = SIGMA_CHROMA):
        if min(sigma_spatial, sigma_luma, sigma_chroma) <= 0:
            raise ValueError("the bilateral sigmas must be > 0")
        image = _check_image(image)
        h, w = image.shape[:2]
        self.shape = (h, w)
        yuv = rgb_to_yuv(image)  # (H, W, 3)
        rows, cols = np.mgrid[:h, :w]
        coords = np.stack([cols / sigma_spatial, rows / sigma_spatial, yuv[..., 0] / sigma_luma,
                           yuv[..., 1] / sigma_chroma, yuv[..., 2] / sigma_chroma], axis=-1)
        coords = np.floor(coords).reshape(-1, self.dim).astype(np.int64)  # (P, 5) grid cell of each pixel
        coords -= coords.min(axis=0)
        dims = tuple(int(d) for d in coords.max(axis=0) + 3)  # one empty cell on each side: neighbours never wrap
        keys = np.ravel_multi_index(tuple((coords + 1).T), dims)  # (P,) one integer per cell
        self.keys, vertex_of_pixel = np.unique(keys, return_inverse=True)  # (V,) sorted occupied cells
        self.npixels, self.nvertices = len(keys), len(self.keys)
        # S: (V, P), a one where pixel p falls into vertex v
        self.S = sp.csr_matrix((np.ones(self.npixels), (vertex_of_pixel.ravel(), np.arange(self.npixels))),
                               shape=(self.nvertices, self.npixels))
        # N: (V, V), the sum over the five axes of the -1 and +1 neighbours among occupied vertices
        strides = np.array([int(np.prod(dims[d + 1:])) for d in range(self.dim)], dtype=np.int64)
        src, dst = [], []
        for stride in strides:
            for step in (-stride, stride):
                neighbour = self.keys + step  # (V,)
                pos = np.clip(np.searchsorted(self.keys, neighbour), 0, self.nvertices - 1)
                found = np.flatnonzero(self.keys[pos] == neighbour)
                src.append(found)
                dst.append(pos[found])
        src, dst = np.concatenate(src), np.concatenate(dst)
        self.N = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(self.nvertices, self.nvertices))

    def splat(self, x: np.ndarray) -> np.ndarray:
        """Pixels (P,) -> vertices (V,): the sum of the pixels of each vertex."""
        return self.S @ x

    def slice(self, y: np.ndarray) -> np.ndarray:
        """Vertices (V,) -> pixels (P,): each pixel reads its vertex."""
        return self.S.T @ y

    def blur_matrix(self) -> sp.csr_matrix:
        """B (V, V): the [1 2 1] filter along every axis, ``2·dim·I + N``."""
        return (sp.identity(self.nvertices, format="csr") * (2 * self.dim) + self.N).tocsr()

    def blur(self, y: np.ndarray) -> np.ndarray:
        """B y for vertex values (V,)."""
        return 2 * self.dim * y + self.N @ y

    def filter(self, x: np.ndarray) -> np.ndarray:
        """A plain (normalised) bilateral filter of pixel values (P,): slice(blur(splat x)) / slice(blur(splat 1))."""
        return self.slice(self.blur(self.splat(x))) / self.slice(self.blur(self.splat(np.ones_like(x))))

    def bistochastize(self, *, steps: int = BISTOCHASTIC_STEPS) -> tuple[np.ndarray, np.ndarray]:
        """Diagonals ``(n, m̂)`` with ``n ⊙ B n = m̂ ≈ S 1``, so that diag(n) B diag(n) has row sums m̂."""
        m = self.splat(np.ones(self.npixels))  # (V,) pixels per vertex
        n = np.ones(self.nvertices)
        for _ in range(steps):
            n = np.sqrt(n * m / self.blur(n))
        return n, n * self.blur(n)


def bilateral_solve(
    image: np.ndarray,
    target: np.ndarray,
    confidence: np.ndarray | float | None = None,
    *,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_luma: float = SIGMA_LUMA,
    sigma_chroma: float = SIGMA_CHROMA,
    lam: float = LAM,
    max_iter: int = CG_MAX_ITER,
    tol: float = CG_TOL,
) -> np.ndarray:
    """Refine ``target`` (H, W) edge-awarely along ``image`` (H, W, 3) RGB in [0, 1]: (H, W) float32.

    ``confidence`` (H, W) >= 0, or one number for every pixel; ``None`` is MOVE's uniform 0.999.
    The result lies within ``[target.min(), target.max()]`` (see the module docstring for the
    problem, the algorithm and the defaults).
    """
    grid = BilateralGrid(image, sigma_spatial=sigma_spatial, sigma_luma=sigma_luma, sigma_chroma=sigma_chroma)
    t = _plane(target, grid.shape, what="target", default=0.0).ravel()  # (P,)
    c = _plane(confidence, grid.shape, what="confidence", default=CONFIDENCE).ravel()  # (P,)
    if c.min() < 0:
        raise ValueError("the confidence must be >= 0")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    n, m = grid.bistochastize()
    Dn = sp.diags(n)
    c_splat = grid.splat(c)  # (V,)
    A = (lam * (sp.diags(m) - Dn @ grid.blur_matrix() @ Dn) + sp.diags(c_splat)).tocsr()  # (V, V)
    b = grid.splat(c * t)  # (V,)
    y0 = b / np.maximum(c_splat, 1e-12)  # the confidence-weighted mean target of each vertex
    inv_diag = 1.0 / np.maximum(A.diagonal(), DIAG_MIN)
    y, _ = pcg(A, b, y0, inv_diag=inv_diag, max_iter=max_iter, tol=tol)
    x = grid.slice(y).reshape(grid.shape)  # (H, W)
    return np.clip(x, t.min(), t.max()).astype(np.float32)


def refine_mask(image: np.ndarray, mask: np.ndarray, **options) -> np.ndarray:
    """A soft mask (H, W) in [0, 1] refined by :func:`bilateral_solve` with MOVE's settings: (H, W) float32 in [0, 1].

    ``options`` override the solver's keyword arguments (sigmas, ``lam``, ...).
    """
    mask = np.asarray(mask, dtype=np.float32)
    if mask.size and not (mask.min() >= -1e-6 and mask.max() <= 1 + 1e-6):  # NaN fails too
        raise ValueError("a soft mask must lie in [0, 1]")
    mask = np.clip(mask, 0.0, 1.0)
    return np.clip(bilateral_solve(image, mask, **options), 0.0, 1.0)
