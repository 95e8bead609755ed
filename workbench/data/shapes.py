"""Object shapes for the synthetic scenes, as polygons, and their exact binary rasterisation.

Every shape is a simple polygon (N, 2) of (x, y) points around the origin. Polygons are rotated,
scaled and placed in normalised image coordinates ([0, 1] across the image) and only then
rasterised, so a scene has the same geometry at every resolution. Rasterisation is
:func:`cv2.fillPoly` without anti-aliasing: the mask is exactly binary, and the image is
composited with exactly that mask.

Families: ``ellipse``, ``polygon`` (random star-convex, 3 to 8 corners), ``star``, ``blob``
(smooth random radial outline) and ``horse`` (the outline of ``skimage.data.horse()``).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from workbench.data.textures import skimage_data_path

SHAPES = ("ellipse", "polygon", "star", "blob", "horse")

_SUBPIXEL_BITS = 8  # fixed-point precision used by cv2.fillPoly


# helpers


def polygon_area(points: np.ndarray) -> float:
    """Unsigned area of a simple polygon (N, 2) by the shoelace formula."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _centred(points: np.ndarray) -> np.ndarray:
    """Shift a polygon so that its bounding-box centre is the origin."""
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2).astype(np.float64)


def horse_mask() -> np.ndarray:
    """The horse silhouette of ``skimage.data.horse()`` as bool (328, 400), True on the horse.

    Read from the file the wheel ships (no downloader): the horse is the dark part of horse.png.
    """
    raw = cv2.imdecode(np.fromfile(skimage_data_path("horse.png"), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    return raw < 128


@functools.lru_cache(maxsize=1)
def horse_outline() -> np.ndarray:
    """Outer contour of the horse, simplified to within half a pixel, centred, y down; (N, 2)."""
    mask = horse_mask().astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    outline = cv2.approxPolyDP(outline, 0.5, True)[:, 0, :].astype(np.float64)
    outline = _centred(outline) / max(mask.shape)
    outline.setflags(write=False)
    return outline


# shape families (each returns a polygon around the origin; scale is fixed later)


def ellipse(rng: np.random.Generator, *, vertices: int = 96) -> np.ndarray:
    """An ellipse with minor/major axis ratio in [0.45, 1], as ``vertices`` points."""
    aspect = rng.uniform(0.45, 1.0)  # minor / major axis
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return np.stack([np.cos(t), aspect * np.sin(t)], 1)


def random_polygon(rng: np.random.Generator) -> np.ndarray:
    """A star-convex polygon with 3 to 8 corners at jittered angles and radii in [0.7, 1]."""
    corners = int(rng.integers(3, 9))
    # corner angles: evenly spaced plus jitter, so the polygon is never degenerate
    t = np.sort((np.arange(corners) + rng.uniform(-0.3, 0.3, corners)) * 2 * np.pi / corners)
    r = rng.uniform(0.7, 1.0, corners)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def star(rng: np.random.Generator) -> np.ndarray:
    """A star with 4 to 8 tips and an inner radius of 0.4 to 0.7 of the tips'."""
    tips = int(rng.integers(4, 9))
    inner = rng.uniform(0.4, 0.7)  # inner radius relative to the tips
    t = np.arange(2 * tips) * np.pi / tips
    r = np.where(np.arange(2 * tips) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def blob(rng: np.random.Generator, *, vertices: int = 96) -> np.ndarray:
    """Radial outline r(t) = 1 + sum_k a_k cos(k t + phi_k), k = 2..5, kept above 0.35."""
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0.0, 0.35 / k**0.7) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.35)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def horse(rng: np.random.Generator) -> np.ndarray:
    """The scikit-image horse's outline, facing left or right at random."""
    points = horse_outline().copy()
    if rng.random() < 0.5:
        points[:, 0] = -points[:, 0]  # face left or right
    return points


_FAMILIES = {"ellipse": ellipse, "polygon": random_polygon, "star": star, "blob": blob, "horse": horse}


def make_shape(family: str, rng: np.random.Generator) -> np.ndarray:
    """A polygon (N, 2) of the given family, centred, not yet rotated or scaled."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown shape {family!r}; choose from {SHAPES}")
    return _centred(_FAMILIES[family](rng))


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (N, 2) points about the origin by ``angle`` degrees."""
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return points @ rot.T


# rasterisation


def rasterize(points: np.ndarray, *, size: int) -> np.ndarray:
    """Exact binary mask bool (S, S) of a polygon given in normalised coordinates.

    A pixel is inside when the polygon covers at least half of it, measured on a 4x finer grid
    (at most 1024 px across). This keeps the area unbiased at every size, where a plain fill
    would also take every pixel that the outline touches.
    """
    factor = max(1, min(4, 1024 // size))
    fine = size * factor
    pixels = points * fine - 0.5  # normalised -> fine pixel-centre coordinates
    fixed = np.round(pixels * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    canvas = np.zeros((fine, fine), np.uint8)
    cv2.fillPoly(canvas, [fixed], 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    if factor > 1:
        canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return canvas >= 128
