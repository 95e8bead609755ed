"""The chapter 3 evaluations: generated masks against an oracle (table 3.1) with stand-in oracles whose
answers are known, and the real-image table (3.3) on a few synthetic scenes."""

import math

import numpy as np
import pytest
import torch

from workbench.data import build_dataset
from workbench.eval.perturbgan import generated_composites, generated_mask_scores, real_image_scores
from workbench.methods.perturbgan import PRESETS as GAN_PRESETS
from workbench.methods.perturbgan import PerturbGAN
from workbench.methods.perturbgan_encoder import PRESETS as ENCODER_PRESETS
from workbench.methods.perturbgan_encoder import PerturbEncoder

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
R = GAN_PRESETS["smoke"].resolution

# helpers


class Recorder:
    """A PerturbGAN that remembers every generate() call and its outputs."""

    def __init__(self, gan):
        self.gan, self.calls = gan, []

    def generate(self, n, **options):
        out = self.gan.generate(n, **options)
        self.calls.append((n, options, out))
        return out

    def masks(self):
        return torch.cat([out["mask"] for _, _, out in self.calls])  # (N, 1, R, R)


class OwnMaskOracle:
    """Answers with the generator's own mask of the composite it is shown."""

    def __init__(self, recorder):
        self.recorder = recorder

    def predict(self, composites):
        _, _, out = self.recorder.calls[-1]
        assert torch.equal(composites, out["composite"])  # it is shown the generated composites
        return out["mask"]


class ConstantOracle:
    def __init__(self, value):
        self.value = value

    def predict(self, composites):
        return torch.full_like(composites[:, :1], self.value)  # (B, 1, H, W)


@pytest.fixture(scope="module")
def gan():
    torch.manual_seed(0)
    return PerturbGAN(GAN_PRESETS["smoke"]).eval()


def scores(gan, oracle_factory, **options):
    recorder = Recorder(gan)
    result = generated_mask_scores(recorder, oracle_factory(recorder), n=10, batch_size=4, seed=3, progress=False,
                                   **options)
    return result, recorder


# table 3.1


def test_the_generators_own_mask_scores_one(gan):
    result, recorder = scores(gan, OwnMaskOracle)
    assert [n for n, _, _ in recorder.calls] == [4, 4, 2]
    assert all(options.get("offset") is None for _, options, _ in recorder.calls)  # unshifted composites (eq. 3.1)
    area = (recorder.masks() >= 0.5).flatten(1).float().mean(1).numpy()  # (10,)
    assert 0 < area.min() and area.max() < 1  # the test means something: neither empty nor full masks
    assert result["n"] == 10 and result["detected"] == int((area >= 0.01).sum()) == 10
    assert result["gen_mask_iou"] == pytest.approx(1.0) and result["gen_mask_iou_all"] == pytest.approx(1.0)
    assert result["full_mask_ref_iou"] == pytest.approx(area.mean(), abs=1e-6)  # a full mask's IoU is the area
    assert result["gen_mask_area"] == pytest.approx(area.mean(), abs=1e-6)


def test_an_all_ones_oracle_scores_the_mask_area(gan):
    result, recorder = scores(gan, lambda recorder: ConstantOracle(1.0))
    _, same = scores(gan, OwnMaskOracle)
    assert torch.equal(recorder.masks(), same.masks())  # the same seeds give the same scenes
    area = (recorder.masks() >= 0.5).flatten(1).double().mean(1).numpy()
    assert result["detected"] == 10
    assert result["gen_mask_iou"] == pytest.approx(area.mean(), abs=1e-6)  # |m ∩ 1| / |m ∪ 1| = |m| / |Ω|
    assert result["gen_mask_iou_all"] == pytest.approx(area.mean(), abs=1e-6)
    assert result["full_mask_ref_iou"] == pytest.approx(1.0)
    other_seed = generated_mask_scores(Recorder(gan), ConstantOracle(1.0), n=10, batch_size=4, seed=4, progress=False)
    assert other_seed["gen_mask_iou"] != pytest.approx(result["gen_mask_iou"], abs=1e-9)  # the seed picks the codes


def test_an_oracle_that_sees_nothing_detects_nothing(gan):
    result, recorder = scores(gan, lambda recorder: ConstantOracle(0.0))
    assert result["detected"] == 0 and result["n"] == 10
    assert math.isnan(result["gen_mask_iou"]) and math.isnan(result["full_mask_ref_iou"])
    empty = ((recorder.masks() >= 0.5).flatten(1).sum(1) == 0).double().mean().item()
    assert result["gen_mask_iou_all"] == pytest.approx(empty)  # only empty generated masks agree with it
    faint, _ = scores(gan, lambda recorder: ConstantOracle(0.6), min_area=1.01)  # detects nothing: area 1 < min_area
    assert faint["detected"] == 0 and math.isnan(faint["gen_mask_iou"])


def test_generated_composites_are_the_unshifted_composites(gan):
    recorder = Recorder(gan)
    composites = generated_composites(recorder, 5, seed=2, batch_size=2)
    assert composites.shape == (5, 3, R, R) and composites.min() >= 0 and composites.max() <= 1
    assert [n for n, _, _ in recorder.calls] == [2, 2, 1]
    assert all(options.get("offset") is None for _, options, _ in recorder.calls)
    assert torch.equal(composites, torch.cat([out["composite"] for _, _, out in recorder.calls]))
    assert torch.equal(composites, generated_composites(gan, 5, seed=2, batch_size=2))
    assert not torch.equal(composites, generated_composites(gan, 5, seed=3, batch_size=2))


# table 3.3


@pytest.fixture(scope="module")
def encoder(gan):
    torch.manual_seed(0)
    return PerturbEncoder(ENCODER_PRESETS["smoke"], gan=gan)


@pytest.fixture(scope="module")
def scenes():
    return build_dataset("synthetic:easy", size=R, split="test", n=3, seed=0)


def test_real_image_scores_rows_and_columns(encoder, scenes):
    table = real_image_scores(encoder, scenes, n=10, progress=False)
    assert list(table.columns) == ["method", "iou", "n"]
    assert list(table["method"]) == ["encoder", "grabcut", "full"]
    assert (table["n"] == 3).all()  # n is capped by the dataset
    assert table["iou"].between(0, 1).all()
    images = torch.stack([scenes[i]["image"] for i in range(3)])
    truth = torch.stack([scenes[i]["mask"] for i in range(3)]) > 0.5  # (3, 1, R, R)
    pred = encoder.segment(images) >= 0.5
    inter, union = (pred & truth).flatten(1).sum(1).double(), (pred | truth).flatten(1).sum(1).double()
    expected = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean().item()
    row = dict(zip(table["method"], table["iou"]))
    assert row["encoder"] == pytest.approx(expected, abs=1e-6)
    assert row["full"] == pytest.approx(truth.flatten(1).double().mean(1).mean().item(), abs=1e-6)


def test_real_image_scores_with_chunks_and_no_baselines(encoder, scenes):
    table = real_image_scores(encoder, scenes, n=2, chunks=True, baselines=(), progress=False)
    assert list(table["method"]) == ["encoder (chunks)"] and table["n"].tolist() == [2]
    assert 0 <= table["iou"].iloc[0] <= 1


def test_real_image_scores_need_masks(encoder):
    class NoMasks(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": torch.rand(3, R, R), "name": str(i)}

    with pytest.raises(ValueError, match="ground-truth masks"):
        real_image_scores(encoder, NoMasks(), progress=False)
    assert np.isfinite(real_image_scores(encoder, build_dataset("synthetic:easy", size=R, n=1), baselines=(),
                                         progress=False)["iou"]).all()
