"""Loaders for the datasets of the thesis' tables, in their published folder layouts.

Every loader returns a :class:`SegmentationFolder`: a torch Dataset of dicts
``{"image": (3, S, S) float32 in [0, 1], "mask": (1, S, S) float32 in {0, 1}, "name": str}``
(no ``"mask"`` for a plain image folder). Images are resized to ``size`` either by squashing
(``crop="resize"``) or by a centre square crop then resize (``crop="center"``, the protocol for
CUB-200-2011 and Flowers102, thesis section 4.3); masks are resized with nearest neighbour.

Problems show up early and by name: a folder that is missing, empty, or whose images lack masks
(or masks lack images), and files that are not images at all (checked from their first bytes),
are reported when the dataset is built, listing the first few offending files. A file that is
corrupt further in is reported when it is read, as :class:`ImageReadError` naming the file.

Each loader accepts its root at the dataset folder itself or at its parent, when the parent holds
exactly one folder with the expected layout.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.data.images import IMAGE_EXTENSIONS, ImageReadError, read_image, read_mask, sniff_image
from workbench.data.photos import centre_square, resize_image

CROPS = ("resize", "center")
FOLDER_SPLITS = ("train", "val", "test", "all")
_SHOW = 5  # offending files listed in an error message


# helpers: listing and pairing


@dataclass(frozen=True)
class Sample:
    image: Path  # the image file
    mask: Path | None  # its mask file, or None for image-only datasets
    name: str  # relative path without extension, unique within the dataset


def _examples(items: Sequence, *, root: Path | None = None) -> str:
    shown = [str(Path(p).relative_to(root)) if root and Path(p).is_relative_to(root) else str(p) for p in items[:_SHOW]]
    more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return ", ".join(shown) + more


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Image files in a folder by extension (case-insensitive), sorted; hidden files skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def _keyed(paths: list[Path], folder: Path, what: str) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    clashes = []
    for p in paths:
        k = _key(p, folder)
        if k in keyed:
            clashes.append(f"{keyed[k].name} / {p.name}")
        keyed[k] = p
    if clashes:
        raise ValueError(f"{folder}: several {what} files share a name (only the extension differs): "
                         f"{_examples(clashes)}")
    return keyed


def _check_headers(paths: Sequence[Path], what: str) -> None:
    bad = [p for p in paths if sniff_image(p) is None]
    if bad:
        raise ImageReadError(f"{len(bad)} {what} file(s) are empty or not images: {_examples(bad)}")


def _descend(folder: Path) -> Path:
    """Step into single nested folders (``X/X/*.jpg`` as some archives extract) until images show."""
    while folder.is_dir() and not list_images(folder):
        subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subdirs) != 1:
            break
        folder = subdirs[0]
    return folder


def _find_root(root: str | os.PathLike, markers: Sequence[str], dataset: str) -> Path:
    """The folder holding all ``markers``: ``root`` itself, or its one child that does."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{dataset}: {root} does not exist")
    if all((root / m).exists() for m in markers):
        return root
    children = [d for d in sorted(root.iterdir()) if d.is_dir() and all((d / m).exists() for m in markers)]
    if len(children) == 1:
        return children[0]
    if len(children) > 1:
        raise ValueError(f"{dataset}: {root} holds several candidate folders ({_examples(children)}); "
                         "point at one of them")
    found = sorted(p.name for p in root.iterdir())[:10]
    raise FileNotFoundError(f"{dataset}: {root} does not have the expected layout: it should contain "
                            f"{', '.join(markers)} (itself or in one subfolder); found: {found or 'nothing'}")


def pair_folders(images_dir: str | os.PathLike, masks_dir: str | os.PathLike, *, dataset: str,
                 recursive: bool = False) -> list[Sample]:
    """Pair images with masks by file name without extension (relative path when recursive).

    Raises when a folder is missing or empty, when images have no mask, or when files are not
    images; masks without an image only give a warning.
    """
    images_dir, masks_dir = _descend(Path(images_dir).expanduser()), _descend(Path(masks_dir).expanduser())
    images = _keyed(list_images(images_dir, recursive=recursive), images_dir, "image")
    masks = _keyed(list_images(masks_dir, recursive=recursive), masks_dir, "mask")
    if not images:
        raise ValueError(f"{dataset}: no image files in {images_dir} (extensions {', '.join(IMAGE_EXTENSIONS)})")
    missing = sorted(k for k in images if k not in masks)
    if missing:
        raise ValueError(f"{dataset}: {len(missing)} of {len(images)} images have no mask in {masks_dir} "
                         f"(matched by file name without extension): {_examples([images[k] for k in missing], root=images_dir)}")
    extra = sorted(k for k in masks if k not in images)
    if extra:
        warnings.warn(f"{dataset}: {len(extra)} masks in {masks_dir} have no image, ignored: "
                      f"{_examples([masks[k] for k in extra], root=masks_dir)}", stacklevel=3)
    samples = [Sample(images[k], masks[k], k) for k in sorted(images)]
    _check_headers([s.image for s in samples], "image")
    _check_headers([s.mask for s in samples], "mask")
    return samples


# classes


class SegmentationFolder(Dataset):
    """Images (and masks) listed up front, read and resized on access; see the module docstring."""

    labels: list[int] | None = None  # class of each item, where the dataset has classes

    def __init__(self, samples: Sequence[Sample], *, size: int | None, crop: str = "resize", n: int | None = None,
                 name: str = "folder", mask_reader: Callable[[Path], np.ndarray] = read_mask):
        if crop not in CROPS:
            raise ValueError(f"unknown crop {crop!r}; choose one of {CROPS}")
        if size is not None and size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if not samples:
            raise ValueError(f"{name}: the dataset is empty")
        self.samples = list(samples)[:n] if n is not None else list(samples)
        self.size = size
        self.crop = crop
        self.name = name
        self.mask_reader = mask_reader
        self.has_masks = all(s.mask is not None for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def _shape(self, image: np.ndarray) -> np.ndarray:
        if self.crop == "center":
            image = centre_square(image)
        return image

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Sample ``index`` as numpy: image float32 (S, S, 3), mask bool (S, S) or None."""
        sample = self.samples[index]
        image = read_image(sample.image)
        mask = None
        if sample.mask is not None:
            mask = self.mask_reader(sample.mask)  # raises ImageReadError naming the file
            if mask.shape != image.shape[:2]:
                raise ImageReadError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                     f"{sample.image} is {image.shape[1]}x{image.shape[0]}")
            mask = self._shape(mask)
        image = self._shape(image)
        if self.size is not None:
            image = resize_image(image, (self.size, self.size))
            if mask is not None:
                mask = cv2.resize(mask.astype(np.uint8), (self.size, self.size),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
        return image, mask

    def __getitem__(self, index: int) -> dict:
        image, mask = self.load(index)
        item = {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, S, S)
                "name": self.samples[index].name}
        if mask is not None:
            item["mask"] = torch.from_numpy(mask[None].astype(np.float32))  # (1, S, S)
        return item

    def __repr__(self) -> str:
        return f"SegmentationFolder({self.name}, {len(self)} items, size={self.size}, crop={self.crop!r})"


# loaders: saliency datasets (one split each; the whole folder is used)


def duts(root: str | os.PathLike, *, part: str = "te", size: int | None, crop: str = "resize",
         n: int | None = None) -> SegmentationFolder:
    """DUTS-TR or DUTS-TE: ``DUTS-TE/DUTS-TE-Image/*.jpg`` with ``DUTS-TE/DUTS-TE-Mask/*.png``."""
    part = part.upper()
    if part not in ("TR", "TE"):
        raise ValueError(f"DUTS part must be 'tr' or 'te', got {part!r}")
    images, masks = f"DUTS-{part}-Image", f"DUTS-{part}-Mask"
    base = _find_root(root, [images, masks], f"DUTS-{part}")
    samples = pair_folders(base / images, base / masks, dataset=f"DUTS-{part}")
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"duts-{part.lower()}")


def ecssd(root: str | os.PathLike, *, size: int | None, crop: str = "resize", n: int | None = None) -> SegmentationFolder:
    """ECSSD: ``images/*.jpg`` with ``ground_truth_mask/*.png``."""
    base = _find_root(root, ["images", "ground_truth_mask"], "ECSSD")
    samples = pair_folders(base / "images", base / "ground_truth_mask", dataset="ECSSD")
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name="ecssd")


def dut_omron(root: str | os.PathLike, *, size: int | None, crop: str = "resize",
              n: int | None = None) -> SegmentationFolder:
    """DUT-OMRON: ``DUT-OMRON-image/*.jpg`` with ``pixelwiseGT-new-PNG/*.png``."""
    base = _find_root(root, ["DUT-OMRON-image", "pixelwiseGT-new-PNG"], "DUT-OMRON")
    samples = pair_folders(base / "DUT-OMRON-image", base / "pixelwiseGT-new-PNG", dataset="DUT-OMRON")
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name="dut-omron")


def _names_in_mat(path: Path) -> list[str]:
    """Every string stored in a MATLAB file (HKU-IS keeps its split lists as cell arrays)."""
    from scipy.io import loadmat

    names: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            names.append(value.strip())
        elif isinstance(value, np.ndarray):
            if value.dtype.kind == "U":
                names.extend(str(v).strip() for v in value.ravel())
            elif value.dtype == object:
                for v in value.ravel():
                    walk(v)

    for key, value in loadmat(path).items():
        if not key.startswith("__"):
            walk(value)
    return [n for n in names if n]


def hku_is(root: str | os.PathLike, *, split: str = "all", size: int | None, crop: str = "resize",
           n: int | None = None) -> SegmentationFolder:
    """HKU-IS: ``imgs/*.png`` with ``gt/*.png``.

    ``split`` "train"/"val"/"test" uses the list ``<split>ImgSet.mat`` (original release) or
    ``<split>.txt`` (one name per line) beside ``imgs/``; "all", or a split whose list is absent
    (with a warning), uses every image.
    """
    base = _find_root(root, ["imgs", "gt"], "HKU-IS")
    samples = pair_folders(base / "imgs", base / "gt", dataset="HKU-IS")
    if split != "all":
        if split not in FOLDER_SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {FOLDER_SPLITS}")
        mat, txt = base / f"{split}ImgSet.mat", base / f"{split}.txt"
        if mat.is_file() or txt.is_file():
            listed = _names_in_mat(mat) if mat.is_file() else txt.read_text().split()
            wanted = {Path(name).stem for name in listed}
            unknown = sorted(wanted - {s.name for s in samples})
            if unknown:
                raise ValueError(f"HKU-IS: the {split} list names {len(unknown)} images not in {base / 'imgs'}: "
                                 f"{_examples(unknown)}")
            samples = [s for s in samples if s.name in wanted]
        else:
            warnings.warn(f"HKU-IS: no {mat.name} or {txt.name} in {base}; using all {len(samples)} images",
                          stacklevel=2)
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"hku-is-{split}")


# loaders: CUB-200-2011 and Flowers102


def _read_table(path: Path, columns: int) -> list[list[str]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != columns:
            raise ValueError(f"{path}, line {number}: expected {columns} fields, got {line!r}")
        rows.append(parts)
    return rows


def cub(root: str | os.PathLike, *, split: str = "test", size: int | None, crop: str = "center",
        n: int | None = None) -> SegmentationFolder:
    """CUB-200-2011: ``CUB_200_2011/images/<class>/*.jpg``, ``images.txt``, split file, and
    ``segmentations/<class>/*.png`` (inside ``CUB_200_2011/`` or beside it).

    The segmentations are soft (annotator agreement); they are thresholded at one half.
    Splits: with ReDO's ``train_val_test_split.txt`` in the folder (the thesis' protocol,
    sections 4.3 and 5.4), "train"/"val"/"test" are its 0/1/2 rows; otherwise the official
    ``train_test_split.txt`` gives "train" and "test" (with a warning, as the numbers then do not
    compare with the thesis) and no "val". "all" is every image.
    """
    base = _find_root(root, ["images", "images.txt"], "CUB-200-2011")
    seg = base / "segmentations" if (base / "segmentations").is_dir() else base.parent / "segmentations"
    if not seg.is_dir():
        raise FileNotFoundError(f"CUB-200-2011: no segmentations/ folder in {base} or beside it "
                                "(extract segmentations.tgz there)")
    if split not in FOLDER_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {FOLDER_SPLITS}")
    files = {row[0]: row[1] for row in _read_table(base / "images.txt", 2)}
    if split == "all":
        ids = list(files)
    elif (base / "train_val_test_split.txt").is_file():
        code = {"train": "0", "val": "1", "test": "2"}[split]
        ids = [i for i, s in _read_table(base / "train_val_test_split.txt", 2) if s == code]
    elif (base / "train_test_split.txt").is_file():
        if split == "val":
            raise ValueError("CUB-200-2011: the official split has no 'val'; put ReDO's train_val_test_split.txt "
                             f"in {base} for the thesis' train/val/test split")
        warnings.warn("CUB-200-2011: using the official train_test_split.txt; the thesis evaluates on ReDO's "
                      f"split (put train_val_test_split.txt in {base})", stacklevel=2)
        ids = [i for i, t in _read_table(base / "train_test_split.txt", 2) if t == ("1" if split == "train" else "0")]
    else:
        raise FileNotFoundError(f"CUB-200-2011: no train_val_test_split.txt or train_test_split.txt in {base}")
    unknown = [i for i in ids if i not in files]
    if unknown:
        raise ValueError(f"CUB-200-2011: split file names image ids not in images.txt: {_examples(unknown)}")
    samples = [Sample(base / "images" / files[i], seg / Path(files[i]).with_suffix(".png"),
                      Path(files[i]).with_suffix("").as_posix()) for i in ids]
    _check_listed(samples, "CUB-200-2011")
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"cub-{split}")


def _check_listed(samples: list[Sample], dataset: str) -> None:
    """For datasets listed in index files: every listed image and mask exists and looks like an image."""
    if not samples:
        raise ValueError(f"{dataset}: the split is empty")
    missing_images = [s.image for s in samples if not s.image.is_file()]
    if missing_images:
        raise FileNotFoundError(f"{dataset}: {len(missing_images)} listed images are missing: {_examples(missing_images)}")
    missing_masks = [s.mask for s in samples if s.mask is not None and not s.mask.is_file()]
    if missing_masks:
        raise FileNotFoundError(f"{dataset}: {len(missing_masks)} images have no mask: {_examples(missing_masks)}")
    _check_headers([s.image for s in samples], "image")
    _check_headers([s.mask for s in samples if s.mask is not None], "mask")


def read_flowers_mask(path: Path) -> np.ndarray:
    """Flowers102 ``segmim`` mask: the image with the background painted pure blue (0, 0, 254).

    Object = every pixel that is not (JPEG-tolerantly) that blue: B >= 180 with R, G <= 70.
    """
    rgb = read_image(path)
    r, g, b = rgb[..., 0] * 255, rgb[..., 1] * 255, rgb[..., 2] * 255
    return ~((b >= 180) & (r <= 70) & (g <= 70))


def flowers102(root: str | os.PathLike, *, split: str = "test", size: int | None, crop: str = "center",
               n: int | None = None) -> SegmentationFolder:
    """Flowers102: ``jpg/image_XXXXX.jpg``, ``segmim/segmim_XXXXX.jpg``, ``setid.mat`` (and ``imagelabels.mat``).

    Splits follow ReDO and the thesis (section 4.3): "train" is setid's ``tstid`` (6,149
    images), "val" its ``valid`` (1,020) and "test" its ``trnid`` (1,020); "all" is every image.
    The class of each item (from ``imagelabels.mat``, when present) is in ``dataset.labels``.
    """
    from scipy.io import loadmat

    base = _find_root(root, ["jpg", "segmim"], "Flowers102")
    if split not in FOLDER_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {FOLDER_SPLITS}")
    if split == "all":
        ids = [int(p.stem.split("_")[-1]) for p in list_images(base / "jpg") if p.stem.startswith("image_")]
    else:
        setid = base / "setid.mat"
        if not setid.is_file():
            raise FileNotFoundError(f"Flowers102: no setid.mat in {base} (needed for split {split!r}; or use 'all')")
        key = {"train": "tstid", "val": "valid", "test": "trnid"}[split]
        table = loadmat(setid)
        if key not in table:
            raise ValueError(f"Flowers102: {setid} has no {key!r} array (found {sorted(k for k in table if not k.startswith('__'))})")
        ids = [int(i) for i in np.ravel(table[key])]
    samples = [Sample(base / "jpg" / f"image_{i:05d}.jpg", base / "segmim" / f"segmim_{i:05d}.jpg", f"image_{i:05d}")
               for i in sorted(ids)]
    _check_listed(samples, "Flowers102")
    dataset = SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"flowers102-{split}",
                                 mask_reader=read_flowers_mask)
    if (base / "imagelabels.mat").is_file():
        labels = np.ravel(loadmat(base / "imagelabels.mat")["labels"])
        dataset.labels = [int(labels[int(s.name.split("_")[-1]) - 1]) for s in dataset.samples]
    return dataset


# loaders: your own folders


def image_folder(root: str | os.PathLike, *, size: int | None, crop: str = "resize",
                 n: int | None = None) -> SegmentationFolder:
    """Every image under a folder (recursively), without masks."""
    root = Path(root).expanduser()
    paths = list_images(root, recursive=True)
    if not paths:
        raise ValueError(f"folder: no image files under {root} (extensions {', '.join(IMAGE_EXTENSIONS)})")
    _check_headers(paths, "image")
    samples = [Sample(p, None, _key(p, root)) for p in paths]
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"folder:{root.name}")


def paired_folders(images_dir: str | os.PathLike, masks_dir: str | os.PathLike, *, size: int | None,
                   crop: str = "resize", n: int | None = None) -> SegmentationFolder:
    """Images and masks in two folders, matched by file name without extension (recursively)."""
    samples = pair_folders(images_dir, masks_dir, dataset="pairs", recursive=True)
    return SegmentationFolder(samples, size=size, crop=crop, n=n, name=f"pairs:{Path(images_dir).name}")
