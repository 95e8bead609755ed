"""Robust image and mask reading: conversions and clear errors on bad files."""

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.data.images import ImageReadError, read_image, read_mask, sniff_image
from workbench.data.photos import SAMPLE_PHOTOS, SamplePhotos, load_sample_photo

RNG = np.random.default_rng(0)


def _rgb8(h=12, w=16):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_and_jpeg(tmp_path):
    rgb = _rgb8()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.dtype == np.float32 and image.shape == (12, 16, 3)
    assert np.allclose(image, rgb / 255.0)  # channel order is RGB, not OpenCV's BGR
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    reference = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB")) / 255.0  # Pillow's decoding
    assert np.abs(read_image(tmp_path / "a.jpg") - reference).max() < 0.05


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = RNG.integers(0, 256, (10, 9), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (10, 9, 3)
    assert np.allclose(image[..., 0], gray / 255.0) and np.array_equal(image[..., 0], image[..., 2])


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[0, :, 3] = 0  # transparent row
    rgba[1, :, 3] = 255  # opaque row
    rgba[2, :, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert np.allclose(image[0], 1.0)
    assert np.allclose(image[1], [200 / 255, 0, 0])
    a = 128 / 255
    assert np.allclose(image[2], [200 / 255 * a + 1 - a, 1 - a, 1 - a], atol=1e-6)
    la = Image.fromarray(rgba[..., 3]).convert("L")
    Image.merge("LA", (Image.fromarray(np.full((4, 4), 50, np.uint8)), la)).save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.shape == (4, 4, 3) and np.allclose(image[0], 1.0) and np.allclose(image[1], 50 / 255)


def test_16bit_is_scaled_by_65535(tmp_path):
    gray = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray)
    assert np.allclose(read_image(tmp_path / "g16.png")[..., 1], gray / 65535.0)
    rgb = RNG.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    assert np.allclose(read_image(tmp_path / "c16.png"), rgb / 65535.0)


def test_palette_image_expands_to_colours(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = (10, 200, 30)
    rgb[4:] = (250, 5, 120)
    Image.fromarray(rgb).quantize(4).save(tmp_path / "p.png")
    Image.fromarray(rgb).quantize(4).save(tmp_path / "p.gif")
    for name in ("p.png", "p.gif"):
        image = read_image(tmp_path / name)
        assert np.allclose(image[0, 0], np.array([10, 200, 30]) / 255, atol=0.02), name
        assert np.allclose(image[7, 7], np.array([250, 5, 120]) / 255, atol=0.02), name


@pytest.mark.parametrize("make,problem", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("not an image at all, just words"), "not an image"),
])
def test_bad_files_raise_image_read_error_naming_the_file(tmp_path, make, problem):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageReadError, match=problem) as info:
        read_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ImageReadError):
        read_mask(path)


def test_truncated_files_raise(tmp_path):
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.jpg")
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.png")
    for name in ("full.jpg", "full.png"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[: len(data) // 2])
        assert sniff_image(cut) is not None  # the header still looks right
        with pytest.raises(ImageReadError, match="cut_") as info:
            read_image(cut)
        assert isinstance(info.value, ValueError)


def test_masks_threshold_and_label_rules(tmp_path):
    soft = np.array([[0, 100, 127], [128, 200, 255]], np.uint8)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    assert read_mask(tmp_path / "soft.png").tolist() == [[False, False, False], [True, True, True]]
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "labels.png")
    assert read_mask(tmp_path / "labels.png").tolist() == [[False, True], [True, False]]
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    assert read_mask(tmp_path / "colour.png").tolist() == [[True, False], [False, False]]
    cutout = np.zeros((2, 2, 4), np.uint8)
    cutout[..., 3] = [[255, 0], [0, 255]]
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")
    assert read_mask(tmp_path / "cutout.png").tolist() == [[True, False], [False, True]]
    deep = np.array([[0, 40000, 20000]], np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert read_mask(tmp_path / "deep.png").tolist() == [[False, True, False]]  # soft: half of 65535
    eight_in_sixteen = np.array([[0, 255], [255, 0]], np.uint16)  # 8-bit values saved in a 16-bit file
    cv2.imwrite(str(tmp_path / "e16.png"), eight_in_sixteen)
    assert read_mask(tmp_path / "e16.png").tolist() == [[False, True], [True, False]]
    empty = np.zeros((3, 3), np.uint8)
    Image.fromarray(empty).save(tmp_path / "empty.png")
    assert not read_mask(tmp_path / "empty.png").any()


def test_sample_photos():
    assert {"chelsea", "coffee", "astronaut", "rocket", "motorcycle"} <= set(SAMPLE_PHOTOS)
    photo = load_sample_photo("chelsea")
    assert photo.dtype == np.float32 and photo.shape == (300, 451, 3) and 0 <= photo.min() and photo.max() <= 1
    small = load_sample_photo("coffee", size=48)
    assert small.shape == (48, 48, 3)
    squashed = load_sample_photo("coffee", size=48, crop="resize")
    assert not np.allclose(small, squashed)
    with pytest.raises(ValueError, match="chelsea"):
        load_sample_photo("lena")
    ds = SamplePhotos(size=32)
    assert len(ds) == len(SAMPLE_PHOTOS)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and "mask" not in item and item["name"] == SAMPLE_PHOTOS[0]
