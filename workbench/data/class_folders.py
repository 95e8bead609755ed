"""Class-folder datasets, the torchvision ``ImageFolder`` layout: ``ROOT/<class name>/<images>``.

KDD GAN's conditional runs (chapter 6: CIFAR-10, Tiny ImageNet, ImageNet 64×64, each exported as
image files, one sub-folder per class) read their labels from here. Classes are the immediate
sub-folders of ROOT in sorted order (label 0 = the first name); images may sit deeper inside a
class folder. The dataset is a :class:`~workbench.data.folders.SegmentationFolder` without masks,
whose ``labels`` (one int per item) and ``classes`` (the folder names) give the classes; the
items themselves are the usual ``{"image", "name"}`` dicts.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.data.folders import Sample, SegmentationFolder, list_images
from workbench.data.images import IMAGE_EXTENSIONS, ImageReadError, sniff_image

__all__ = ["class_folder"]

_SHOW = 5  # offending entries listed in an error message


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


def class_folder(root: str | os.PathLike, *, size: int | None, crop: str = "resize",
                 n: int | None = None) -> SegmentationFolder:
    """Every image under ``ROOT/<class>/``, labelled by its class folder (see the module docstring).

    Raises a clear error for a missing folder, a folder without class sub-folders, class folders
    without images, and files that are not images (checked from their first bytes).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"classes: {root}: no such folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"classes: {root} has no class sub-folders; expected ROOT/<class name>/<image files> "
                         f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
    samples: list[Sample] = []
    labels: list[int] = []
    empty = []
    for label, name in enumerate(classes):
        paths = list_images(root / name, recursive=True)
        if not paths:
            empty.append(name)
        samples += [Sample(p, None, p.relative_to(root).with_suffix("").as_posix()) for p in paths]
        labels += [label] * len(paths)
    if empty:
        raise ValueError(f"classes: {len(empty)} class folder(s) under {root} hold no images: {_listing(empty)}")
    bad = [str(s.image.relative_to(root)) for s in samples if sniff_image(s.image) is None]
    if bad:
        raise ImageReadError(f"classes: {len(bad)} file(s) under {root} are empty or not images: {_listing(bad)}")
    dataset = SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"classes:{root.name}")
    dataset.labels = labels[: len(dataset)]
    dataset.classes = classes
    return dataset
