"""Data: synthetic scenes with exact ground truth, sample photos, and dataset folder loaders.

Everything returns the workbench conventions: numpy images float32 (H, W, 3) in [0, 1] and masks
bool (H, W); datasets give dicts ``{"image": (3, H, W), "mask": (1, H, W), "name": str}``.

* :mod:`workbench.data.synthetic` - procedural scenes (presets easy / benchmark / hard / movable), the
  default data of every method, test, notebook and app; nothing to download.
* :mod:`workbench.data.photos` - the colour photographs that scikit-image ships.
* :mod:`workbench.data.images` - robust reading of image and mask files.
* :mod:`workbench.data.folders` - DUTS, ECSSD, DUT-OMRON, HKU-IS, CUB-200-2011, Flowers102 and
  plain folders, in their published layouts.
* :func:`build_dataset` - any of them from a spec string such as ``"synthetic:benchmark"`` or
  ``"ecssd:/data/ECSSD"``; :data:`DATASET_KINDS` describes the specs.
"""

from workbench.data.build import DATASET_KINDS, build_dataset, parse_spec, require_masks
from workbench.data.images import ImageReadError, read_image, read_mask
from workbench.data.photos import SAMPLE_PHOTOS, SamplePhotos, load_sample_photo
from workbench.data.synthetic import (SCENE_PRESETS, SceneConfig, SceneLayers, SyntheticScenes, render_layers,
                                      render_scene, save_scene_grid, scene_grid)

__all__ = [
    "DATASET_KINDS",
    "SAMPLE_PHOTOS",
    "SCENE_PRESETS",
    "ImageReadError",
    "SamplePhotos",
    "SceneConfig",
    "SceneLayers",
    "SyntheticScenes",
    "build_dataset",
    "load_sample_photo",
    "parse_spec",
    "require_masks",
    "read_image",
    "read_mask",
    "render_layers",
    "render_scene",
    "save_scene_grid",
    "scene_grid",
]
