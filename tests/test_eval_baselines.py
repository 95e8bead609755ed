"""Baselines on a synthetic scene: a bright textured disc on a dark, weakly textured background."""

import numpy as np
import pytest
import torch

from workbench.eval import baselines as B
from workbench.eval.metrics import iou

# helpers


def disc_scene(*, h=96, w=128, radius=0.3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy + 0.5 - h / 2) ** 2 + (xx + 0.5 - w / 2) ** 2 <= (radius * min(h, w)) ** 2  # (H, W)
    image = 0.15 + 0.1 * rng.random((h, w, 3))  # dark, faint noise
    texture = 0.4 + 0.6 * rng.random((h, w, 1))  # bright, strong noise
    image[disc] = (texture * np.array([1.0, 0.9, 0.5]))[disc]
    return image.astype(np.float32), disc


class ListDataset:
    """A map-style dataset of dict items, as the data package returns them."""

    def __init__(self, scenes):
        self.items = [
            {"image": torch.from_numpy(im).permute(2, 0, 1), "mask": torch.from_numpy(m)[None].float(), "name": f"s{i}"}
            for i, (im, m) in enumerate(scenes)
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


# tests


@pytest.mark.parametrize("name", list(B.BASELINES))
def test_each_baseline_returns_a_float_mask(name):
    image, _ = disc_scene()
    out = B.BASELINES[name](image)
    assert out.shape == image.shape[:2] and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


def test_full_mask_iou_is_the_object_fraction():
    image, disc = disc_scene()
    assert iou(B.full_mask(image), disc) == pytest.approx(disc.mean())


def test_center_prior_is_a_centred_ellipse():
    image = np.zeros((90, 120, 3), np.float32)
    prior = B.center_prior(image)
    assert prior.mean() == pytest.approx(np.pi / 9, abs=0.01)  # axes 2/3 of the sides
    assert prior[45, 60] == 1 and prior[0, 0] == 0 and prior[45, 0] == 0
    assert np.array_equal(prior, prior[::-1]) and np.array_equal(prior, prior[:, ::-1])
    assert prior[45, 21] == 1 and prior[45, 19] == 0  # horizontal semi-axis 40 px around x = 60


@pytest.mark.parametrize("seed", [0, 1])
def test_grabcut_and_spectral_residual_find_the_disc(seed):
    image, disc = disc_scene(seed=seed)
    assert iou(B.grabcut(image), disc) > 0.9
    assert iou(B.spectral_residual(image), disc) > 0.5
    assert iou(B.center_prior(image), disc) < iou(B.grabcut(image), disc)


def test_grabcut_is_deterministic_and_checks_its_input():
    image, _ = disc_scene(seed=2)
    assert np.array_equal(B.grabcut(image), B.grabcut(image))
    with pytest.raises(ValueError, match="margin"):
        B.grabcut(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        B.full_mask(np.zeros((4, 4), np.float32))


def test_spectral_residual_saliency_map():
    image, disc = disc_scene()
    sal = B.spectral_residual_saliency(image)
    assert sal.shape == disc.shape and sal.dtype == np.float32
    assert sal.min() == 0 and sal.max() == pytest.approx(1)
    assert sal[disc].mean() > 3 * sal[~disc].mean()
    assert not B.spectral_residual_saliency(np.full((32, 32, 3), 0.5, np.float32)).any()
    assert not B.spectral_residual(np.full((32, 32, 3), 0.5, np.float32)).any()


def test_run_baselines_table():
    scenes = [disc_scene(seed=s, radius=r) for s, r in [(0, 0.3), (1, 0.25), (2, 0.2)]]
    table = B.run_baselines(ListDataset(scenes), progress=False)
    assert list(table.columns) == [
        "baseline", "iou", "accuracy", "f_beta", "max_f_beta", "max_f_beta_per_image", "mae", "corloc", "n", "seconds_per_image",
    ]
    assert list(table["baseline"]) == list(B.BASELINES) and (table["n"] == 3).all()
    rows = table.set_index("baseline")
    assert rows.loc["full", "iou"] == pytest.approx(np.mean([m.mean() for _, m in scenes]))
    assert rows.loc["grabcut", "iou"] > 0.9 and rows.loc["grabcut", "corloc"] == 1.0
    assert (table["seconds_per_image"] >= 0).all()
    two = B.run_baselines(ListDataset(scenes), n=2, names=["grabcut"], progress=False)
    assert len(two) == 1 and two["n"][0] == 2
    with pytest.raises(ValueError, match="unknown baselines"):
        B.run_baselines(ListDataset(scenes), names=["nope"], progress=False)
    no_mask = ListDataset(scenes[:1])
    del no_mask.items[0]["mask"]
    with pytest.raises(ValueError, match="no 'mask'"):
        B.run_baselines(no_mask, progress=False)
