"""Sample photographs: the real colour photos that scikit-image ships, offline, without masks.

They let the apps and notebooks show a method on a real picture before any dataset is
downloaded. Files are read straight from ``skimage/data/`` (never through its downloader).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.data.images import read_image
from workbench.data.textures import skimage_data_path

# name -> (file in skimage/data/, what it shows)
PHOTO_FILES: dict[str, tuple[str, str]] = {
    "chelsea": ("chelsea.png", "a tabby cat"),
    "coffee": ("coffee.png", "a cup of coffee on a saucer"),
    "astronaut": ("astronaut.png", "astronaut Eileen Collins"),
    "rocket": ("rocket.jpg", "a rocket on its launch pad"),
    "motorcycle": ("motorcycle_left.png", "a motorcycle in a lab (left view of a stereo pair)"),
    "retina": ("retina.jpg", "a human retina (fundus photograph)"),
    "ihc": ("ihc.png", "a tissue section stained by immunohistochemistry"),
    "hubble": ("hubble_deep_field.jpg", "the Hubble eXtreme Deep Field"),
}

SAMPLE_PHOTOS: tuple[str, ...] = tuple(PHOTO_FILES)  # names accepted by load_sample_photo


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square crop of an (H, W, ...) array."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float32 (H, W, 3) to (height, width): area averaging when shrinking, bilinear otherwise."""
    height, width = size
    shrink = height < image.shape[0] or width < image.shape[1]
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_sample_photo(name: str, *, size: int | None = None, crop: str = "center") -> np.ndarray:
    """A sample photo as float32 (H, W, 3) in [0, 1]; with ``size``, centre-cropped square and resized.

    ``crop="resize"`` squashes the whole photo to the square instead. Raises ValueError for an
    unknown name, listing the valid ones.
    """
    if name not in PHOTO_FILES:
        raise ValueError(f"unknown sample photo {name!r}; choose one of: {', '.join(SAMPLE_PHOTOS)}")
    if crop not in ("center", "resize"):
        raise ValueError(f"unknown crop {crop!r}; choose 'center' or 'resize'")
    image = read_image(skimage_data_path(PHOTO_FILES[name][0]))
    if size is not None:
        image = resize_image(centre_square(image) if crop == "center" else image, (size, size))
    return image


class SamplePhotos(Dataset):
    """The sample photos as a dataset: ``{"image": (3, S, S), "name": str}`` (no masks)."""

    def __init__(self, *, size: int | None = None, crop: str = "center", names: tuple[str, ...] = SAMPLE_PHOTOS):
        for name in names:
            if name not in PHOTO_FILES:
                raise ValueError(f"unknown sample photo {name!r}; choose one of: {', '.join(SAMPLE_PHOTOS)}")
        if crop not in ("center", "resize"):
            raise ValueError(f"unknown crop {crop!r}; choose 'center' or 'resize'")
        self.size = size
        self.crop = crop
        self.names = tuple(names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict:
        image = load_sample_photo(self.names[index], size=self.size, crop=self.crop)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, H, W)
                "name": self.names[index]}
