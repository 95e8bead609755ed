"""Image-quality metrics: density/coverage against their definitions, FID/KID/IS through torchmetrics
with a random-weight Inception loaded from a local weights folder, and MAE features with their labels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.eval.gan_metrics import (
    INCEPTION_FILE,
    MAEEncoderFeatures,
    build_feature_network,
    check_images,
    density_coverage,
    find_inception_weights,
    image_quality,
    quality_from_features,
)
from workbench.nets.mae import build_mae

# helpers


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Any attempt of torch-fidelity to fetch weights fails the test."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def refuse(*args, **kwargs):
        raise AssertionError("tests must never download")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", refuse)


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    """Weights folder and torch hub cache point at empty temporary folders unless a test fills them."""
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def save_random_inception(folder: Path) -> Path:
    """A random-weight Inception in torch-fidelity's file format (the plain state dict of
    FeatureExtractorInceptionV3), saved as ``folder/INCEPTION_FILE``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = folder / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch:  # build the skeleton only; its constructor insists on loading weights
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, **kw: None)
        skeleton = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    for module in skeleton.modules():  # keep activations at a useful scale through the random network
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = folder / INCEPTION_FILE
    torch.save(skeleton.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    return save_random_inception(tmp_path_factory.mktemp("inception"))


def blobs(n: int, *, seed: int, size: int = 32) -> torch.Tensor:
    """(n, 3, size, size) smooth colour images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def stripes(n: int, *, seed: int, size: int = 32) -> torch.Tensor:
    """(n, 3, size, size) dark high-frequency stripes: a different distribution from :func:`blobs`."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(n, 3, 1, 1, generator=g) * 6.28
    x = torch.arange(size).float().view(1, 1, 1, size)
    return (0.2 + 0.2 * torch.sin(2.0 * x + phase)).expand(n, 3, size, size).contiguous()


# density and coverage


def reference_density_coverage(real, fake, k):
    """The published definitions, one sample at a time."""
    def dist(a, b):
        return float(((a - b) ** 2).sum().sqrt())

    radii = [sorted(dist(x, y) for j, y in enumerate(real) if j != i)[k - 1] for i, x in enumerate(real)]
    inside = [[dist(y, x) < r for x, r in zip(real, radii)] for y in fake]
    density = sum(map(sum, inside)) / (k * len(fake))
    coverage = sum(any(row[i] for row in inside) for i in range(len(real))) / len(real)
    return density, coverage


def test_density_coverage_hand_computed():
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [5.5], [20.0]])
    # k=1: radii 1, 1, 2, 4; 0.5 lies in the balls of 0 and 1, 5.5 in that of 7, 20 in none
    assert density_coverage(real, fake, k=1) == {"density": pytest.approx(1.0), "coverage": pytest.approx(0.75)}
    # k=2: radii 3, 2, 3, 6; 0.5 in the balls of 0, 1, 3; 5.5 in those of 3 and 7; every real ball is hit
    assert density_coverage(real, fake, k=2) == {"density": pytest.approx(5 / 6), "coverage": pytest.approx(1.0)}


def test_density_coverage_matches_definition_and_limits():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(40, 3, generator=g), 0.7 * torch.randn(30, 3, generator=g) + 0.3
    got = density_coverage(real, fake, k=5, chunk=7)  # chunking must not change anything
    want = reference_density_coverage(real, fake, 5)
    assert (got["density"], got["coverage"]) == (pytest.approx(want[0]), pytest.approx(want[1]))
    assert 0 < got["coverage"] < 1
    same = density_coverage(real, real)  # each real point sits in its own ball and in k-1 others' balls
    assert same == {"density": pytest.approx(1.0), "coverage": pytest.approx(1.0)}
    far = density_coverage(real, fake + 100.0)
    assert far == {"density": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="more than 5 real samples"):
        density_coverage(real[:5], fake)


# Inception


@pytest.fixture(scope="module")
def inception(inception_file):
    """The Inception feature network, built once through the real loader from a weights folder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_WEIGHTS", str(inception_file.parent))
        patch.setenv("TORCH_HOME", str(inception_file.parent / "no-torch-home"))
        network = build_feature_network("auto")
    yield network
    torch.set_num_threads(threads)


def test_inception_found_in_weights_folder_and_hub_cache(inception_file, tmp_path, monkeypatch):
    assert find_inception_weights() is None
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / INCEPTION_FILE).symlink_to(inception_file)
    assert find_inception_weights() == hub / INCEPTION_FILE
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(inception_file.parent))  # the weights folder comes first
    assert find_inception_weights() == inception_file


def test_inception_metrics_agree_with_torchmetrics(inception, inception_file):
    """FID through the pluggable module equals torchmetrics' built-in Inception FID with the same weights file.

    (FID of a set with itself is checked with the MAE network: a 2048-d FID costs seconds on a CPU.)"""
    from torchmetrics.image.fid import FrechetInceptionDistance

    assert inception.kind == "inception" and inception.label("FID") == "FID" and inception.has_logits
    real, fake = blobs(6, seed=1), stripes(6, seed=2)
    out = image_quality(real, [fake[:4], fake[4:]], network=inception, kid_subset_size=4, batch_size=3)
    assert out["kind"] == "inception" and (out["n_real"], out["n_fake"]) == (6, 6)
    assert out["fid_label"] == "FID" and out["kid_label"] == "KID" and "is_note" not in out
    assert out["fid"] > 0 and out["kid_mean"] > 0 and out["kid_std"] >= 0
    assert 1.0 <= out["is_mean"] <= 1008 and out["is_std"] >= 0
    assert 0 <= out["coverage"] < 1 and out["density"] >= 0

    builtin = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=str(inception_file))
    builtin.update(real, real=True)
    builtin.update(fake, real=False)
    assert out["fid"] == pytest.approx(float(builtin.compute()), rel=1e-3)


def test_bad_inception_files_are_refused(tmp_path, monkeypatch):
    from workbench.nets.weights import CheckpointError

    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"fc.weight": torch.zeros(3, 3)}, folder / INCEPTION_FILE)
    with pytest.raises(CheckpointError, match="missing keys"):  # named by load_state_dict_strict
        build_feature_network("inception")
    torch.save({"fc.weight": nn.Linear(2, 2)}, folder / INCEPTION_FILE)  # a pickled module, not plain tensors
    with pytest.raises(CheckpointError):
        build_feature_network("inception")


def test_missing_inception_names_the_file_and_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        build_feature_network("auto")
    message = str(error.value)
    assert INCEPTION_FILE in message and str(tmp_path / "weights") in message and "train mae" in message
    mae = build_mae("mae_tiny", img_size=32)
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILE):
        build_feature_network("inception", mae=mae)
    with pytest.raises(FileNotFoundError, match="my-inception.pth"):  # a named file never falls back to the MAE
        build_feature_network("auto", inception_weights=tmp_path / "my-inception.pth", mae=mae)


# MAE features


@pytest.fixture
def tiny_mae():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return build_mae("mae_tiny", img_size=32)


def test_mae_features_are_labelled_and_have_no_inception_score(tiny_mae):
    network = build_feature_network("auto", mae=tiny_mae)  # no Inception file: falls back to the MAE
    assert network.kind.startswith("mae-mean:") and network.kind != "inception"
    assert network.label("FID") == "FID (MAE features)" and not network.has_logits
    real, fake = blobs(12, seed=5, size=48), stripes(12, seed=6, size=48)  # resized to the MAE's 32 px
    out = image_quality(real, fake, network=network, kid_subset_size=8)
    assert out["kind"] == network.kind and out["fid_label"] == "FID (MAE features)"
    assert "is_mean" not in out and "not available" in out["is_note"]
    same = image_quality(real, real, network=network, kid_subset_size=8, inception_score=False)
    assert abs(same["fid"]) < 1e-6 * out["fid"] and abs(same["kid_mean"]) < 0.1 * out["kid_mean"]
    assert same["density"] == pytest.approx(1.0) and same["coverage"] == 1.0 and out["coverage"] < 1.0
    with pytest.raises(ValueError, match="class probabilities"):
        image_quality(real, fake, network=network, inception_score=True)


@pytest.mark.filterwarnings("ignore:.*will save all extracted features")
def test_mae_pooling_and_direct_torchmetrics_use(tiny_mae):
    from torchmetrics.image.kid import KernelInceptionDistance

    mean_net = build_feature_network("mae", mae=tiny_mae, mae_name="tiny")
    cls_net = build_feature_network("mae", mae=tiny_mae, mae_pool="cls", mae_name="tiny")
    assert (mean_net.kind, cls_net.kind) == ("mae-mean:tiny", "mae-cls:tiny")
    images = blobs(4, seed=7)
    tokens = tiny_mae.encode(tiny_mae.normalize(images))  # (4, 1+16, 192)
    assert torch.allclose(mean_net.module(images), tokens[:, 1:].mean(1), atol=1e-6)
    assert torch.allclose(cls_net.module(images), tokens[:, 0], atol=1e-6)
    assert torch.allclose(mean_net.module((images * 255).round().byte()), mean_net.module(images), atol=1e-2)

    real, fake = blobs(10, seed=8), stripes(10, seed=9)
    kid = KernelInceptionDistance(feature=mean_net.module, subsets=20, subset_size=5)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    torch.manual_seed(0)
    want = kid.compute()[0]
    got = image_quality(real, fake, network=mean_net, kid_subsets=20, kid_subset_size=5)
    assert got["kid_mean"] == pytest.approx(float(want), rel=1e-4)


def test_mae_from_a_train_mae_run(tmp_path):
    from workbench.methods.mae import PRESETS, MAEPretraining
    from workbench.train.checkpoint import write_checkpoint

    torch.manual_seed(0)
    method = MAEPretraining(PRESETS["smoke"])
    run = write_checkpoint(tmp_path / "mae-run" / "checkpoints" / "step-0000000", method=method, state={"step": 0})
    network = build_feature_network("mae", mae_run=run)
    assert network.kind == f"mae-mean:{run}"
    images = blobs(3, seed=10)
    assert torch.allclose(network.module(images), MAEEncoderFeatures(method.mae)(images), atol=1e-6)
    with pytest.raises(ValueError, match="either mae= or mae_run="):
        build_feature_network("mae", mae=method.mae, mae_run=run)
    with pytest.raises(ValueError, match="needs an MAE"):
        build_feature_network("mae")


# input checks


def test_images_are_checked():
    check_images(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        check_images(torch.rand(2, 3, 8, 8) * 2 - 1)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        check_images(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2"):
        quality_from_features(torch.randn(1, 4), torch.randn(5, 4), kind="x")
