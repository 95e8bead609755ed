"""Reading images and masks from disk, robustly, into the workbench conventions.

:func:`read_image` returns float32 (H, W, 3) in [0, 1]; :func:`read_mask` returns bool (H, W).
Files are decoded by OpenCV (``cv2.IMREAD_UNCHANGED``, so bit depth and alpha survive), with
Pillow as a fallback for formats OpenCV lacks. Conversions, all deliberate:

* **bit depth**: 8-bit values are divided by 255, 16-bit by 65535; float images are clipped to
  [0, 1]; other integer types are divided by their type's maximum.
* **grayscale** (and grayscale + alpha) is repeated to three channels.
* **alpha** (RGBA, LA, palette with transparency) is composited over **white**, the way a
  viewer on a white page shows a cut-out object; fully opaque images are unchanged.
* **palette** images are expanded to their colours.
* **orientation**: EXIF orientation is *not* applied; pixels are used as stored, which is how
  the published dataset masks line up with their images.
* **multi-frame** files (GIF, TIFF) give their first frame.

Masks (:func:`read_mask`): colour masks are reduced by the maximum over their colour channels;
an RGBA mask whose colour is the same everywhere is read from its alpha channel. A pixel is
object when its value is above half of the type's range (> 127 for 8-bit, > 32767 for 16-bit,
> 0.5 for float). Integer masks that hold only 0 and one other value (label masks 0/1, or 0/255
saved in a 16-bit file) are read as that value = object.

Every failure (missing file, directory, empty file, not an image, truncated or corrupt data)
raises :class:`ImageReadError` naming the file and the problem.

**Size limit**: the width and height are read from the file's header (Pillow reads the header
only) *before* anything is decoded, and an image of more than :func:`max_pixels` pixels
(:data:`DEFAULT_MAX_PIXELS`, 40 megapixels, unless ``$WORKBENCH_MAX_PIXELS`` says otherwise) is
refused with :class:`ImageTooLargeError`. Every reader of the workbench goes through here:
``predict``, ``eval``, the dataset folders and the app, so a small file that would decode to
gigabytes (a "decompression bomb") never reaches OpenCV.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000  # largest image read (width x height), unless $WORKBENCH_MAX_PIXELS says otherwise
MAX_PIXELS_ENV = "WORKBENCH_MAX_PIXELS"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")

# leading bytes of the formats above: how a file is recognised without decoding it
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"P5", "pgm"),
    (b"P6", "ppm"),
)


class ImageReadError(ValueError):
    """An image or mask file could not be read; the message names the file and the problem."""


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than :func:`max_pixels`, refused before decoding."""


def max_pixels() -> int:
    """The largest number of pixels (width x height) an image may have: ``$WORKBENCH_MAX_PIXELS``
    when set to a positive whole number, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"${MAX_PIXELS_ENV} must be a whole number of pixels, got {text!r}") from None
        if value > 0:
            return value
        raise ValueError(f"${MAX_PIXELS_ENV} must be positive, got {value}")
    return DEFAULT_MAX_PIXELS


def _too_large(path: Path, what: str) -> ImageTooLargeError:
    limit = max_pixels()
    return ImageTooLargeError(f"{path}: the image is too large ({what}); the limit is {limit:,} pixels "
                              f"({limit / 1e6:g} megapixels; set ${MAX_PIXELS_ENV} to change it). Shrink it first.")


def header_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from the image file's header, without decoding the pixels; None when Pillow
    does not recognise the file (OpenCV may still decode it, and its size is checked after decoding).
    Raises :class:`ImageTooLargeError` when the header declares more than :func:`max_pixels` pixels."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError as err:  # beyond twice Pillow's own limit
        raise _too_large(path, str(err).split(" exceeds", 1)[0].lower()) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    if width * height > max_pixels():
        raise _too_large(path, f"{width}×{height} = {width * height:,} pixels")
    return width, height


# helpers


def sniff_image(path: str | os.PathLike) -> str | None:
    """The format of an image file from its first bytes ('png', 'jpeg', ...), or None.

    Cheap (reads 16 bytes): used to check whole dataset folders when they are opened.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes)")


def _decode(path: Path) -> np.ndarray:
    """Raw pixels as stored: (H, W) or (H, W, C) with C in {2, 3, 4}, RGB(A) order, native dtype."""
    _check_file(path)
    header_size(path)  # refuses an image above the pixel limit before anything is decoded
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageReadError(f"{path}: cannot be read ({err.strerror or err})") from err
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if raw is not None and raw.shape[0] * raw.shape[1] > max_pixels():  # a format only OpenCV knows
        raise _too_large(path, f"{raw.shape[1]}×{raw.shape[0]} pixels")
    if raw is not None:
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[..., 0]
        if raw.ndim == 3 and raw.shape[2] == 3:
            raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
        elif raw.ndim == 3 and raw.shape[2] == 4:
            raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
        return raw
    return _decode_pil(path)


def _decode_pil(path: Path) -> np.ndarray:
    """Fallback decoder; also gives the precise reason when a file is corrupt."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGB")
            elif img.mode == "PA":
                img = img.convert("RGBA")
            elif img.mode == "1":
                img = img.convert("L")
            return np.array(img)
    except UnidentifiedImageError as err:
        kind = sniff_image(path)
        hint = f" (it starts like a {kind} file but is corrupt)" if kind else ""
        raise ImageReadError(f"{path}: not an image file that can be decoded{hint}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{path}: corrupt or truncated image ({err})") from err


def _to_unit(raw: np.ndarray, path: Path) -> np.ndarray:
    """Scale stored values to float32 in [0, 1] (see the module docstring)."""
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / 255.0
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / 65535.0
    if raw.dtype == np.bool_:
        return raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.floating):
        return np.clip(np.nan_to_num(raw.astype(np.float32)), 0.0, 1.0)
    if np.issubdtype(raw.dtype, np.integer):
        return np.clip(raw.astype(np.float32) / float(np.iinfo(raw.dtype).max), 0.0, 1.0)
    raise ImageReadError(f"{path}: unsupported pixel type {raw.dtype}")


def _flatten_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W, C) over white with alpha (H, W) in [0, 1]."""
    a = alpha[..., None]
    return rgb * a + (1.0 - a)


# public


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 (H, W, 3) RGB in [0, 1]; raises :class:`ImageReadError`."""
    path = Path(path)
    raw = _decode(path)
    if raw.ndim not in (2, 3) or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise ImageReadError(f"{path}: unexpected image shape {raw.shape}")
    img = _to_unit(raw, path)
    if img.ndim == 2:
        img = img[..., None]
    channels = img.shape[2]
    if channels == 2:  # grayscale + alpha
        img = _flatten_alpha(img[..., :1], img[..., 1])
    elif channels == 4:
        img = _flatten_alpha(img[..., :3], img[..., 3])
    elif channels not in (1, 3):
        raise ImageReadError(f"{path}: cannot interpret an image with {channels} channels")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img, dtype=np.float32)


def read_mask_plane(path: str | os.PathLike) -> np.ndarray:
    """The stored values of a mask file as one (H, W) plane in its native dtype.

    A colour mask gives the maximum over its colour channels; an RGBA (or grey + alpha) mask whose
    colour is the same everywhere is a cut-out, read from its alpha channel. Shared by
    :func:`read_mask` and the soft-prediction reader of ``workbench.eval.folders``, which apply
    their own value rules. Raises :class:`ImageReadError`.
    """
    path = Path(path)
    raw = _decode(path)
    if raw.ndim == 3:
        colour = raw[..., : 3 if raw.shape[2] >= 3 else 1]
        if raw.shape[2] in (2, 4) and colour.min() == colour.max():  # a cut-out: the alpha is the mask
            raw = raw[..., -1]
        else:
            raw = colour.max(axis=2)
    if raw.ndim != 2 or raw.size == 0:
        raise ImageReadError(f"{path}: unexpected mask shape {raw.shape}")
    return raw


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask as bool (H, W); raises :class:`ImageReadError` (rules: module docstring)."""
    path = Path(path)
    raw = read_mask_plane(path)
    if np.issubdtype(raw.dtype, np.integer):
        top = raw.max()
        if top > 0 and not ((raw != 0) & (raw != top)).any():
            return raw > 0  # two-valued: 0 background, the other value object
    return _to_unit(raw, path) > 0.5
