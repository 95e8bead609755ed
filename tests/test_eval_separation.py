"""The separation figures of issue 16: a degenerate layered GAN cannot pass them."""

from types import SimpleNamespace

import numpy as np
import torch

from workbench.eval.separation import (axis_correlation, generated_separation, mask_centroids, mask_diversity,
                                       true_scene_reference)


def disc(n: int, size: int = 16, *, radius: float = 3.0, centres=None) -> torch.Tensor:
    """Binary discs (n, 1, size, size) at the given (y, x) pixel centres (default: all at the middle)."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centres = centres if centres is not None else [(size / 2, size / 2)] * n
    return torch.stack([((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2)[None] for cy, cx in centres])


def test_mask_diversity_is_one_for_a_fixed_blob_and_low_for_moving_ones():
    assert mask_diversity(disc(5)) == 1.0
    spread = disc(4, centres=[(4, 4), (4, 12), (12, 4), (12, 12)])
    assert mask_diversity(spread) == 0.0  # disjoint discs
    assert mask_diversity(torch.zeros(3, 1, 8, 8, dtype=torch.bool)) == 1.0  # empty masks are identical


def test_centroids_and_correlation():
    masks = disc(2, centres=[(4, 4), (10, 12)])
    c = mask_centroids(masks).numpy()
    np.testing.assert_allclose(c, [[4.5 / 16, 4.5 / 16], [10.5 / 16, 12.5 / 16]], atol=1e-6)
    assert np.isnan(mask_centroids(torch.zeros(1, 1, 4, 4)).numpy()).all()
    a = np.random.default_rng(0).random((50, 2))
    assert abs(axis_correlation(a, a) - 1.0) < 1e-12
    assert axis_correlation(np.full((50, 2), 0.5), a) == 0.0  # a constant follows nothing


class FakeGAN:
    """A layered 'generator' with chosen behaviour, to check what the figures say about it."""

    config = SimpleNamespace(max_shift=0.125)  # δ = 2 px at 16 px

    def __init__(self, *, follow: bool, object_in_background: bool, size: int = 16, edge: bool = False):
        self.follow, self.object_in_background, self.size, self.edge = follow, object_in_background, size, edge

    def generate(self, n, *, seed=None, **_):
        g = torch.Generator().manual_seed(seed)
        centres = (torch.rand(n, 2, generator=g) * (self.size - 8) + 4).tolist()
        obj = disc(n, self.size, centres=centres).float()  # where the object is drawn in the composite
        mask = obj if self.follow else disc(n, self.size).float()  # or a fixed centred blob
        if self.edge:  # or a fixed strip glued to the lower edge (rows 12-15 of 16: a quarter of the frame)
            mask = torch.zeros_like(mask)
            mask[..., -4:, :] = 1
        background = torch.full((n, 3, self.size, self.size), 0.2)
        if self.object_in_background:
            background = background + 0.6 * obj
        composite = mask * 0.8 + (1 - mask) * background
        if not self.follow:
            composite = torch.maximum(composite, 0.8 * obj)  # the object shows although the mask misses it
        return {"composite": composite, "background": background, "mask": mask}


class ThresholdOracle:
    device = torch.device("cpu")

    def predict(self, images):
        return (images.mean(1, keepdim=True) > 0.5).float()


def test_a_fixed_blob_with_the_object_in_the_background_fails_every_figure():
    good = generated_separation(FakeGAN(follow=True, object_in_background=False), ThresholdOracle(), n=40,
                                batch_size=20, diversity_n=40, progress=False)
    bad = generated_separation(FakeGAN(follow=False, object_in_background=True), ThresholdOracle(), n=40,
                               batch_size=20, diversity_n=40, progress=False)
    assert good["detected"] == 1.0 and good["gen_mask_iou"] > 0.99 and good["centroid_corr"] > 0.99
    assert good["bg_object_area"] == 0.0 and good["mask_diversity"] < 0.3
    assert bad["mask_diversity"] == 1.0 and bad["centroid_corr"] == 0.0 and bad["bg_object_area"] > 0.05


def test_mask_shown_and_mask_edge_find_a_mask_glued_to_the_edge():
    """A shift past the edge hides part of an edge-glued mask: the size loss on G_m(z) counts what is not shown."""
    kw = dict(n=40, batch_size=20, diversity_n=40, progress=False)
    centred = generated_separation(FakeGAN(follow=False, object_in_background=True), ThresholdOracle(), **kw)
    glued = generated_separation(FakeGAN(follow=False, object_in_background=True, edge=True), ThresholdOracle(), **kw)
    assert centred["mask_shown"] == 1.0 and centred["mask_edge"] == 0.0  # radius 3 + δ 2 stays inside 16 px
    # the 60 edge pixels: the lower row (16) and rows 12-14 of each side column (3 + 3)
    assert glued["mask_area"] == 0.25 and abs(glued["mask_edge"] - (16 + 2 * 3) / 60) < 1e-6
    # a vertical shift dy ∈ {-2 … 2}, uniform, leaves 4 - max(dy, 0) of the 4 rows: mean 3.4 of 4, i.e. 0.85
    assert 0.7 < glued["mask_shown"] < 0.95


def test_true_scene_reference_on_movable_scenes():
    ref = true_scene_reference(ThresholdOracle(), preset="movable", resolution=32, n=20, n_backgrounds=10)
    assert 0.05 <= ref["true_area"] <= 0.3
    assert 0.0 <= ref["true_mask_diversity"] < 0.5  # objects anywhere: true masks overlap little
    assert 0.0 <= ref["bg_floor"] <= 1.0


def test_ranking_auc():
    from workbench.eval.separation import ranking_auc

    assert ranking_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert ranking_auc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 0.0
    assert ranking_auc(np.ones(4), np.ones(3)) == 0.5  # ties: a blind critic


def test_ghost_composites_leave_or_remove_the_object():
    from workbench.eval.separation import ghost_composites

    out = ghost_composites(preset="anywhere", resolution=32, max_shift=0.125, n=6)
    assert set(out) == {"real", "moved", "duplicate", "wrong_mask"}
    from workbench.data.synthetic import render_layers

    for i in range(6):
        layers = render_layers(i, preset="anywhere", size=32, split="test")
        m = torch.from_numpy(layers.mask)
        shifted = out["moved"][i].permute(1, 2, 0).numpy()
        # where the object was and the moved one does not land, `moved` shows the empty background,
        # `duplicate` still the object (the ghost)
        left = m.numpy() & (np.abs(shifted - layers.background).max(-1) < 1e-6)
        assert left.sum() > 0
        np.testing.assert_allclose(shifted[left], layers.background[left], atol=1e-6)
        dup = out["duplicate"][i].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(dup[left], layers.image[left], atol=1e-6)
        assert not np.allclose(out["wrong_mask"][i], out["real"][i])


def test_ghost_test_of_an_untrained_perturbgan():
    from workbench.eval.separation import ghost_test
    from workbench.methods.perturbgan import PRESETS, PerturbGAN

    torch.manual_seed(0)
    gan = PerturbGAN(PRESETS["smoke"])
    out = ghost_test(gan, preset="anywhere", n=8)
    assert set(out) == {"ghost_auc_moved", "ghost_auc_duplicate", "ghost_auc_wrong_mask", "fake_auc"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert gan.module("discriminator").training  # the mode is put back


def test_ghost_test_reads_the_layered_gan_global_logit():
    from workbench.eval.separation import ghost_test
    from workbench.methods.layered import PRESETS, LayeredGAN

    torch.manual_seed(0)
    gan = LayeredGAN(PRESETS["smoke"])
    assert gan.critic(torch.zeros(3, 3, 16, 16)).shape[0] == 3
    out = ghost_test(gan, preset="anywhere", n=6)
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_ghost_capacity_script_trains_a_discriminator_on_ghosts():
    """scripts/ghost_capacity.py: the supervised rung runs and reports an AUC per kind of composite."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "ghost_capacity.py"
    spec = importlib.util.spec_from_file_location("ghost_capacity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    rows = module.main(["--resolution", "16", "--steps", "30", "--every", "30", "--n-train", "24", "--n-test", "12",
                        "--width", "8"])
    assert [r["step"] for r in rows] == [0, 30]
    assert all(0.0 <= r[k] <= 1.0 for r in rows for k in ("auc_duplicate", "auc_wrong_mask", "auc_moved"))
