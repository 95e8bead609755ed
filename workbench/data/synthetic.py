"""Synthetic single-object scenes with an exact ground-truth mask: the workbench's default data.

A scene is three layers: a background (a texture fill plus, in harder presets, distractor shapes
that are *not* in the mask), a foreground fill, and an exactly binary mask of the objects (one or
two; in ``movable`` the distractors are objects too and join the mask and the foreground).
The image is the composite of eq. (3.1), ``where(mask, foreground, background)``, with exactly
that mask, so the shifted composite of eq. (4.2) made from the true layers is free of artifacts:
the thesis' movability principle holds by construction (:func:`render_layers` returns them).

**Determinism and splits.** Scene ``index`` of ``split`` under ``seed`` is drawn from
``np.random.SeedSequence([seed, SPLIT_CODES[split], index])``. The three splits (``train`` = 0,
``val`` = 1, ``test`` = 2) are thus disjoint, independent streams, and the same
(seed, split, index) gives the same scene on every machine. All random choices are made in
normalised coordinates before anything is rasterised, so one scene looks the same at 32, 64, 128
or 224 px; only the per-pixel noise depends on the size (it has its own stream).

**Guarantees.** The mask covers between ``area[0]`` and ``area[1]`` of the image (5% to 40% in
every preset) and never touches the image border.

Presets (:data:`SCENE_PRESETS`): ``easy`` (centred objects, plain fills, strong contrast),
``benchmark`` (textured objects anywhere on textured backgrounds, moderate contrast, 2-4 smaller
distractor shapes) and ``hard`` (low contrast, camouflage textures, 3-6 distractors, sometimes two
objects) and ``movable`` (1-3 objects anywhere on textured backgrounds, every shape in the mask,
mostly camouflaged in the background's texture and colours: the data on which the movability
principle and the ground truth agree) and ``anywhere`` (one plain object anywhere on a structured
background, strong contrast: the layered GANs' data, where a duplicate or a moved background patch
is plainly wrong) and ``plain`` (``anywhere`` without texture: one flat object on a flat or
gradient background; a data rung of issue 16's ladder). Calibration at 64 px on 500 test scenes
(mean IoU): the full-image mask scores about 0.17 on the first three and 0.16 on ``movable``;
GrabCut from a centred box scores 0.99 (easy), 0.70 (benchmark), 0.43 (hard), 0.65 (movable),
0.95 (anywhere), 0.94 (plain).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.data.shapes import SHAPES, make_shape, polygon_area, rasterize, rotate
from workbench.data.textures import (REAL_TEXTURES, colourize, gradient, is_colour, luminance, real_texture,
                                     recolour, stripes, value_noise)

FILLS = ("flat", "gradient", "stripes", "noise", "texture")
SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # second word of the seed sequence of each split
SPLIT_SIZES = {"train": 10_000, "val": 500, "test": 1_000}  # default dataset lengths

_DRAW_MARGIN = 0.05  # margin (fraction of the image) that every object must fit inside at any size
_PLACEMENT_TRIES = 24  # candidate positions drawn per object (the first that fits is used)
_TWO_OBJECT_AREA = 0.25  # largest total area of a two-object scene


# configuration


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn. Ranges are (low, high) and sampled uniformly unless noted."""

    area: tuple[float, float] = (0.05, 0.40)  # mask area as a fraction of the image (log-uniform); both objects together
    shapes: tuple[str, ...] = SHAPES  # shape families of objects and distractors
    placement: float = 1.0  # 0 = object centred, 1 = anywhere it fits inside the frame
    rotation: float = 180.0  # largest object rotation in degrees (a quarter of it for the horse)
    object_fills: tuple[str, ...] = FILLS  # fills that objects are painted with
    background_fills: tuple[str, ...] = FILLS  # fills that the background is painted with
    object_amplitude: tuple[float, float] = (0.15, 0.5)  # colour spread inside an object fill (RGB distance)
    background_amplitude: tuple[float, float] = (0.2, 0.6)  # colour spread inside the background fill
    contrast: tuple[float, float] = (0.1, 0.45)  # RGB distance from an object's mean colour to its surroundings'
    same_texture: float = 0.0  # probability that an object reuses the background's fill kind and texture
    camouflage: bool = False  # an object that reuses the background's texture also takes its two colours
    distractors: tuple[int, int] = (0, 0)  # number of distractor shapes in the background (inclusive range)
    distractor_area: tuple[float, float] = (0.15, 0.5)  # distractor area relative to the object's
    two_objects: float = 0.0  # probability that a scene holds two objects (the mask holds both)
    movable_distractors: bool = False  # distractors are objects too: in the mask and the foreground layer
    noise: float = 0.01  # std of the per-pixel Gaussian noise (one field, added to both layers)


SCENE_PRESETS: dict[str, SceneConfig] = {
    "easy": SceneConfig(
        placement=0.3,
        rotation=30.0,
        object_fills=("flat", "gradient", "noise"),
        background_fills=("flat", "gradient", "noise", "texture"),
        object_amplitude=(0.0, 0.2),
        background_amplitude=(0.05, 0.25),
        contrast=(0.5, 0.9),
        noise=0.005,
    ),
    "benchmark": SceneConfig(
        background_fills=("gradient", "stripes", "noise", "texture", "texture"),
        contrast=(0.1, 0.45),
        same_texture=0.15,
        distractors=(2, 4),
        distractor_area=(0.2, 0.6),
    ),
    "movable": SceneConfig(  # every movable shape is marked (as saliency datasets do); textured backgrounds
        area=(0.05, 0.30),
        background_fills=("stripes", "noise", "texture", "texture"),
        background_amplitude=(0.25, 0.6),
        contrast=(0.08, 0.3),
        same_texture=0.65,
        camouflage=True,
        distractors=(0, 2),
        distractor_area=(0.3, 0.9),
        movable_distractors=True,
    ),
    "anywhere": SceneConfig(  # one plain object anywhere on a structured background: chapter 3/4's layered GANs
        area=(0.08, 0.30),
        object_fills=("flat", "gradient", "noise"),
        background_fills=("gradient", "stripes", "noise", "texture"),
        object_amplitude=(0.0, 0.2),
        background_amplitude=(0.2, 0.5),
        contrast=(0.3, 0.7),
        noise=0.005,
    ),
    "plain": SceneConfig(  # one flat object anywhere on a flat or gradient background: the layered GANs' easiest data
        area=(0.08, 0.30),
        object_fills=("flat",),
        background_fills=("flat", "gradient"),
        object_amplitude=(0.0, 0.0),
        background_amplitude=(0.2, 0.5),
        contrast=(0.3, 0.7),
        noise=0.005,
    ),
    "hard": SceneConfig(
        object_fills=("stripes", "noise", "texture", "texture"),
        background_fills=("stripes", "noise", "texture", "texture"),
        object_amplitude=(0.3, 0.7),
        background_amplitude=(0.35, 0.8),
        contrast=(0.04, 0.2),
        same_texture=0.5,
        distractors=(3, 6),
        distractor_area=(0.2, 0.6),
        two_objects=0.25,
        noise=0.02,
    ),
}


def get_config(preset: str | SceneConfig) -> SceneConfig:
    """The :class:`SceneConfig` of a preset name (or the config itself); ValueError lists the presets."""
    if isinstance(preset, SceneConfig):
        return preset
    if preset not in SCENE_PRESETS:
        raise ValueError(f"unknown scene preset {preset!r}; choose one of {sorted(SCENE_PRESETS)}")
    return SCENE_PRESETS[preset]


# helpers: random draws (resolution independent)


def scene_rng(index: int, *, seed: int = 0, split: str = "train") -> np.random.Generator:
    """The generator of one scene: ``SeedSequence([seed, SPLIT_CODES[split], index])``."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be non-negative, got index={index}, seed={seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _colour_pair(rng: np.random.Generator, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Two colours ``amplitude`` apart around a random mid colour, mostly along luminance."""
    mid = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.9), rng.uniform(0.25, 0.85)))
    direction = rng.normal(size=3)
    direction = 0.6 * np.ones(3) / np.sqrt(3) + 0.4 * direction / np.linalg.norm(direction)
    direction /= np.linalg.norm(direction)
    c0 = np.clip(mid - 0.5 * amplitude * direction, 0, 1)
    c1 = np.clip(mid + 0.5 * amplitude * direction, 0, 1)
    return c0.astype(np.float32), c1.astype(np.float32)


@dataclass(frozen=True)
class Fill:
    """The drawn parameters of one fill; :func:`render_fill` paints it at any size."""

    kind: str  # one of FILLS
    c0: np.ndarray  # colour where the pattern is 0
    c1: np.ndarray  # colour where the pattern is 1
    params: dict = field(default_factory=dict)  # kind-specific parameters


def draw_fill(rng: np.random.Generator, kind: str, amplitude: float, *, texture: str | None = None,
              colours: tuple[np.ndarray, np.ndarray] | None = None) -> Fill:
    """Draw the parameters of a fill of ``kind`` whose colours lie ``amplitude`` apart (RGB distance).

    ``texture`` forces the real texture of a "texture" fill (objects that reuse the background's);
    ``colours`` forces its two colours (camouflage); the random draws are the same either way.
    """
    c0, c1 = _colour_pair(rng, amplitude)
    if colours is not None:
        c0, c1 = colours
    if kind == "flat":
        return Fill(kind, c0, c0)
    if kind == "gradient":
        return Fill(kind, c0, c1, {"angle": rng.uniform(0, 360)})
    if kind == "stripes":
        return Fill(kind, c0, c1, {"frequency": _log_uniform(rng, 2.0, 12.0), "angle": rng.uniform(0, 180),
                                   "phase": rng.uniform(0, 2 * np.pi), "sharpness": rng.uniform(0, 6)})
    if kind == "noise":
        cells = int(rng.integers(3, 9))
        grids = [rng.random((cells, cells)), rng.random((2 * cells, 2 * cells))]
        return Fill(kind, c0, c1, {"grids": grids})
    if kind == "texture":
        name = texture or str(rng.choice(sorted(REAL_TEXTURES)))
        params = {"name": name, "centre": (rng.random(), rng.random()), "scale": _log_uniform(rng, 0.12, 0.8),
                  "angle": rng.uniform(0, 360), "flip": bool(rng.random() < 0.5),
                  "own_colours": bool(is_colour(name) and rng.random() < 0.5),
                  "hue": rng.uniform(-180, 180), "saturation": rng.uniform(0.3, 1.3),
                  "gain": amplitude / 0.5}
        return Fill(kind, c0, c1, params)
    raise ValueError(f"unknown fill {kind!r}; choose from {FILLS}")


@dataclass(frozen=True)
class Shape:
    """One object or distractor: an outline in unit scale plus where it goes."""

    polygon: np.ndarray  # (N, 2) rotated outline around the origin, unit scale
    area: float  # target area, fraction of the image
    candidates: np.ndarray  # (K, 2) in [0, 1]^2: objects' candidate positions (first that fits); a distractor's centre
    fill: Fill  # how it is painted
    contrast: float  # RGB distance of its mean colour from its surroundings


def _fit_area(polygon: np.ndarray, area: float, margin: float) -> float:
    """Largest area <= ``area`` at which the polygon's bounding box fits within the margins."""
    extent = polygon.max(0) - polygon.min(0)
    largest = polygon_area(polygon) * ((1 - 2 * margin) / float(extent.max())) ** 2
    return min(area, largest)


def _draw_object(rng: np.random.Generator, cfg: SceneConfig, area: float, fill: Fill, *,
                 min_area: float) -> Shape:
    """An object outline that can hold ``area`` inside the frame (redrawn until it can)."""
    for _ in range(50):
        family = str(rng.choice(cfg.shapes))
        limit = cfg.rotation / 4 if family == "horse" else cfg.rotation
        polygon = rotate(make_shape(family, rng), rng.uniform(-limit, limit))
        fitted = _fit_area(polygon, area, _DRAW_MARGIN)
        if fitted >= min_area:
            break
    contrast = rng.uniform(*cfg.contrast)
    candidates = rng.random((_PLACEMENT_TRIES, 2))
    return Shape(polygon, fitted, candidates, fill, contrast)


@dataclass(frozen=True)
class ScenePlan:
    """Everything random about one scene, drawn before any pixel is painted."""

    background: Fill
    distractors: list[Shape]
    objects: list[Shape]
    area: float  # target mask area (all objects)
    noise_key: tuple[int, ...]  # seeds the per-pixel noise together with the size


def draw_plan(index: int, *, preset: str | SceneConfig = "benchmark", seed: int = 0,
              split: str = "train") -> ScenePlan:
    """Draw all random choices of a scene (resolution independent)."""
    cfg = get_config(preset)
    rng = scene_rng(index, seed=seed, split=split)
    lo, hi = cfg.area
    background = draw_fill(rng, str(rng.choice(cfg.background_fills)), rng.uniform(*cfg.background_amplitude))

    def object_fill() -> Fill:
        amplitude = rng.uniform(*cfg.object_amplitude)
        if background.kind != "flat" and rng.random() < cfg.same_texture:
            colours = (background.c0, background.c1) if cfg.camouflage else None
            return draw_fill(rng, background.kind, amplitude, texture=background.params.get("name"), colours=colours)
        return draw_fill(rng, str(rng.choice(cfg.object_fills)), amplitude)

    two = rng.random() < cfg.two_objects
    total = _log_uniform(rng, lo, min(hi, _TWO_OBJECT_AREA) if two else hi)  # two objects must fit side by side
    share = rng.uniform(0.4, 0.6) if two else 1.0  # the first object's part of the area
    shares = [share, 1.0 - share] if two else [1.0]
    objects = [_draw_object(rng, cfg, total * s, object_fill(), min_area=lo * s) for s in shares]
    total = sum(o.area for o in objects)

    distractors = []
    for _ in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        family = str(rng.choice(cfg.shapes))
        polygon = rotate(make_shape(family, rng), rng.uniform(-180, 180))
        area = objects[0].area * rng.uniform(*cfg.distractor_area)
        centre = 0.1 + 0.8 * rng.random((1, 2))
        distractors.append(Shape(polygon, area, centre, object_fill(), rng.uniform(*cfg.contrast)))
    noise_key = (int(seed), SPLIT_CODES[split], int(index))
    return ScenePlan(background, distractors, objects, total, noise_key)


# helpers: painting (at a given size)


def render_fill(fill: Fill, *, size: int) -> np.ndarray:
    """Paint a fill at (S, S, 3), float32 in [0, 1]."""
    p = fill.params
    if fill.kind == "flat":
        return np.broadcast_to(fill.c0, (size, size, 3)).astype(np.float32)
    if fill.kind == "gradient":
        return colourize(gradient(size=size, angle=p["angle"]), fill.c0, fill.c1)
    if fill.kind == "stripes":
        pattern = stripes(size=size, frequency=p["frequency"], angle=p["angle"], phase=p["phase"],
                          sharpness=p["sharpness"])
        return colourize(pattern, fill.c0, fill.c1)
    if fill.kind == "noise":
        return colourize(value_noise(p["grids"], size=size), fill.c0, fill.c1)
    crop = real_texture(p["name"], size=size, centre=p["centre"], scale=p["scale"], angle=p["angle"], flip=p["flip"])
    if crop.ndim == 3 and p["own_colours"]:
        rgb = recolour(crop, hue=p["hue"], saturation=p["saturation"])
        mean = rgb.mean((0, 1), keepdims=True)
        return np.clip(mean + (rgb - mean) * p["gain"], 0, 1).astype(np.float32)
    pattern = crop if crop.ndim == 2 else luminance(crop)
    return colourize(pattern, fill.c0, fill.c1)


def _surroundings(image: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Mean colour (3,) of ``image`` within about S/16 pixels outside a mask (uint8 (S, S))."""
    radius = max(2, size // 16)
    ring = cv2.subtract(cv2.dilate(mask, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)), mask)
    if not ring.any():
        return np.full(3, 0.5)
    return np.array(cv2.mean(image, mask=ring)[:3])


def _contrast_offset(paint: np.ndarray, mask: np.ndarray, around: np.ndarray, distance: float) -> np.ndarray:
    """Offset (3,) that moves the mean of ``paint`` over ``mask`` to ``distance`` (RGB) from ``around``.

    The offset keeps the fill's own direction away from its surroundings, flipped when that
    would leave the colour cube.
    """
    mean_in = np.array(cv2.mean(paint, mask=mask)[:3])
    delta = mean_in - around
    norm = float(np.linalg.norm(delta))
    direction = delta / norm if norm > 1e-3 else np.ones(3) / np.sqrt(3)
    best, best_excess = mean_in, np.inf
    for sign in (1.0, -1.0):
        target = around + sign * distance * direction
        excess = float(np.sum(np.maximum(target - 0.95, 0) + np.maximum(0.05 - target, 0)))
        if excess < best_excess:
            best, best_excess = target, excess
        if excess == 0:
            break
    return (best - mean_in).astype(np.float32)


def _fit(shape: Shape, u: np.ndarray, *, size: int, placement: float, area: float, lo: float,
         hi: float) -> tuple[np.ndarray, bool]:
    """Rasterise an object at candidate position ``u``, rescaled until its area lies in [lo, hi].

    The bounding box keeps 5% of the image (at least 1.5 px) from the border, so the mask never
    touches it and positions agree across sizes. Returns the mask and whether its area landed in
    [lo, hi].
    """
    unit_area = polygon_area(shape.polygon)
    margin = max(_DRAW_MARGIN, 1.5 / size)
    target = area
    mask = np.zeros((size, size), bool)
    for _ in range(8):
        points = shape.polygon * np.sqrt(target / unit_area)
        lo_xy, hi_xy = points.min(0), points.max(0)
        extent = hi_xy - lo_xy
        if np.any(extent > 1 - 2 * margin):  # only at tiny sizes: shrink to fit
            target *= float((1 - 2 * margin) / extent.max()) ** 2 * 0.99
            continue
        free = 1 - 2 * margin - extent
        offset = margin + free / 2 + (u - 0.5) * placement * free  # top-left of the bounding box
        mask = rasterize(points - lo_xy + offset, size=size)
        got = float(mask.mean())
        if lo <= got <= hi:
            return mask, True
        target *= float(np.clip(area, lo * 1.02, hi * 0.98)) / max(got, 0.5 / size**2)
    return mask, False


def _place(shape: Shape, *, size: int, placement: float, area: float, lo: float, hi: float,
           avoid: np.ndarray | None = None) -> np.ndarray | None:
    """The first candidate position whose mask has a valid area and misses ``avoid``; else None."""
    for u in shape.candidates:
        mask, ok = _fit(shape, u, size=size, placement=placement, area=area, lo=lo, hi=hi)
        if ok and (avoid is None or not (mask & avoid).any()):
            return mask
    return None


def _inside(shape: Shape, *, size: int) -> np.ndarray | None:
    """A distractor's mask pushed inside the 5% margin (bool (S, S)); None if it cannot fit."""
    margin = max(_DRAW_MARGIN, 1.5 / size)
    points = shape.polygon * np.sqrt(shape.area / polygon_area(shape.polygon)) + shape.candidates[0]
    lo_xy, hi_xy = points.min(0), points.max(0)
    extent = hi_xy - lo_xy
    if np.any(extent > 1 - 2 * margin):
        return None
    points = points + (np.clip(lo_xy, margin, 1 - margin - extent) - lo_xy)
    mask = rasterize(points, size=size)
    return mask if mask.any() else None


def _add_movable_distractors(distractors: list[Shape], background: np.ndarray, foreground: np.ndarray,
                             mask: np.ndarray, *, size: int, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Paint distractors as further objects: into the foreground layer and the mask.

    A distractor is kept only if it fits inside the margin, stays at least one pixel apart from
    the shapes already in the mask, and the mask stays within the preset's largest area ``hi``
    (decided on the raster of this size). Returns (foreground (S, S, 3), mask (S, S)).
    """
    kernel = np.ones((3, 3), np.uint8)
    for d in distractors:
        dmask = _inside(d, size=size)
        if dmask is None:
            continue
        taken = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        if (dmask & taken).any() or (mask | dmask).mean() > hi:
            continue
        paint = render_fill(d.fill, size=size)
        m8 = dmask.astype(np.uint8)
        paint = np.clip(paint + _contrast_offset(paint, m8, _surroundings(background, m8, size), d.contrast), 0, 1)
        foreground = np.where(dmask[..., None], paint, foreground)
        mask = mask | dmask
    return foreground, mask


# scenes


class SceneLayers(NamedTuple):
    image: np.ndarray  # float32 (S, S, 3) in [0, 1]: where(mask, foreground, background)
    mask: np.ndarray  # bool (S, S): the object(s)
    background: np.ndarray  # float32 (S, S, 3): the scene without the object(s), distractors included
    foreground: np.ndarray  # float32 (S, S, 3): the object fill, meaningful where mask is True
    shapes: np.ndarray  # bool (S, S): every shape, object(s) and distractors: all that could be moved


def render_layers(index: int, *, preset: str | SceneConfig = "benchmark", size: int = 64, seed: int = 0,
                  split: str = "train") -> SceneLayers:
    """Render scene ``index`` with its layers; see the module docstring for the split rule."""
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    cfg = get_config(preset)
    plan = draw_plan(index, preset=cfg, seed=seed, split=split)
    lo, hi = cfg.area

    # background and distractors (they belong to the background, not the mask, unless movable)
    background = render_fill(plan.background, size=size).copy()
    distractor_masks = []
    for d in [] if cfg.movable_distractors else plan.distractors:
        points = d.polygon * np.sqrt(d.area / polygon_area(d.polygon)) + d.candidates[0]
        dmask = rasterize(points, size=size)
        if not dmask.any():
            continue
        distractor_masks.append(dmask)
        paint = render_fill(d.fill, size=size)
        m8 = dmask.astype(np.uint8)
        offset = _contrast_offset(paint, m8, _surroundings(background, m8, size), d.contrast)
        background[dmask] = np.clip(paint[dmask] + offset, 0, 1)

    # objects
    first = plan.objects[0]
    masks = []
    if len(plan.objects) == 2:  # both objects apart, each keeping its share of the area bounds
        second = plan.objects[1]
        share1, share2 = first.area / plan.area, second.area / plan.area
        for u in first.candidates[:8]:
            m1, ok = _fit(first, u, size=size, placement=cfg.placement, area=first.area, lo=lo * share1,
                          hi=hi * share1)
            gap = cv2.dilate(m1.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            m2 = _place(second, size=size, placement=1.0, area=second.area, lo=lo * share2, hi=hi * share2,
                        avoid=gap) if ok else None
            if m2 is not None:
                masks = [m1, m2]
                break
    if not masks:  # one object, or the second did not fit: the first takes the whole area
        masks = [_place(first, size=size, placement=cfg.placement, area=plan.area, lo=lo, hi=hi)]
        if masks[0] is None:
            raise RuntimeError(f"scene {index} could not be placed at {size} px (please report: a bug)")
    foreground = None
    for shape, m in zip(plan.objects, masks):
        paint = render_fill(shape.fill, size=size)
        m8 = m.astype(np.uint8)
        paint = np.clip(paint + _contrast_offset(paint, m8, _surroundings(background, m8, size), shape.contrast), 0, 1)
        foreground = paint if foreground is None else np.where(m[..., None], paint, foreground)
    mask = np.logical_or.reduce(masks)
    if cfg.movable_distractors:
        foreground, mask = _add_movable_distractors(plan.distractors, background, foreground, mask, size=size, hi=hi)

    # per-pixel sensor noise on both layers: its own stream, so that it alone depends on the size
    if cfg.noise > 0:
        noise_rng = np.random.default_rng(np.random.SeedSequence([*plan.noise_key, size]))
        noise = noise_rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(cfg.noise)
        background = np.clip(background + noise, 0, 1, out=background)
        foreground = np.clip(foreground + noise, 0, 1)
    background = background.astype(np.float32, copy=False)
    foreground = foreground.astype(np.float32, copy=False)
    image = np.where(mask[..., None], foreground, background)
    shapes = np.logical_or.reduce([mask, *distractor_masks])
    return SceneLayers(image, mask, background, foreground, shapes)


def render_scene(index: int, *, preset: str | SceneConfig = "benchmark", size: int = 64, seed: int = 0,
                 split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Scene ``index``: (image float32 (S, S, 3) in [0, 1], mask bool (S, S)).

    Deterministic in (seed, split, index); the splits are disjoint streams (module docstring).
    """
    layers = render_layers(index, preset=preset, size=size, seed=seed, split=split)
    return layers.image, layers.mask


def overlay(image: np.ndarray, mask: np.ndarray, *, colour=(1.0, 0.2, 0.2), alpha: float = 0.45) -> np.ndarray:
    """The image with the mask tinted and its outline drawn; (H, W, 3) float32."""
    out = image.copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, np.float32)
    edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out[edge] = colour
    return out


def scene_grid(*, preset: str | SceneConfig = "benchmark", size: int = 96, n: int = 8, seed: int = 0,
               split: str = "test", gap: int = 2) -> np.ndarray:
    """A picture of ``n`` scenes: scenes in the top row, their masks below; uint8 (2S+3g, nS+(n+1)g, 3)."""
    height = 2 * size + 3 * gap
    width = n * size + (n + 1) * gap
    grid = np.full((height, width, 3), 255, np.uint8)
    for i in range(n):
        image, mask = render_scene(i, preset=preset, size=size, seed=seed, split=split)
        x = gap + i * (size + gap)
        grid[gap:gap + size, x:x + size] = np.round(image * 255).astype(np.uint8)
        grid[2 * gap + size:2 * gap + 2 * size, x:x + size] = np.where(mask, 255, 0).astype(np.uint8)[..., None]
    return grid


def save_scene_grid(path: str | Path, *, preset: str | SceneConfig = "benchmark", size: int = 96, n: int = 8,
                    seed: int = 0, split: str = "test") -> Path:
    """Write :func:`scene_grid` as a PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = scene_grid(preset=preset, size=size, n=n, seed=seed, split=split)
    ok, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not encode the scene grid for {path}")
    path.write_bytes(data.tobytes())
    return path


# classes


class SyntheticScenes(Dataset):
    """Torch dataset of synthetic scenes: ``{"image": (3, S, S), "mask": (1, S, S), "name": str}``.

    Item ``i`` is ``render_scene(i, preset=preset, size=size, seed=seed, split=split)``; the
    default length is ``SPLIT_SIZES[split]`` (train 10,000, val 500, test 1,000), and any ``n``
    may be asked for: the stream is endless. ``with_background=True`` (opt-in) adds the true
    background layer ``"background": (3, S, S)`` (the scene without its objects, same noise), for
    diagnostics such as MOVE's oracle inpainter.
    """

    def __init__(self, *, preset: str | SceneConfig = "benchmark", size: int = 64, split: str = "train",
                 n: int | None = None, seed: int = 0, with_background: bool = False):
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        self.config = get_config(preset)
        self.preset = preset if isinstance(preset, str) else "custom"
        self.size = size
        self.split = split
        self.seed = seed
        self.n = SPLIT_SIZES[split] if n is None else int(n)
        self.with_background = with_background

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")
        layers = render_layers(index, preset=self.config, size=self.size, seed=self.seed, split=self.split)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(layers.image.transpose(2, 0, 1))),  # (3, S, S)
            "mask": torch.from_numpy(layers.mask[None].astype(np.float32)),  # (1, S, S)
            "name": f"{self.preset}-{self.split}-s{self.seed}-{index:06d}",
        }
        if self.with_background:
            item["background"] = torch.from_numpy(np.ascontiguousarray(layers.background.transpose(2, 0, 1)))  # (3, S, S)
        return item
