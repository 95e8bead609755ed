"""Chapter 4: the conditional layered GAN in the four settings of table 4.1 (joint U-Net segmenters in the
discriminator, eqs. 4.5-4.10; lazy R1; CutMix) and the post-trained segmenter ``layered-post`` (section 4.1.2)."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.methods.base import evaluating
from workbench.methods.layered import PRESETS, SETTINGS, LayeredConfig, LayeredGAN
from workbench.methods.layered_post import PRESETS as POST_PRESETS
from workbench.methods.layered_post import PostSegmenter
from workbench.nets.layered import ConditionalLayeredGenerator
from workbench.nets.stylegan import StyleDiscriminator
from workbench.nets.unet_discriminator import UNetDiscriminator, parameter_count
from workbench.ops.augment import contrast_jitter
from workbench.ops.composite import layered_composite
from workbench.ops.shift import random_offsets, translate
from workbench.train.checkpoint import CheckpointError, load_method
from workbench.train.trainer import Trainer

from train_helpers import size_hinge_input

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SMOKE = PRESETS["smoke"]  # 16 px, batch 4, 4 steps, lazy R1 every 2 steps
R = SMOKE.resolution
CROP = round(1.125 * R)  # the real images' size before the random crop (section 4.2)
NON_SQUARE = (2, 3, 20, 28)  # test images for the segmenters: not the training size, not square

# helpers


def fresh(setting: str, seed: int = 0, **overrides) -> LayeredGAN:
    torch.manual_seed(seed)
    return LayeredGAN(replace(SMOKE, setting=setting, **overrides))


def real_batch(b: int = 4, seed: int = 0) -> dict:
    return {"image": torch.rand(b, 3, CROP, CROP, generator=torch.Generator().manual_seed(seed))}


def sample_images(seed: int = 0) -> torch.Tensor:
    return torch.rand(*NON_SQUARE, generator=torch.Generator().manual_seed(seed))


def train(method, out) -> Trainer:
    trainer = Trainer(method, out_dir=out, progress=False, tensorboard=False)
    trainer.fit()
    return trainer


def expected_discriminator_loss(method: LayeredGAN, batch: dict, seed: int) -> tuple[torch.Tensor, dict]:
    """Eq. (4.6) without R1, + eq. (4.8) without R1 (a, b), + L_seg of eq. (4.7) (a-c), recomputed from the
    same draws as ``discriminator_step`` under ``seed``; also the seg BCE against the *unshifted* mask."""
    c, setting = method.config, method.setting
    torch.manual_seed(seed)
    with torch.no_grad():
        real = method.real_images(batch)
        fake, layers, target = method.fakes(real.shape[0])
        out_real, out_fake = method.discriminator(real), method.discriminator(fake)
    loss = F.softplus(out_fake.logits).mean() + F.softplus(-out_real.logits).mean()
    parts = {}
    if setting.realism:
        parts["decoder"] = F.softplus(out_fake.realism).mean() + F.softplus(-out_real.realism).mean()
        loss = loss + parts["decoder"]
    if setting.segmenter:
        parts["seg"] = F.binary_cross_entropy_with_logits(out_fake.mask, target)
        parts["seg_unshifted"] = F.binary_cross_entropy_with_logits(out_fake.mask, layers.mask)
        loss = loss + c.seg_weight * parts["seg"]
    return loss, parts


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each setting of table 4.1 trained at smoke size through the shared trainer: setting -> (method, trainer, dir)."""
    out = {}
    for setting in SETTINGS:
        folder = tmp_path_factory.mktemp(f"layered-{setting}")
        method = fresh(setting)
        out[setting] = (method, train(method, folder), folder)
    return out


# config and presets


def test_settings_are_table_4_1():
    assert list(SETTINGS) == ["a", "b", "c", "d"]
    assert [(s.realism, s.segmenter, s.cutmix) for s in SETTINGS.values()] == [
        (True, True, False), (True, True, True), (False, True, False), (False, False, False)]


def test_paper_preset_is_section_4_2():
    c = PRESETS["paper"]
    assert (c.resolution, c.batch_size, c.lr, c.betas, c.mixing) == (128, 64, 1e-3, (0.0, 0.99), 0.9)
    assert (c.max_shift, c.size_weight, c.binary_weight, c.r1_weight, c.min_mask) == (0.125, 5.0, 2.0, 0.1, 0.15)
    assert c.setting == "b" and c.steps == 150_000 and c.jitter and c.random_crop
    assert set(PRESETS) == {"paper", "small", "smoke"}
    assert PRESETS["small"].resolution == 32 and SMOKE.steps <= 4


@pytest.mark.parametrize("overrides, match", [
    ({"setting": "e"}, "setting"), ({"setting": "A"}, "setting"), ({"resolution": 48}, "resolution"),
    ({"resolution": 2}, "resolution"), ({"max_shift": 0.5}, "max_shift"), ({"min_mask": 1.5}, "min_mask"),
    ({"cutmix_prob": -0.1}, "cutmix_prob"), ({"mixing": 2.0}, "mixing"), ({"r1_every": 0}, "r1.every"),
    ({"disc_trunk": "unet"}, "disc_trunk"), ({"g_architecture": "resnet"}, "g_architecture"),
    ({"network": "stylegan", "g_architecture": "orig"}, "g_architecture"), ({"network": "biggan"}, "network"),
    ({"size_loss_on": "visible"}, "size_loss_on")])
def test_config_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        replace(SMOKE, **overrides)
    with pytest.raises(ValueError, match=match):
        LayeredConfig(**overrides)


# networks


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_networks_of_each_setting(setting):
    method = fresh(setting)
    s = SETTINGS[setting]
    assert isinstance(method.generator, ConditionalLayeredGenerator)
    d = method.discriminator
    assert isinstance(d, UNetDiscriminator) and (d.realism, d.segmenter) == (s.realism, s.segmenter)
    assert (d.decoder is None) == (setting == "d")
    assert d.architecture == "resnet"  # StyleGAN2's residual discriminator (issue 16)
    standard = parameter_count(StyleDiscriminator(resolution=R, width=SMOKE.width, max_width=SMOKE.max_width,
                                                  architecture="resnet"))
    ratio = parameter_count(d) / standard
    if s.matched:  # (a), (b): about the standard discriminator's size (section 4.2)
        assert abs(ratio - 1) < 0.1, ratio
    elif setting == "c":  # the standard encoder plus a mask decoder
        assert ratio > 1.2
    else:
        assert ratio == 1


@pytest.mark.parametrize("network, trunk, expected", [
    ("stylegan2", "auto", "resnet"), ("stylegan", "auto", "plain"), ("stylegan2", "plain", "plain"),
    ("stylegan", "resnet", "resnet")])
def test_disc_trunk_pairs_either_generator_with_either_discriminator(network, trunk, expected):
    from workbench.nets.stylegan import StyleGenerator
    from workbench.nets.stylegan2 import StyleGAN2Generator

    method = LayeredGAN(replace(SMOKE, network=network, disc_trunk=trunk))
    assert method.discriminator.architecture == expected
    assert isinstance(method.generator.generator, StyleGAN2Generator if network == "stylegan2" else StyleGenerator)


# training and checkpoints


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_each_setting_trains_and_reloads(runs, setting):
    method, trainer, folder = runs[setting]
    assert trainer.step == SMOKE.steps
    last = trainer.history[-1]
    for key in ("discriminator/loss", "discriminator/real", "discriminator/fake", "generator/loss",
                "generator/adversarial", "generator/size", "generator/binary", "generator/mask_area"):
        assert math.isfinite(last[key]), key
    assert ("discriminator/seg" in last) == SETTINGS[setting].segmenter
    assert ("discriminator/decoder" in last) == SETTINGS[setting].realism
    assert any((folder / "checkpoints").glob("step-*")) and any((folder / "samples").glob("*.png"))
    reloaded = load_method(folder)
    assert isinstance(reloaded, LayeredGAN) and reloaded.config.setting == setting and reloaded.step == SMOKE.steps
    before, after = method.generate(2, seed=0), reloaded.generate(2, seed=0)
    for key in ("background", "foreground", "mask", "composite"):
        torch.testing.assert_close(before[key], after[key], rtol=0, atol=0)
    assert 0 <= after["mask"].min() and after["mask"].max() <= 1 and after["composite"].shape == (2, 3, R, R)
    for name, tensor in method.discriminator.state_dict().items():
        torch.testing.assert_close(reloaded.discriminator.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("setting", ["a", "b", "c"])
def test_joint_segmenter_on_non_square_images(runs, setting):
    method, _, folder = runs[setting]
    images = sample_images()
    masks = method.segment(images)
    assert masks.shape == (2, 1, 20, 28) and masks.dtype == torch.float32
    assert 0 <= masks.min() and masks.max() <= 1 and masks.std() > 0
    torch.testing.assert_close(load_method(folder).segment(images), masks, rtol=0, atol=1e-6)
    torch.testing.assert_close(method.segment(images, batch_size=1), masks, rtol=0, atol=1e-6)
    assert method.test_side == 18  # 1.125·R: the scale the training crops were cut from
    square = images[..., :18, :18]  # at that size: the discriminator's own mask channel, padded by reflection to 20
    with evaluating(method.discriminator) as d:
        padded = torch.nn.functional.pad(square * 2 - 1, (0, 2, 0, 2), mode="reflect")
        direct = torch.sigmoid(d.mask_logits(padded))[..., :18, :18]
    torch.testing.assert_close(method.segment(square), direct, atol=1e-6, rtol=1e-5)


def test_setting_d_has_no_joint_segmenter(runs):
    method, _, _ = runs["d"]
    with pytest.raises(ValueError, match="layered-post"):
        method.segment(sample_images())


# the discriminator step


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_discriminator_loss_is_eqs_4_6_to_4_10(setting):
    """Off the R1 steps: L_disc (+ L_disc_dec for a, b) (+ L_seg against the shifted mask for a-c)."""
    method = fresh(setting, cutmix_prob=0.0)
    method.step = 1  # r1_every = 2: no R1 on this step
    batch = real_batch()
    expected, parts = expected_discriminator_loss(method, batch, seed=11)
    torch.manual_seed(11)
    stats = method.discriminator_step(batch)
    torch.testing.assert_close(stats["loss"], expected, atol=1e-5, rtol=1e-5)
    for name in ("decoder", "seg"):
        assert (name in stats) == (name in parts), name
        if name in parts:
            torch.testing.assert_close(stats[name], parts[name], atol=1e-5, rtol=1e-5)
    if "seg" in parts:  # the target is m_Δ, the mask shifted with the foreground (eq. 4.7 on x̂ of eq. 4.2)
        assert not torch.isclose(parts["seg"], parts["seg_unshifted"])
        assert 0 <= stats["seg_iou"] <= 1
    assert not {"r1", "r1_dec", "cutmix", "consistency"} & set(stats)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_r1_is_lazy_and_scaled(setting):
    """StyleGAN2's lazy R1: only when step % r1_every == 0, weighted by r1_every; the D_dec term for a, b."""
    c = SMOKE
    for step in (1, 3):
        method = fresh(setting, cutmix_prob=0.0)
        method.step = step
        assert "r1" not in method.discriminator_step(real_batch())
    method = fresh(setting, cutmix_prob=0.0)
    method.step = 2 * c.r1_every
    batch = real_batch()
    expected, _ = expected_discriminator_loss(method, batch, seed=12)
    torch.manual_seed(12)
    stats = method.discriminator_step(batch)
    assert stats["r1"] > 0
    assert ("r1_dec" in stats) == SETTINGS[setting].realism
    penalty = c.r1_weight * stats["r1"] + c.r1_dec_weight * stats.get("r1_dec", torch.tensor(0.0))
    torch.testing.assert_close(stats["loss"], expected + c.r1_every * penalty, atol=1e-5, rtol=1e-5)
    method = fresh(setting, r1_weight=0.0)
    method.step = 2 * c.r1_every
    assert "r1" not in method.discriminator_step(real_batch())


def test_cutmix_terms_only_in_setting_b():
    method = fresh("b", cutmix_prob=1.0)
    method.step = 1
    stats = method.discriminator_step(real_batch())
    assert {"cutmix", "consistency", "decoder", "seg"} <= set(stats)
    assert stats["cutmix"] > 0 and stats["consistency"] >= 0 and math.isfinite(stats["loss"])
    method = fresh("b", cutmix_prob=0.0)
    method.step = 1
    assert "cutmix" not in method.discriminator_step(real_batch())
    for setting in ("a", "c", "d"):
        method = fresh(setting, cutmix_prob=1.0)
        method.step = 1
        assert "cutmix" not in method.discriminator_step(real_batch()), setting


def test_discriminator_step_changes_only_the_discriminator():
    method = fresh("a")
    method.step = 1
    g_before = {k: v.clone() for k, v in method.generator.state_dict().items() if k != "generator.w_avg"}
    d_before = {k: v.clone() for k, v in method.discriminator.state_dict().items()}
    method.discriminator_step(real_batch())
    assert all(torch.equal(method.generator.state_dict()[k], v) for k, v in g_before.items())
    assert any(not torch.equal(method.discriminator.state_dict()[k], v) for k, v in d_before.items())


# the generator step


@pytest.mark.parametrize("setting", ["a", "d"])
def test_generator_step_is_eq_4_5(setting):
    method = fresh(setting)
    d_before = {k: v.clone() for k, v in method.discriminator.state_dict().items()}
    g_before = {k: v.clone() for k, v in method.generator.state_dict().items()}
    stats = method.generator_step(None)
    c = method.config
    total = stats["adversarial"] + c.size_weight * stats["size"] + c.binary_weight * stats["binary"]
    torch.testing.assert_close(stats["loss"], total, atol=1e-5, rtol=1e-5)
    assert 0 <= stats["mask_area"] <= 1 and 0 <= stats["binary"] <= 0.5
    assert all(torch.equal(method.discriminator.state_dict()[k], v) for k, v in d_before.items())
    assert any(not torch.equal(method.generator.state_dict()[k], v) for k, v in g_before.items())


@pytest.mark.parametrize("size_loss_on", ["original", "shifted"])
def test_size_hinges_read_the_generated_or_the_shifted_mask(monkeypatch, size_loss_on):
    """Eq. (4.3) reads G_m(z); the ladder switch size_loss_on="shifted" reads m_Δ, the mask the composite shows."""
    import workbench.methods.perturbgan as perturbgan  # PerturbGAN.size_hinges, which LayeredGAN inherits

    method = fresh("d", size_loss_on=size_loss_on, max_shift=0.25)
    read, generated, shifted = size_hinge_input(monkeypatch, method, perturbgan, "fakes")
    assert not torch.equal(shifted, generated)  # Δ ≠ 0 moved it
    assert read is (shifted if size_loss_on == "shifted" else generated)


# generated training pairs


def test_training_pairs_are_shifted_composites_with_their_shifted_masks(runs):
    method, _, _ = runs["d"]
    c = method.config
    torch.manual_seed(21)
    images, masks = method.training_pairs(6)
    assert images.shape == (6, 3, R, R) and masks.shape == (6, 1, R, R)
    assert 0 <= images.min() and images.max() <= 1 and 0 <= masks.min() and masks.max() <= 1
    torch.manual_seed(21)  # the same draws, step by step: z, the EMA generator, Δ, then the two jitters
    z = torch.randn(6, c.z_dim)
    with torch.no_grad(), evaluating(method.averaged("generator")) as g:
        layers = g(z, mixing=c.mixing)
    offset = random_offsets(6, max_shift=c.max_shift, size=R)
    assert (offset != 0).any()
    background, foreground = contrast_jitter(layers.background), contrast_jitter(layers.foreground)
    torch.testing.assert_close(masks, translate(layers.mask, offset), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(masks, layers.mask)  # shifted, not the generator's own mask
    composite = layered_composite(background=background, foreground=foreground, mask=layers.mask, offset=offset)
    torch.testing.assert_close(images, ((composite + 1) / 2).clamp(0, 1), atol=1e-6, rtol=1e-5)


def test_training_pairs_use_the_given_generator(runs):
    method, _, _ = runs["d"]
    other = fresh("d", seed=5).generator
    torch.manual_seed(0)
    default = method.training_pairs(2)
    torch.manual_seed(0)
    given = method.training_pairs(2, generator=other)
    assert not torch.allclose(default[0], given[0])


# post-training (layered-post)


def test_post_segmenter_from_an_in_memory_gan(runs, tmp_path):
    gan = runs["d"][0]
    torch.manual_seed(0)
    post = PostSegmenter(POST_PRESETS["smoke"], gan=gan)
    assert post.name == "layered-post"
    assert post.config.resolution == gan.config.resolution and post.config.dataset == gan.config.dataset
    trainer = train(post, tmp_path)
    assert trainer.step == POST_PRESETS["smoke"].steps and math.isfinite(trainer.history[-1]["segmenter/loss"])
    masks = post.predict(sample_images())
    assert masks.shape == (2, 1, 20, 28) and 0 <= masks.min() and masks.max() <= 1
    assert torch.equal(post.segment(sample_images()), masks)  # the name the joint segmenters use
    first, second = post.sample(), post.sample()
    assert first.shape[:2] == (1, 3) and first.shape[-2] >= 3 * R  # rows: composite, mask, prediction
    assert torch.equal(first, second)  # fixed pairs in every grid
    batch = post.generated_batch(3)
    assert batch["image"].shape == (3, 3, R, R) and batch["mask"].shape == (3, 1, R, R)
    assert all(p.requires_grad is False for p in post.gan_generator.parameters())


def test_post_run_trained_from_an_in_memory_gan_reloads(runs, tmp_path):
    """A run trained with ``gan=`` (a notebook's in-memory GAN, no --generator path) must load again."""
    torch.manual_seed(0)
    post = PostSegmenter(POST_PRESETS["smoke"], gan=runs["d"][0])
    train(post, tmp_path)
    reloaded = load_method(tmp_path)
    torch.testing.assert_close(reloaded.predict(sample_images()), post.predict(sample_images()), rtol=0, atol=1e-6)


@pytest.mark.parametrize("setting", ["a", "d"])
def test_post_segmenter_from_a_run_folder_reloads(runs, tmp_path, setting):
    """Post-training applies to every setting's generator (section 4.3.2); the run names it by path."""
    folder = runs[setting][2]
    torch.manual_seed(0)
    post = PostSegmenter(replace(POST_PRESETS["smoke"], generator=str(folder)))
    train(post, tmp_path / "post")
    reloaded = load_method(tmp_path / "post")
    assert isinstance(reloaded, PostSegmenter) and reloaded.config.generator == str(folder)
    images = sample_images()
    torch.testing.assert_close(reloaded.predict(images), post.predict(images), rtol=0, atol=1e-6)
    torch.testing.assert_close(reloaded.sample(), post.sample(), rtol=0, atol=1e-6)
    assert torch.equal(reloaded.sample(), reloaded.sample())
    # the frozen generator is the run's EMA generator
    gan = runs[setting][0]
    for name, tensor in gan.averaged("generator").state_dict().items():
        torch.testing.assert_close(reloaded.gan_generator.state_dict()[name], tensor, rtol=0, atol=0)


def test_post_segmenter_needs_a_layered_generator(runs, tmp_path):
    with pytest.raises(ValueError, match="generator"):  # it loads to predict, but cannot train
        PostSegmenter(POST_PRESETS["smoke"]).phases()
    torch.manual_seed(0)
    post = PostSegmenter(replace(POST_PRESETS["smoke"], generator=str(runs["c"][2])))
    train(post, tmp_path)
    with pytest.raises(CheckpointError, match="layered"):  # a layered-post run is not a generator
        PostSegmenter(replace(POST_PRESETS["smoke"], generator=str(tmp_path)))


def test_real_images_are_centre_cropped_not_squashed(tmp_path):
    """Section 4.2: the centre square of a real image, resized to 1.125·R (issue 16: they were squashed)."""
    from dataclasses import replace as replace_config

    from PIL import Image

    from workbench.methods.layered import PRESETS as LAYERED_PRESETS
    from workbench.methods.layered import LayeredGAN as Layered

    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, :30, 0] = pixels[:, 30:60, 1] = pixels[:, 60:, 2] = 255  # red | green | blue thirds
    (tmp_path / "photos").mkdir()
    Image.fromarray(pixels).save(tmp_path / "photos" / "wide.png")
    config = replace_config(LAYERED_PRESETS["smoke"], dataset=f"folder:{tmp_path / 'photos'}")
    gan = Layered(config, device="cpu")
    image = gan.build_dataset()[0]["image"]  # (3, S, S) in [0, 1]
    assert image.shape[-1] == gan.test_side == round(1.125 * config.resolution)
    assert image[1].mean() > 0.95 and image[0].mean() < 0.05 and image[2].mean() < 0.05  # the green centre only


def test_r1_reading_switch_halves_the_penalty():
    from dataclasses import replace as replace_config

    from workbench.methods.layered import PRESETS as LAYERED_PRESETS
    from workbench.methods.layered import LayeredGAN as Layered

    real = torch.rand(2, 3, 16, 16) * 2 - 1
    values = {}
    for reading in ("thesis", "stylegan2"):
        torch.manual_seed(0)
        gan = Layered(replace_config(LAYERED_PRESETS["smoke"], r1_reading=reading), device="cpu")
        x = real.clone().requires_grad_(True)
        values[reading] = gan.r1_penalty(x, gan.discriminator(x), {})
    torch.testing.assert_close(values["stylegan2"], 0.5 * values["thesis"])
    with pytest.raises(ValueError):
        replace_config(LAYERED_PRESETS["smoke"], r1_reading="other")


def test_layered_true_background_rung():
    """background="true" (issue 16's oracle rung) in chapter 4: B is one of the scenes' true empty backgrounds."""
    from dataclasses import replace

    from workbench.methods.layered import PRESETS, LayeredGAN

    gan = LayeredGAN(replace(PRESETS["smoke"], dataset="synthetic:anywhere", background="true", random_crop=False))
    fake, layers, target = gan.fakes(2)
    bank = gan.true_backgrounds  # (K, 3, 16, 16)
    assert all(((bank - x[None]).abs().flatten(1).max(1).values < 1e-5).any() for x in layers.background)
    assert fake.shape == (2, 3, 16, 16) and target.shape == (2, 1, 16, 16)
