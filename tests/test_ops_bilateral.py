"""The fast bilateral solver: its grid, its linear system, and what it does to masks."""

import cv2
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from workbench.ops.bilateral import LAM, BilateralGrid, bilateral_solve, pcg, refine_mask, rgb_to_yuv

# helpers


def ellipse_scene(h=96, w=128, seed=0):
    """A red ellipse on a green background with a little noise, and its true mask."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:h, :w]
    truth = (rows - 50) ** 2 / 30**2 + (cols - 60) ** 2 / 40**2 < 1
    image = np.zeros((h, w, 3), np.float32)
    image[:] = (0.2, 0.5, 0.3)
    image[truth] = (0.9, 0.3, 0.2)
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)
    return image, truth


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


# tests


def test_yuv_of_grey_and_primaries():
    yuv = rgb_to_yuv(np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]))
    assert yuv[0, 0] == pytest.approx([255, 128, 128], abs=1e-3)
    assert yuv[0, 1] == pytest.approx([0, 128, 128])
    assert yuv[0, 2, 0] == pytest.approx(0.299 * 255)


def test_grid_splat_slice_and_bistochastic():
    image, _ = ellipse_scene(40, 48)
    grid = BilateralGrid(image, sigma_spatial=8, sigma_luma=8, sigma_chroma=8)
    assert grid.S.shape == (grid.nvertices, 40 * 48)
    assert grid.splat(np.ones(grid.npixels)).sum() == 40 * 48  # every pixel in exactly one vertex
    per_pixel = grid.slice(grid.splat(np.ones(grid.npixels)))  # each pixel reads its vertex's pixel count
    assert (1 / per_pixel).sum() == pytest.approx(grid.nvertices)
    assert (grid.N != grid.N.T).nnz == 0  # neighbourhood is symmetric
    assert grid.N.diagonal().sum() == 0
    n, m = grid.bistochastize()
    counts = grid.splat(np.ones(grid.npixels))
    row_sums = n * (grid.blur_matrix() @ n)
    assert np.allclose(row_sums, m)  # diag(n) B diag(n) 1 = m̂
    assert np.abs(m / counts - 1).max() < 0.05  # ... and m̂ ≈ pixels per vertex


def test_cells_follow_sigmas():
    image = np.zeros((16, 32, 3), np.float32)
    image[:, 16:] = 1.0  # black | white
    assert BilateralGrid(image, sigma_spatial=8).nvertices == 2 * 4  # (2 rows x 4 columns) of cells, colours split columns
    assert BilateralGrid(image, sigma_spatial=64).nvertices == 2  # one spatial cell, two colours


def test_pcg_matches_a_direct_solve():
    rng = np.random.default_rng(0)
    M = sp.random(50, 50, density=0.1, random_state=0)
    A = (M @ M.T + sp.identity(50) * 5).tocsr()  # SPD
    b = rng.normal(size=50)
    x, iterations = pcg(A, b, np.zeros(50), inv_diag=1 / A.diagonal(), max_iter=200, tol=1e-12)
    assert np.allclose(x, spla.spsolve(A.tocsc(), b), atol=1e-8) and iterations < 200


def test_solver_solves_the_bilateral_system():
    image, truth = ellipse_scene(48, 64)
    target = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 4)
    grid = BilateralGrid(image)
    n, m = grid.bistochastize()
    c = np.full(grid.npixels, 0.999)
    A = LAM * (sp.diags(m) - sp.diags(n) @ grid.blur_matrix() @ sp.diags(n)) + sp.diags(grid.splat(c))
    exact = grid.slice(spla.spsolve(A.tocsc(), grid.splat(c * target.ravel()))).reshape(target.shape)
    ours = bilateral_solve(image, target, max_iter=500, tol=1e-10)
    assert np.abs(ours - exact).max() < 1e-4


def test_refinement_snaps_a_blurred_mask_to_the_object():
    image, truth = ellipse_scene()
    estimate = np.roll(cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 6), 4, axis=1)  # blurred and off by 4 px
    refined = refine_mask(image, estimate)
    assert refined.shape == truth.shape and refined.dtype == np.float32
    assert 0.0 <= refined.min() and refined.max() <= 1.0
    before, after = iou(estimate >= 0.5, truth), iou(refined >= 0.5, truth)
    assert before < 0.9 and after > 0.97 and after > before + 0.08


def test_edges_are_preserved_where_a_blur_would_smear_them():
    h, w = 32, 64
    image = np.zeros((h, w, 3), np.float32)
    image[:, w // 2:] = 1.0  # black | white, edge between columns 31 and 32
    ramp = np.clip((np.arange(w) - 16) / 32, 0, 1).astype(np.float32)  # 0 ... 1 across 32 columns
    target = np.tile(ramp, (h, 1))
    out = bilateral_solve(image, target)
    jump = out[:, 32].mean() - out[:, 31].mean()
    assert jump > 0.4  # a step where the image has one (the target only rises by 1/32 there)
    assert out[:, :32].std() < out[:, :32].mean() and np.ptp(out[:, :32]) < np.ptp(target[:, :32])  # flatter on each side
    smoothed = cv2.GaussianBlur(target, (0, 0), 8)
    assert smoothed[:, 32].mean() - smoothed[:, 31].mean() < 0.05  # a plain blur has no step


def test_confidence_weights_the_target():
    image = np.full((16, 16, 3), 0.5, np.float32)  # flat: one colour, one spatial cell at sigma 16
    target = np.zeros((16, 16), np.float32)
    target[:, 8:] = 1.0
    confident_right = np.where(target > 0, 1.0, 0.01)
    assert bilateral_solve(image, target, confident_right).mean() > 0.9
    assert bilateral_solve(image, target).mean() == pytest.approx(0.5, abs=1e-3)
    assert bilateral_solve(image, target, 0.5).mean() == pytest.approx(0.5, abs=1e-3)


def test_bad_inputs_are_named():
    image, truth = ellipse_scene(16, 16)
    with pytest.raises(ValueError, match="RGB"):
        bilateral_solve(image[..., 0], truth)
    with pytest.raises(ValueError, match="shape"):
        bilateral_solve(image, truth[:8])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bilateral_solve(image * 3, truth.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        refine_mask(image, np.full((16, 16), 2.0))
    with pytest.raises(ValueError, match="confidence"):
        bilateral_solve(image, truth.astype(np.float32), -np.ones((16, 16)))
    assert refine_mask((image * 255).astype(np.uint8), truth.astype(np.float32)).shape == (16, 16)
