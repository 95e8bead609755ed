"""PerturbGAN (chapter 3): training and checkpoints, generate(), the shifted composite of eq. (3.2),
a shift the generator never sees, table 3.1's ablations, the generator loss of eq. (3.5), real crops."""

import math
from dataclasses import fields, replace

import pytest
import torch

from workbench.methods.perturbgan import ABLATIONS, CROP_SCALE, PRESETS, PerturbGAN, apply_ablation
from workbench.ops.composite import layered_composite
from workbench.train import load_method
from workbench.train.checkpoint import read_checkpoint
from workbench.train.trainer import Trainer

from train_helpers import size_hinge_input

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SMOKE = PRESETS["smoke"]  # 16 px, batch 4, 4 steps
R = SMOKE.resolution
KEYS = ("background", "foreground", "mask", "masked", "composite", "z")

# helpers


class Memory(torch.utils.data.Dataset):
    """8 fixed random images at the crop size 1.125·R: quicker than rendering synthetic scenes."""

    images = torch.rand(8, 3, round(CROP_SCALE * R), round(CROP_SCALE * R), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "name": str(i)}


def shift(x, dy, dx):
    """Move the content of (B, C, H, W) by (dy, dx) pixels with zero fill, by slicing (out[p] = x[p - (dy, dx)])."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = x[..., max(-dy, 0): h - max(dy, 0),
                                                                           max(-dx, 0): w - max(dx, 0)]
    return out


def raw_layers(method, z):
    """The (EMA) generator's layers for codes z, as generate() computes them: evaluation mode, const noise."""
    generator = method.averaged("generator")
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        layers = generator(z, noise="const")
    generator.train(was_training)
    return layers


def to01(x):
    return ((x + 1) / 2).clamp(0, 1)


def fresh(config=SMOKE, seed=0):
    torch.manual_seed(seed)
    return PerturbGAN(config)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The smoke preset trained through the Trainer on synthetic scenes: (method, trainer, run folder)."""
    out = tmp_path_factory.mktemp("perturbgan")
    method = fresh()
    trainer = Trainer(method, out_dir=out, progress=False, tensorboard=False)
    trainer.fit()
    return method, trainer, out


# training and checkpoints


def test_smoke_training_writes_a_checkpoint_that_reloads(run):
    method, trainer, out = run
    stats = trainer.history[-1]
    assert stats["step"] == SMOKE.steps and all(math.isfinite(v) for v in stats.values())
    for key in ("discriminator/loss", "discriminator/gp", "discriminator/drift", "generator/loss",
                "generator/adversarial", "generator/size", "generator/binary", "generator/mask_area"):
        assert key in stats, key
    checkpoint = read_checkpoint(out / "checkpoints" / f"step-{SMOKE.steps:07d}", method="perturbgan")
    assert checkpoint.config["max_shift"] == SMOKE.max_shift
    assert (out / "samples" / f"step-{SMOKE.steps:07d}.png").is_file()
    loaded = load_method(out)
    assert isinstance(loaded, PerturbGAN) and loaded.step == SMOKE.steps and loaded.config == SMOKE
    assert "generator" in loaded.ema  # the EMA generator came back
    a, b = method.generate(3, seed=7), loaded.generate(3, seed=7)
    for key in KEYS:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(method.sample(), loaded.sample())


def test_generate_returns_the_documented_layers(run):
    method = run[0]
    out = method.generate(5, seed=3)
    assert set(out) == set(KEYS)
    assert out["z"].shape == (5, SMOKE.z_dim)
    for key, channels in (("background", 3), ("foreground", 3), ("mask", 1), ("masked", 3), ("composite", 3)):
        assert out[key].shape == (5, channels, R, R), key
        assert out[key].min() >= 0 and out[key].max() <= 1, key
    assert torch.allclose(out["masked"], out["foreground"] * out["mask"])
    layers = raw_layers(method, out["z"])
    assert torch.allclose(out["mask"], layers.mask)
    assert torch.allclose(out["composite"], to01((1 - layers.mask) * layers.background + layers.mask * layers.foreground),
                          atol=1e-6)  # eq. (3.1)
    again = method.generate(5, seed=3)
    assert all(torch.equal(out[k], again[k]) for k in KEYS)  # seeded and deterministic (const noise)
    assert not torch.equal(method.generate(5, seed=4)["z"], out["z"])
    mean_scene = method.generate(5, seed=3, truncation=0.0)["mask"]
    assert torch.allclose(mean_scene[0], mean_scene[4])  # ψ = 0: every code becomes w̄
    assert torch.allclose(method.generate(5, seed=3, jitter=1.0)["composite"], out["composite"], atol=1e-6)
    flat = method.generate(5, seed=3, jitter=0.0)["background"]  # contrast 0: each background is its mean colour
    assert torch.allclose(flat, flat.mean(dim=(1, 2, 3), keepdim=True).expand_as(flat), atol=1e-6)


@pytest.mark.parametrize("offset", [(2, -3), (-1, 0)])
def test_composite_with_an_offset_shifts_foreground_and_mask_only(run, offset):
    method = run[0]
    plain = method.generate(4, seed=1)
    moved = method.generate(4, seed=1, offset=torch.tensor(offset))
    for key in ("background", "foreground", "mask", "masked"):
        assert torch.equal(plain[key], moved[key]), key  # the layers themselves do not move
    layers = raw_layers(method, plain["z"])
    m, f = shift(layers.mask, *offset), shift(layers.foreground, *offset)
    expected = to01((1 - m) * layers.background + m * f)  # eq. (3.2) by hand
    assert torch.allclose(moved["composite"], expected, atol=1e-6)
    ops = layered_composite(background=layers.background, foreground=layers.foreground, mask=layers.mask,
                            offset=torch.tensor(offset))
    assert torch.allclose(moved["composite"], to01(ops), atol=1e-6)
    assert not torch.allclose(moved["composite"], plain["composite"])
    per_image = torch.tensor([offset, (0, 0), offset, (0, 0)])
    mixed = method.generate(4, seed=1, offset=per_image)["composite"]
    assert torch.allclose(mixed[[0, 2]], moved["composite"][[0, 2]]) and torch.allclose(mixed[[1, 3]], plain["composite"][[1, 3]])


def test_the_shift_is_drawn_after_the_generator_and_stays_in_range():
    method = fresh()
    layers_by_shift = {}
    for max_shift in (0.0, 0.125, 0.25):
        method.config = replace(SMOKE, max_shift=max_shift)
        torch.manual_seed(5)
        fake, layers = method.fakes(16)
        layers_by_shift[max_shift] = layers
        assert fake.shape == (16, 3, R, R)
        if max_shift == 0:  # no shift: eq. (3.1) with the generator's own mask
            assert torch.allclose(fake, (1 - layers.mask) * layers.background + layers.mask * layers.foreground)
            continue
        limit = round(max_shift * R)
        found = []
        for i in range(16):
            one = layers._replace(**{k: v[i:i + 1] for k, v in layers._asdict().items()})
            matches = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)
                       if torch.allclose(fake[i:i + 1], method.composite(one, torch.tensor([dy, dx])), atol=1e-6)]
            assert matches, f"image {i}: no shift within ±{limit} px explains the composite"
            found.append(matches[0])
        assert any(o != (0, 0) for o in found)
    # the generator sees the same codes and produces the same layers whatever the shift (it cannot know it)
    for key in ("background", "foreground", "mask"):
        assert torch.equal(getattr(layers_by_shift[0.0], key), getattr(layers_by_shift[0.25], key))


def test_background_jitter_changes_the_background_only():
    method = fresh(replace(SMOKE, bg_jitter=True, max_shift=0.0))
    torch.manual_seed(2)
    fake, layers = method.fakes(8)
    plain = (1 - layers.mask) * layers.background + layers.mask * layers.foreground
    assert not torch.allclose(fake, plain)
    background = (fake - layers.mask * layers.foreground) / (1 - layers.mask)  # solve eq. (3.1) for B
    mean = layers.background.mean(dim=(1, 2, 3), keepdim=True)
    contrast = ((background - mean) / (layers.background - mean)).flatten(1).median(1).values  # one factor per image
    assert ((contrast > 0.69) & (contrast < 1.31)).all()  # ablation (d): contrast in (0.7, 1.3)


# ablations (table 3.1)


def test_every_ablation_changes_exactly_its_fields():
    documented = {"default": {}, "no-shift": {"max_shift": 0.0}, "shift-25": {"max_shift": 0.25},
                  "bg-jitter": {"bg_jitter": True}, "no-crop": {"random_crop": False}, "size-10": {"size_weight": 10.0},
                  "eta-5": {"min_mask": 0.05}, "single-generator": {"single_generator": True}}
    assert set(ABLATIONS) == set(documented)
    for name, changes in documented.items():
        config = apply_ablation(SMOKE, name)
        changed = {f.name: getattr(config, f.name) for f in fields(config)
                   if getattr(config, f.name) != getattr(SMOKE, f.name)}
        assert changed == changes, name
    assert SMOKE.max_shift == 0.125 and not SMOKE.bg_jitter and SMOKE.random_crop  # section 3.3's defaults
    with pytest.raises(ValueError, match="unknown ablation"):
        apply_ablation(SMOKE, "no-mask")


def test_single_generator_has_seven_outputs_and_trains():
    method = fresh(apply_ablation(SMOKE, "single-generator"))
    (generator,) = method.generator.generators
    assert generator.out_channels == 7 and method.generator.num_ws == generator.num_ws == 6  # 4, 8, 16 px × 2
    assert fresh().generator.num_ws == 12  # two generators
    before = [p.detach().clone() for p in method.generator.parameters()]
    trainer = Trainer(method, dataset=Memory(), progress=False, tensorboard=False)
    trainer.fit(1)
    assert all(math.isfinite(v) for v in trainer.history[-1].values())
    assert any(not torch.equal(a, p) for a, p in zip(before, method.generator.parameters()))
    out = method.generate(2, seed=0)
    assert out["mask"].shape == (2, 1, R, R) and out["composite"].shape == (2, 3, R, R)


# the losses


def test_generator_step_updates_the_generator_only():
    method = fresh()
    d_before = [p.detach().clone() for p in method.discriminator.parameters()]
    g_before = [p.detach().clone() for p in method.generator.parameters()]
    torch.manual_seed(0)
    stats = method.generator_step(None)
    assert all(p.grad is None for p in method.discriminator.parameters())
    assert all(p.grad is not None for p in method.generator.parameters())
    assert all(torch.equal(a, p) for a, p in zip(d_before, method.discriminator.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(g_before, method.generator.parameters()))
    c = SMOKE
    expected = stats["adversarial"] + c.size_weight * stats["size"] + c.binary_weight * stats["binary"]  # eq. (3.5)
    assert float(stats["loss"]) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("size_loss_on", ["original", "shifted"])
def test_size_hinges_read_the_generated_or_the_shifted_mask(monkeypatch, size_loss_on):
    """Eq. (3.3) reads G_m(z); size_loss_on="shifted" reads m_Δ, the mask the shifted composite shows."""
    import workbench.methods.perturbgan as perturbgan

    method = fresh(replace(SMOKE, size_loss_on=size_loss_on, max_shift=0.25))
    read, generated, shifted = size_hinge_input(monkeypatch, method, perturbgan, "shifted_fakes")
    assert not torch.equal(shifted, generated)  # Δ ≠ 0 moved it
    assert read is (shifted if size_loss_on == "shifted" else generated)


def test_discriminator_step_updates_the_discriminator_only():
    method = fresh()
    g_before = [p.detach().clone() for p in method.generator.parameters()]
    torch.manual_seed(0)
    stats = method.discriminator_step({"image": Memory.images[:4]})
    assert all(p.grad is None for p in method.generator.parameters())
    assert all(torch.equal(a, p) for a, p in zip(g_before, method.generator.parameters()))
    assert all(math.isfinite(float(v)) for v in stats.values()) and {"gp", "drift", "real", "fake"} <= set(stats)


@pytest.mark.parametrize("bias, size, area", [(-60.0, SMOKE.min_mask, 0.0), (60.0, 0.0, 1.0)])
def test_size_loss_is_eta_for_empty_masks_and_zero_for_full_ones(bias, size, area):
    method = fresh()
    with torch.no_grad():
        for to_rgb in method.generator.generators[1].to_rgb:  # foreground + mask generator; channel 3 is the mask
            to_rgb.bias[3] = bias
    torch.manual_seed(0)
    stats = method.generator_step(None)
    assert float(stats["mask_area"]) == pytest.approx(area, abs=1e-6)
    assert float(stats["size"]) == pytest.approx(size, abs=1e-6)  # eq. (3.3): max{0, η - mean m}
    assert float(stats["binary"]) == pytest.approx(0.0, abs=1e-6)  # eq. (3.4): a binary mask costs nothing


def test_max_mask_adds_the_upper_hinge_to_the_size_term():
    method = fresh(replace(SMOKE, max_mask=0.4))
    with torch.no_grad():
        for to_rgb in method.generator.generators[1].to_rgb:
            to_rgb.bias[3] = 60.0  # a full mask
    torch.manual_seed(0)
    assert float(method.generator_step(None)["size"]) == pytest.approx(0.6, abs=1e-6)  # 1 - θ_max
    with pytest.raises(ValueError, match="below max_mask"):
        replace(SMOKE, min_mask=0.5, max_mask=0.4)


# real images


def test_real_images_are_random_crops_of_the_enlarged_image():
    method = fresh()
    dataset = method.build_dataset()
    big = round(CROP_SCALE * R)
    assert big == 18 and dataset[0]["image"].shape == (3, big, big)
    x = torch.stack([dataset[i]["image"] for i in range(4)])  # (4, 3, 18, 18)
    windows = set()
    torch.manual_seed(0)
    for _ in range(6):
        real = method.real_images({"image": x})
        assert real.shape == (4, 3, R, R) and real.min() >= -1 and real.max() <= 1
        for i in range(4):
            hits = [(top, left) for top in range(big - R + 1) for left in range(big - R + 1)
                    if torch.allclose(real[i], x[i, :, top: top + R, left: left + R] * 2 - 1, atol=1e-6)]
            assert hits, f"image {i} is no {R}×{R} window of its {big}×{big} source"
            windows.add(hits[0])
    assert len(windows) > 1  # the crops move
    plain = fresh(replace(SMOKE, random_crop=False))
    small = plain.build_dataset()
    assert small[0]["image"].shape == (3, R, R)
    y = torch.stack([small[i]["image"] for i in range(2)])
    assert torch.allclose(plain.real_images({"image": y}), y * 2 - 1)


def test_sample_grid_has_the_five_rows_of_figure_3_3(run):
    method = run[0]
    grid = method.sample()
    n, pad = SMOKE.samples, 2
    assert grid.shape == (1, 3, 5 * (R + pad) - pad, n * (R + pad) - pad)
    out = method.generate(n, seed=SMOKE.seed)
    rows = [out["background"], out["foreground"], out["mask"].expand(-1, 3, -1, -1), out["masked"], out["composite"]]
    for r, row in enumerate(rows):
        for i in range(n):
            cell = grid[0, :, r * (R + pad): r * (R + pad) + R, i * (R + pad): i * (R + pad) + R]
            assert torch.allclose(cell, row[i]), (r, i)


def test_config_checks():
    with pytest.raises(ValueError, match="resolution"):
        replace(SMOKE, resolution=24)
    with pytest.raises(ValueError, match="max_shift"):
        replace(SMOKE, max_shift=0.5)
    with pytest.raises(ValueError, match="min_mask"):
        replace(SMOKE, min_mask=1.5)
    with pytest.raises(ValueError, match="size_loss_on"):
        replace(SMOKE, size_loss_on="visible")
    paper = PRESETS["paper"]
    assert paper.size_loss_on == "original"  # eq. (3.3) reads G_m(z)
    assert (paper.max_shift, paper.gp_weight, paper.drift, paper.size_weight, paper.binary_weight, paper.mixing,
            paper.betas, paper.z_dim) == (0.125, 10.0, 0.001, 2.0, 2.0, 0.9, (0.0, 0.99), 512)


def test_the_single_output_gan_of_table_3_2_trains_and_reloads(tmp_path):
    from workbench.methods.stylegan import SingleOutputGAN
    from workbench.nets.stylegan import StyleGenerator

    torch.manual_seed(0)
    method = SingleOutputGAN(PRESETS["smoke"])
    assert type(method.generator) is StyleGenerator and method.generator.out_channels == 3  # one image, no layers
    Trainer(method, out_dir=tmp_path, progress=False, tensorboard=False).fit(2)
    images = method.generate(3, seed=1)["composite"]
    assert images.shape == (3, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    loaded = load_method(tmp_path, method="stylegan")
    assert torch.equal(loaded.generate(3, seed=1)["composite"], images)
    growing = SingleOutputGAN(replace(PRESETS["smoke"], grow_from=8, images_per_scale=8))  # table 3.2 grows too
    Trainer(growing, out_dir=tmp_path / "growing", progress=False, tensorboard=False).fit(3)
    assert growing.stage() == (16, 1.0) and growing.generate(2)["composite"].shape == (2, 3, 16, 16)


# the projected discriminator (issue 16's diagnostic rung)

PROJECTED = replace(SMOKE, discriminator="projected", disc_input_size=32, disc_width=8)


def test_projected_discriminator_reads_the_frozen_package_efficientnet():
    from workbench.losses import Hinge
    from workbench.nets.discriminators import PACKAGE_EFFICIENTNET_FILE, EfficientNetPyramid, ProjectedDiscriminator

    method = fresh(PROJECTED)
    assert isinstance(method.disc_features, EfficientNetPyramid)
    assert isinstance(method.discriminator, ProjectedDiscriminator)
    assert method.disc_features.source.endswith(PACKAGE_EFFICIENTNET_FILE)  # the packaged ImageNet weights, offline
    assert method.disc_features.resize == 32 and "disc_features" not in method.modules()  # frozen, never saved
    assert PROJECTED.adversarial_loss == "hinge" and isinstance(method.loss, Hinge)
    x = (torch.rand(3, 3, R, R) * 2 - 1).requires_grad_(True)  # (B, 3, R, R) in [-1, 1]
    logits = method.critic(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert grad.abs().sum() > 0  # the images reach D through the pyramid


def test_projected_generator_step_trains_the_generator_through_the_frozen_pyramid():
    method = fresh(PROJECTED)
    pyramid = [p.detach().clone() for p in method.disc_features.parameters()]
    d_before = [p.detach().clone() for p in method.discriminator.parameters()]
    torch.manual_seed(0)
    method.generator_step(None)
    assert all(not p.requires_grad and p.grad is None for p in method.disc_features.parameters())
    assert all(p.grad is None for p in method.discriminator.parameters())
    assert all(p.grad is not None for p in method.generator.parameters())
    assert all(torch.equal(a, p) for a, p in zip(d_before, method.discriminator.parameters()))
    torch.manual_seed(0)
    stats = method.discriminator_step({"image": Memory.images[:4]})
    assert set(stats) == {"loss", "real", "fake"} and all(math.isfinite(float(v)) for v in stats.values())
    assert all(p.grad is None for p in method.disc_features.parameters())
    assert all(torch.equal(a, p) for a, p in zip(pyramid, method.disc_features.parameters()))  # never trained
    assert any(not torch.equal(a, p) for a, p in zip(d_before, method.discriminator.parameters()))
    buffers = dict(method.disc_features.net.named_buffers())
    assert all(torch.equal(buffers[k], v) for k, v in fresh(PROJECTED).disc_features.net.named_buffers())  # frozen BN


def test_projected_discriminator_with_wgan_gp_penalises_through_the_pyramid():
    from workbench.losses import WGANGP

    method = fresh(replace(PROJECTED, d_loss="wgan-gp"))
    assert isinstance(method.loss, WGANGP)
    torch.manual_seed(0)
    stats = method.discriminator_step({"image": Memory.images[:4]})
    assert {"gp", "drift", "real", "fake"} <= set(stats) and float(stats["gp"]) > 0


def test_nonsaturating_r1_is_stylegans_loss_with_its_r1_weight():
    from workbench.losses import NonSaturatingR1

    method = fresh(replace(SMOKE, d_loss="nonsaturating-r1", r1_weight=2.5))
    assert isinstance(method.loss, NonSaturatingR1) and method.loss.r1_weight == 2.5
    torch.manual_seed(0)
    stats = method.discriminator_step({"image": Memory.images[:4]})
    assert {"r1", "real", "fake"} <= set(stats) and float(stats["r1"]) > 0
    assert "gp" not in stats and "drift" not in stats  # not eq. (3.6)


def test_projected_smoke_run_from_the_command_line_reloads(tmp_path):
    from workbench.cli import main

    out = tmp_path / "run"
    assert main(["train", "perturbgan", "--preset", "smoke", "--discriminator", "projected", "--disc-input-size", "32",
                 "--disc-width", "8", "--steps", "2", "--out", str(out)]) == 0
    checkpoint = read_checkpoint(out / "checkpoints" / "step-0000002", method="perturbgan")
    assert checkpoint.config["discriminator"] == "projected" and checkpoint.config["d_loss"] == "auto"
    loaded = load_method(out)
    assert loaded.config == replace(PROJECTED, steps=2) and loaded.step == 2
    assert loaded.disc_features is not None and "disc_features" not in loaded.modules()
    from safetensors import safe_open

    with safe_open(str(out / "checkpoints" / "step-0000002" / "modules.safetensors"), "pt") as saved:
        assert {k.split(".")[0] for k in saved.keys()} == {"generator", "discriminator"}  # no EfficientNet copy
        state = {k.removeprefix("discriminator."): saved.get_tensor(k) for k in saved.keys()
                 if k.startswith("discriminator.")}
    assert all(torch.equal(v, loaded.discriminator.state_dict()[k]) for k, v in state.items())
    x = torch.rand(2, 3, R, R) * 2 - 1
    loaded.discriminator.eval()
    assert loaded.critic(x).shape == (2,)


def test_configs_saved_before_the_switch_load_with_the_thesis_discriminator():
    from workbench.config import config_from_dict, config_to_dict
    from workbench.methods.perturbgan import PerturbGANConfig

    old = {k: v for k, v in config_to_dict(SMOKE).items() if k not in ("discriminator", "disc_input_size", "disc_width",
                                                                         "d_loss")}
    config = config_from_dict(PerturbGANConfig, old)
    assert config.discriminator == "style" and config.adversarial_loss == "wgan-gp"
    assert type(PerturbGAN(config).discriminator).__name__ == "StyleDiscriminator"
    with pytest.raises(ValueError, match="disc_input_size"):
        replace(SMOKE, disc_input_size=16)


def test_true_background_rung_draws_the_scenes_empty_backgrounds():
    """background="true" (issue 16's oracle rung): B comes from the true empty backgrounds, not G_B(z)."""
    from dataclasses import replace

    from workbench.data.synthetic import render_layers
    from workbench.methods.perturbgan import PRESETS, PerturbGAN

    config = replace(PRESETS["smoke"], dataset="synthetic:anywhere", background="true", random_crop=False)
    gan = PerturbGAN(config)
    bank = gan.true_backgrounds  # (K, 3, 16, 16) in [-1, 1]
    first = torch.from_numpy(render_layers(0, preset="anywhere", size=16).background).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(bank[0], first)
    out = gan.generate(3, seed=1)
    b = out["background"] * 2 - 1  # (3, 3, 16, 16)
    assert all(((bank - x).abs().flatten(1).max(1).values < 1e-5).any() for x in b)  # each is one of the bank
    fake, layers = gan.fakes(2)
    assert fake.shape == (2, 3, 16, 16) and ((bank - layers.background[0]).abs().flatten(1).max(1).values < 1e-5).any()
    stats = gan.generator_step(None)
    assert torch.isfinite(stats["loss"])
    with pytest.raises(ValueError, match="synthetic"):
        replace(PRESETS["smoke"], dataset="folder:/nowhere", background="true")


def test_real_copy_paste_negatives_move_the_masked_region_and_keep_the_original():
    gan = PerturbGAN(replace(PRESETS["smoke"], real_copy_paste=True))
    real = torch.rand(6, 3, 16, 16) * 2 - 1
    mask = torch.zeros(6, 1, 16, 16)
    mask[:, :, 5:10, 5:10] = 1
    torch.manual_seed(0)
    copies = gan.copy_paste_negatives(real, mask)
    assert copies.shape == real.shape
    assert all(not torch.equal(c, r) for c, r in zip(copies, real))  # never a zero shift
    corner = torch.zeros(16, 16, dtype=torch.bool)
    corner[:3, :3] = True  # far from the square and its shifts (δ·R = 2 px)
    assert torch.equal(copies[..., corner], real[..., corner])
    stats = gan.discriminator_step({"image": torch.rand(4, 3, 18, 18)})
    assert torch.isfinite(stats["loss"])


# progressive growing (section 3.3)

GROWING = replace(SMOKE, grow_from=8, images_per_scale=16, steps=8)  # batch 4: four steps per scale


def test_growing_schedule_doubles_every_scale_and_fades_in_the_first_half():
    method = fresh(GROWING)
    assert [method.stage(step) for step in range(9)] == [(8, 1.0)] * 4 + [(16, 0.0), (16, 0.5)] + [(16, 1.0)] * 3
    # the fade takes the new scale's first half; 16 px is R, so it stays
    assert fresh().stage(0) == (R, 1.0)  # no growing: R from the start
    paper = PRESETS["paper"]
    assert paper.grow_from == 8 and paper.images_per_scale == 1_200_000  # section 3.3
    assert paper.steps * paper.batch_size == 5 * paper.images_per_scale  # 8, 16, 32, 64, 128 px
    with pytest.raises(ValueError, match="grow_from"):
        replace(SMOKE, grow_from=16)
    with pytest.raises(ValueError, match="style discriminator"):
        replace(SMOKE, grow_from=8, discriminator="projected")


def test_growing_trains_at_the_stage_with_a_stage_sized_shift(monkeypatch):
    method = fresh(GROWING)
    seen = {}
    critic = method.critic
    monkeypatch.setattr(method, "critic", lambda x: seen.setdefault("sizes", []).append(x.shape[-1]) or critic(x))
    stats = method.generator_step(None)
    assert stats["stage"] == 8 and seen["sizes"] == [8]
    real = method.real_images({"image": Memory.images[:2]})  # cropped at R, pooled to the stage
    assert real.shape == (2, 3, 8, 8) and real.min() >= -1 and real.max() <= 1
    method.step = 5  # 16 px, half faded in
    stats = method.discriminator_step({"image": Memory.images[:4]})
    assert seen["sizes"][-1] == 16 and method.discriminator.fade == 0.5
    assert method.generate(2)["composite"].shape == (2, 3, R, R)  # callers always get R


def test_a_growing_run_reloads_at_its_stage(tmp_path):
    out = tmp_path / "run"
    method = fresh(replace(GROWING, steps=5))
    Trainer(method, out_dir=out, progress=False, tensorboard=False).fit()
    loaded = load_method(out)
    assert loaded.step == 5 and loaded.stage() == (16, 0.5)
    assert any(key.startswith("grow_from_rgb.") for key in loaded.discriminator.state_dict())
    image = loaded.generate(2, seed=0)["composite"]
    assert torch.allclose(image, method.generate(2, seed=0)["composite"], atol=1e-6)
