"""Textures for the synthetic scenes: real ones shipped by scikit-image, and procedural ones.

Real textures are read straight from the image files that the scikit-image wheel installs in
``skimage/data/`` (never through its downloader), once per process, and kept as small uint8
pyramids so that a crop at any scale is sampled without aliasing. A crop is an affine warp in
*normalised* coordinates, so the same parameters give the same crop at 32 px and at 224 px.

Every function returns either a pattern, float32 (S, S) in [0, 1], or a colour fill,
float32 (S, S, 3) in [0, 1]; :func:`colourize` turns a pattern into a fill between two colours.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np

# helpers

# name -> file in skimage/data/ : (file, is_colour). Only files that the wheel ships.
REAL_TEXTURES: dict[str, tuple[str, bool]] = {
    "brick": ("brick.png", False),  # brick wall, regular
    "grass": ("grass.png", False),  # grass blades, fine and busy
    "gravel": ("gravel.png", False),  # gravel, granular
    "moon": ("moon.png", False),  # lunar surface, smooth with craters
    "coins": ("coins.png", False),  # coins on a table, blobs
    "camera": ("camera.png", False),  # cameraman photo, used as clutter
    "text": ("text.png", False),  # handwritten text, strokes
    "ihc": ("ihc.png", True),  # immunohistochemistry tissue, colour cells
    "hubble": ("hubble_deep_field.jpg", True),  # deep field, dots on black
    "chelsea": ("chelsea.png", True),  # cat fur
    "coffee": ("coffee.png", True),  # coffee cup, saucer, wood
    "astronaut": ("astronaut.png", True),  # astronaut photo, used as clutter
    "rocket": ("rocket.jpg", True),  # rocket launch, sky and smoke
    "motorcycle": ("motorcycle_left.png", True),  # motorcycle, shiny parts
}

_MIN_LEVEL_SIDE = 16  # smallest pyramid level kept


def skimage_data_path(filename: str) -> Path:
    """Path of a file that scikit-image installs in ``skimage/data/``; clear error when absent."""
    path = Path(str(files("skimage") / "data" / filename))
    if not path.is_file():
        raise FileNotFoundError(
            f"scikit-image data file {filename!r} is not installed at {path}; "
            "reinstall scikit-image (the wheel ships it; nothing is downloaded)"
        )
    return path


def _read_uint8(path: Path, *, colour: bool) -> np.ndarray:
    flag = cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flag)
    if raw is None:
        raise OSError(f"cannot decode scikit-image data file {path}")
    return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB) if colour else raw


@functools.lru_cache(maxsize=None)
def texture_pyramid(name: str) -> tuple[np.ndarray, ...]:
    """Cached uint8 pyramid of a real texture, level 0 full size, each next level half as large.

    Grey textures are (H, W), colour ones (H, W, 3) in RGB. Grey ones are contrast-stretched
    (2nd-98th percentile) so that every texture spans the full range before it is coloured.
    """
    if name not in REAL_TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose one of {sorted(REAL_TEXTURES)}")
    filename, colour = REAL_TEXTURES[name]
    img = _read_uint8(skimage_data_path(filename), colour=colour)
    if not colour:
        lo, hi = np.percentile(img, [2, 98])
        img = np.clip((img.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0)), 0, 255).astype(np.uint8)
    levels = [img]
    while min(levels[-1].shape[:2]) >= 2 * _MIN_LEVEL_SIDE:
        levels.append(cv2.pyrDown(levels[-1]))
    for level in levels:
        level.setflags(write=False)
    return tuple(levels)


def is_colour(name: str) -> bool:
    """Whether the real texture ``name`` is a colour image (else grey)."""
    return REAL_TEXTURES[name][1]


# real textures


def real_texture(name: str, *, size: int, centre: tuple[float, float], scale: float, angle: float,
                 flip: bool = False) -> np.ndarray:
    """A rotated, scaled crop of a real texture, float32 (S, S) or (S, S, 3) in [0, 1].

    Args:
        centre: crop centre in the source, as fractions (x, y) of its width and height.
        scale: side of the crop as a fraction of the source's shorter side (0.1 = zoomed in).
        angle: rotation of the crop in degrees.
        flip: mirror the crop horizontally.
    The crop wraps around the source edges (reflected), so any centre is valid.
    """
    levels = texture_pyramid(name)
    h0, w0 = levels[0].shape[:2]
    side0 = scale * min(h0, w0)  # crop side in level-0 pixels
    step0 = side0 / size  # level-0 pixels per output pixel
    level = int(np.clip(np.floor(np.log2(max(step0, 1.0))), 0, len(levels) - 1))
    src = levels[level]
    factor = 2.0**level
    h, w = src.shape[:2]
    step = step0 / factor  # source pixels per output pixel at this level
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta) * step, np.sin(theta) * step
    sx = -cos if flip else cos
    sy = -sin if flip else sin
    cx, cy = centre[0] * w, centre[1] * h
    half = (size - 1) / 2.0
    # output (u, v) -> source (x, y) = C + R * step * (u - half, v - half)
    matrix = np.array([[sx, -sin, cx - sx * half + sin * half],
                       [sy, cos, cy - sy * half - cos * half]], dtype=np.float64)
    out = cv2.warpAffine(src, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out.astype(np.float32) / 255.0


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of a (..., 3) image; (S, S, 3) -> (S, S)."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def recolour(rgb: np.ndarray, *, hue: float, saturation: float) -> np.ndarray:
    """Rotate the chroma of an RGB fill by ``hue`` degrees and scale it by ``saturation``.

    Works in YIQ, where luma stays fixed and (I, Q) is the chroma plane. (S, S, 3) -> (S, S, 3).
    """
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    yiq = rgb @ to_yiq.T
    t = np.deg2rad(hue)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32) * saturation
    yiq[..., 1:] = yiq[..., 1:] @ rot.T
    return np.clip(yiq @ np.linalg.inv(to_yiq).T.astype(np.float32), 0.0, 1.0)


# procedural textures


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates in [0, 1], each (S, S), x along columns."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(t, t)


def gradient(*, size: int, angle: float) -> np.ndarray:
    """Linear ramp from 0 to 1 across the image along direction ``angle`` (degrees); (S, S)."""
    x, y = _grid(size)
    theta = np.deg2rad(angle)
    proj = (x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta)  # in [-0.71, 0.71]
    span = 0.5 * (abs(np.cos(theta)) + abs(np.sin(theta)))
    return np.clip(0.5 + proj / (2 * span), 0.0, 1.0).astype(np.float32)


def stripes(*, size: int, frequency: float, angle: float, phase: float, sharpness: float) -> np.ndarray:
    """Parallel stripes, ``frequency`` periods per image width; (S, S) in [0, 1].

    ``sharpness`` 0 gives a sine, larger values approach square stripes. The frequency is capped
    at a period of 4 pixels so that small renders do not alias.
    """
    x, y = _grid(size)
    theta = np.deg2rad(angle)
    f = min(frequency, size / 4.0)
    wave = np.sin(2 * np.pi * f * (x * np.cos(theta) + y * np.sin(theta)) + phase)
    k = 1.0 + sharpness
    return (0.5 + 0.5 * np.tanh(k * wave) / np.tanh(k)).astype(np.float32)


def value_noise(grids: list[np.ndarray], *, size: int, weights: list[float] | None = None) -> np.ndarray:
    """Smooth noise: each random grid (g, g) is upsampled bicubically to (S, S) and summed.

    The grids hold the randomness, so the result depends only on them, not on ``size``. The sum
    is stretched to [0, 1].
    """
    weights = weights or [0.5**i for i in range(len(grids))]
    out = np.zeros((size, size), np.float32)
    for grid, weight in zip(grids, weights):
        out += weight * cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def colourize(pattern: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Map a pattern (S, S) in [0, 1] linearly between colours c0 and c1; -> (S, S, 3)."""
    c0 = np.asarray(c0, np.float32)
    c1 = np.asarray(c1, np.float32)
    return (c0 + pattern[..., None] * (c1 - c0)).astype(np.float32)
