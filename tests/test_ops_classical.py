"""Unit tests of the classical mask / inpainting operators and of shift_scene, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.ops.classical import dilate_mask, disc, erode_mask, inpaint_telea, perturb_mask
from workbench.ops.shift_scene import shift_error, shift_error_map, shift_layers, shift_scene

# helpers


def _square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _textured_scene(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A red square on a random-noise background; returns (image, true mask)."""
    rng = np.random.default_rng(0)
    image = (0.2 + 0.4 * rng.random((size, size, 3))).astype(np.float32)
    mask = _square(size, 14, 14, 16)
    image[mask] = (0.9, 0.1, 0.1)
    return image, mask


# morphology


def test_disc_is_the_euclidean_disc():
    assert disc(0).tolist() == [[1]]
    assert disc(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disc(2).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    # k = 3: 7 + 2*5 + 2*5 + 2 = 29 offsets with dy² + dx² <= 9
    assert disc(3).sum() == 29


def test_dilate_single_pixel_gives_the_disc():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    for k in (1, 2, 3):
        grown = dilate_mask(mask, k)
        assert grown.dtype == bool
        assert grown.sum() == disc(k).sum()
        assert np.array_equal(grown[4 - k : 5 + k, 4 - k : 5 + k], disc(k).astype(bool))


def test_dilate_does_not_grow_from_outside_the_image():
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 0] = True
    assert np.argwhere(dilate_mask(mask, 1)).tolist() == [[0, 0], [0, 1], [1, 0]]


def test_erode_square():
    mask = _square(9, 2, 2, 5)  # rows / cols 2..6
    assert np.array_equal(erode_mask(mask, 1), _square(9, 3, 3, 3))
    # k = 2: only the centre keeps all of its distance-2 neighbours inside
    assert np.argwhere(erode_mask(mask, 2)).tolist() == [[4, 4]]
    assert not erode_mask(mask, 3).any()


def test_erode_treats_outside_as_object():
    assert erode_mask(np.ones((5, 5), dtype=bool), 2).all()
    half = np.zeros((6, 6), dtype=bool)
    half[:, :3] = True
    eroded = erode_mask(half, 1)
    assert eroded[:, :2].all() and not eroded[:, 2:].any()  # shrinks on the inner side only


def test_zero_k_is_identity_and_input_is_not_modified():
    mask = _square(8, 2, 2, 3)
    before = mask.copy()
    for out in (dilate_mask(mask, 0), erode_mask(mask, 0), perturb_mask(mask, mode="exact")):
        assert np.array_equal(out, mask) and out is not mask
    assert np.array_equal(mask, before)


def test_float_and_int_masks_are_accepted():
    mask = _square(8, 2, 2, 3)
    assert np.array_equal(dilate_mask(mask.astype(np.float32) * 0.9, 1), dilate_mask(mask, 1))
    assert np.array_equal(dilate_mask(mask.astype(np.uint8), 1), dilate_mask(mask, 1))


def test_perturb_mask_modes():
    mask = _square(12, 3, 3, 6)
    assert perturb_mask(mask, mode="dilate", k=2).sum() > mask.sum()
    assert np.array_equal(perturb_mask(mask, mode="dilate", k=2), dilate_mask(mask, 2))
    assert np.array_equal(perturb_mask(mask, mode="erode", k=1), _square(12, 4, 4, 4))
    with pytest.raises(ValueError, match="mode"):
        perturb_mask(mask, mode="shrink", k=1)
    with pytest.raises(ValueError, match="non-negative"):
        dilate_mask(mask, -1)
    with pytest.raises(ValueError, match="shape"):
        dilate_mask(np.zeros((2, 3, 4), dtype=bool), 1)


# inpainting


def test_inpaint_fills_a_flat_region_with_its_colour_and_keeps_the_rest():
    image = np.full((32, 32, 3), 0.2, dtype=np.float32)
    image[:, 16:] = 0.8
    hole = _square(32, 10, 3, 6)  # inside the 0.2 half, far from the 0.8 half
    image[hole] = (1.0, 0.0, 1.0)
    filled = inpaint_telea(image, hole, radius=3)
    assert filled.dtype == np.float32 and filled.shape == image.shape
    assert np.abs(filled[hole] - 0.2).max() <= 3 / 255  # Telea rounds in 8 bits
    assert np.array_equal(filled[~hole], image[~hole])  # outside the hole: bit for bit


def test_inpaint_empty_mask_and_bad_shapes():
    image = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    assert np.array_equal(inpaint_telea(image, np.zeros((8, 8), dtype=bool)), image)
    with pytest.raises(ValueError, match="differ"):
        inpaint_telea(image, np.zeros((8, 9), dtype=bool))
    with pytest.raises(ValueError, match="H, W, 3"):
        inpaint_telea(image[..., 0], np.zeros((8, 8), dtype=bool))


# shift_scene


def test_shift_scene_hand_computed_composites():
    image = np.zeros((10, 10, 3), dtype=np.float32)
    image[..., 2] = 0.5  # blue background
    mask = _square(10, 2, 2, 3)  # rows / cols 2..4
    image[mask] = (1.0, 0.0, 0.0)
    r = shift_scene(image, mask, dy=1, dx=3)
    assert np.array_equal(r.shifted_mask, _square(10, 3, 5, 3))
    assert np.array_equal(r.union, mask | r.shifted_mask)
    # the object moved one row down and three columns right
    assert np.allclose(r.composite[3:6, 5:8], (1.0, 0.0, 0.0))
    # the old place that the object left is the inpainted flat background
    assert np.allclose(r.composite[2, 2:5], (0.0, 0.0, 0.5), atol=1 / 255)
    # the copy-paste keeps the original object where it is not covered
    assert np.allclose(r.copy_paste[2, 2:5], (1.0, 0.0, 0.0))
    assert np.allclose(r.copy_paste[3:6, 5:8], (1.0, 0.0, 0.0))
    # the unshifted composite is the input image
    assert np.allclose(r.composite_unshifted, image, atol=1 / 255)


def test_difference_vanishes_outside_the_union_for_any_mask():
    image, mask = _textured_scene()
    for mode in ("exact", "dilate", "erode"):
        r = shift_scene(image, perturb_mask(mask, mode=mode, k=3), dy=-2, dx=5)
        assert np.array_equal(r.background[~r.union], image[~r.union])
        assert r.difference[~r.union].max() == 0.0
        assert r.difference[r.union].max() > 0.1


def test_zero_shift_changes_nothing():
    image, mask = _textured_scene()
    r = shift_scene(image, mask, dy=0, dx=0)
    assert r.difference.max() == 0.0
    assert np.array_equal(r.copy_paste, image)


def test_shift_error_is_zero_for_the_exact_mask_only():
    image, mask = _textured_scene()
    errors = {
        mode: shift_error(shift_scene(image, perturb_mask(mask, mode=mode, k=3), dy=3, dx=6), mask)
        for mode in ("exact", "dilate", "erode")
    }
    assert errors["exact"] == 0.0
    assert errors["dilate"] > 0.05  # a ring of noise dragged onto other noise
    assert errors["erode"] > 0.05  # a red rim missing from the moved square


def test_the_error_map_separates_right_and_wrong_masks_where_the_difference_does_not():
    image, mask = _textured_scene()
    exact, eroded = (shift_scene(image, perturb_mask(mask, mode=mode, k=3), dy=3, dx=6) for mode in ("exact", "erode"))
    exact_map, region = shift_error_map(exact, mask)
    eroded_map, _ = shift_error_map(eroded, mask)
    assert exact_map.shape == mask.shape and exact_map.max() == 0.0 and region.any()
    assert eroded_map.max() > 0.3 and np.isclose(eroded_map[region].mean(), shift_error(eroded, mask))
    assert exact.difference.max() > 0.3 and eroded.difference.max() > 0.3  # |x̂_δ − x̂_0| is large for both


def test_shift_scene_rejects_bad_input():
    image, mask = _textured_scene()
    with pytest.raises(ValueError, match="H, W, 3"):
        shift_scene(np.concatenate([image, np.ones_like(image[..., :1])], -1), mask, dy=1, dx=1)  # RGBA
    with pytest.raises(ValueError, match="H, W, 3"):
        shift_scene(image[..., 0], mask, dy=1, dx=1)  # grayscale
    with pytest.raises(ValueError, match="whole pixels"):
        shift_scene(image, mask, dy=0.5, dx=1)
    with pytest.raises(ValueError, match="differ"):
        shift_scene(image, mask[:-1], dy=1, dx=1)


def test_shift_layers_moves_the_object_over_the_true_background():
    background = np.zeros((8, 8, 3), dtype=np.float32)
    background[:, 4:] = 0.5
    foreground = np.ones((8, 8, 3), dtype=np.float32)
    mask = _square(8, 1, 1, 2)  # rows / cols 1..2
    moved = shift_layers(background=background, foreground=foreground, mask=mask, dy=2, dx=4)
    expected = background.copy()
    expected[3:5, 5:7] = 1.0
    assert np.array_equal(moved, expected)


def test_exact_mask_composite_matches_the_truly_moved_scene_where_it_is_known():
    image, mask = _textured_scene()
    rng = np.random.default_rng(2)
    background = image.copy()
    background[mask] = rng.random((int(mask.sum()), 3))  # the "true" background behind the object
    truth = shift_layers(background=background, foreground=image, mask=mask, dy=2, dx=7)
    r = shift_scene(image, mask, dy=2, dx=7)
    known = r.shifted_mask | ~mask
    assert np.array_equal(r.composite[known], truth[known])


def test_an_empty_mask_moves_nothing():
    image, mask = _textured_scene()
    r = shift_scene(image, erode_mask(mask, 9), dy=3, dx=3)  # a 16 px square eroded by 9 px is gone
    assert not r.mask.any()
    assert np.array_equal(r.composite, image) and np.array_equal(r.copy_paste, image)
    assert r.difference.max() == 0.0
    assert shift_error(r, mask) > 0.1  # the whole moved object is missing


def test_integer_images_are_scaled_to_unit_range():
    image, mask = _textured_scene()
    image_u8 = np.round(image * 255).astype(np.uint8)
    from_u8 = shift_scene(image_u8, mask, dy=2, dx=3)
    from_float = shift_scene(image_u8.astype(np.float32) / 255, mask, dy=2, dx=3)
    assert from_u8.composite.dtype == np.float32 and from_u8.composite.max() <= 1.0
    assert np.allclose(from_u8.composite, from_float.composite, atol=1e-6)
    deep = np.full((4, 4, 3), 65535, np.uint16)
    assert np.array_equal(inpaint_telea(deep, np.zeros((4, 4), bool)), np.ones((4, 4, 3), np.float32))
