"""The PerturbGAN encoder (section 3.2.3): training against a frozen GAN run, checkpoints, its start
at the mean styles, the autoencoding loss of eq. (3.7), segmentation and the per-chunk protocol."""

import math
from dataclasses import replace

import pytest
import torch

from workbench.cli import main
from workbench.methods.perturbgan import PRESETS as GAN_PRESETS
from workbench.methods.perturbgan import PerturbGAN
from workbench.methods.perturbgan_encoder import PRESETS, PerturbEncoder
from workbench.train import load_method
from workbench.train.checkpoint import read_checkpoint
from workbench.train.trainer import Trainer

from train_helpers import SMOKE_FLAGS, smoke_perturbgan_run

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SMOKE = PRESETS["smoke"]  # 3 steps, batch 4
R = GAN_PRESETS["smoke"].resolution  # 16 px

# helpers


def images(n, size=R, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A PerturbGAN run folder: the smoke preset trained for 2 steps."""
    return smoke_perturbgan_run(tmp_path_factory.mktemp("gan"))


@pytest.fixture(scope="module")
def gan():
    """An untrained smoke PerturbGAN whose mean styles are far from zero (so that "starts at w̄" means something)."""
    torch.manual_seed(0)
    method = PerturbGAN(GAN_PRESETS["smoke"])
    with torch.no_grad():
        for generator in method.generator.generators:
            generator.w_avg.normal_()
    return method.eval()


def encoder_on(gan, config=SMOKE, seed=0):
    torch.manual_seed(seed)
    return PerturbEncoder(config, gan=gan)


# training and checkpoints


def test_trains_against_a_gan_run_and_reloads(gan_run, tmp_path):
    config = replace(SMOKE, gan=str(gan_run))
    torch.manual_seed(0)
    method = PerturbEncoder(config)
    assert method.gan.step == 2 and method.resolution == R
    trainer = Trainer(method, out_dir=tmp_path / "enc", progress=False, tensorboard=False)
    trainer.fit()
    stats = trainer.history[-1]
    assert stats["step"] == SMOKE.steps and all(math.isfinite(v) for v in stats.values())
    assert {"encoder/loss", "encoder/l1", "encoder/perceptual", "encoder/mask_area"} <= set(stats)
    checkpoint = read_checkpoint(tmp_path / "enc", method="perturbgan-encoder")
    saved = checkpoint.tensors()
    assert saved and all(key.startswith("encoder.") for key in saved)  # the frozen GAN is not copied
    loaded = load_method(tmp_path / "enc")
    assert isinstance(loaded, PerturbEncoder) and loaded.step == SMOKE.steps and loaded.config == config
    x = images(3)
    assert torch.equal(method.segment(x), loaded.segment(x))
    # the frozen generator stayed frozen
    frozen = PerturbEncoder(config).gan_generator.state_dict()
    for key, value in method.gan_generator.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    assert not any(p.requires_grad for p in method.gan_generator.parameters())


def test_a_missing_gan_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="--gan"):
        PerturbEncoder(SMOKE)
    assert main(["train", "perturbgan-encoder", *SMOKE_FLAGS, "--out", str(tmp_path / "run")]) == 2
    assert "--gan" in capsys.readouterr().err


def test_building_an_encoder_leaves_the_gan_trainable():
    torch.manual_seed(0)
    gan = PerturbGAN(GAN_PRESETS["smoke"])
    PerturbEncoder(SMOKE, gan=gan)  # a notebook: train the GAN a little, try an encoder, train the GAN on
    assert all(p.requires_grad for p in gan.generator.parameters())
    assert all(p.requires_grad for p in gan.discriminator.parameters())
    assert gan.discriminator.training


# the encoder's start


def test_untrained_encoder_decodes_the_mean_styles(gan):
    method = encoder_on(gan)
    w_bar = gan.generator.mean_styles()  # (num_ws, w_dim)
    assert w_bar.shape == (gan.generator.num_ws, gan.config.w_dim) and w_bar.abs().mean() > 0.5
    assert torch.equal(method.encoder.mean_styles, w_bar)
    encoder = method.encoder.eval()
    with torch.no_grad():
        codes = encoder(images(4))  # (4, num_ws, w_dim)
        spread = (gan.generator.style_stack(torch.randn(64, gan.config.z_dim)) - w_bar).norm(dim=-1).mean()
    assert codes.shape == (4, gan.generator.num_ws, gan.config.w_dim)
    assert (codes - w_bar).norm(dim=-1).max() < 0.05 * spread  # near w̄, far nearer than a random style
    with torch.no_grad():
        _, mean_mask = method.decode(w_bar.expand(4, -1, -1))
    assert torch.allclose(method.encode(images(4))["mask"], mean_mask, atol=0.02)


# eq. (3.7)


def test_autoencoding_loss_parts(gan):
    method = encoder_on(gan)
    x = images(4)
    loss, stats = method.autoencoding_loss(method.encoder, x)
    assert {"loss", "l1", "perceptual", "mask_area"} == set(stats)
    assert all(math.isfinite(float(v)) for v in stats.values()) and float(stats["perceptual"]) > 0
    assert float(loss.detach()) == pytest.approx(float(stats["l1"] + stats["perceptual"]), rel=1e-5)
    with torch.no_grad():
        x_e, _ = method.decode(method.encoder(x))
    assert float(stats["l1"]) == pytest.approx(float((x_e - (x * 2 - 1)).abs().mean()), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.fc.parameters())
    assert all(p.grad is None for p in gan.generator.parameters()) and all(p.grad is None for p in gan.discriminator.parameters())
    twice = encoder_on(gan, replace(SMOKE, perceptual_weight=2.0))
    loss2, stats2 = twice.autoencoding_loss(twice.encoder, x)
    assert float(loss2.detach()) == pytest.approx(float(stats2["l1"] + 2 * stats2["perceptual"]), rel=1e-5)
    plain = encoder_on(gan, replace(SMOKE, perceptual_weight=0.0))
    loss0, stats0 = plain.autoencoding_loss(plain.encoder, x)
    assert "perceptual" not in stats0 and float(loss0.detach()) == pytest.approx(float(stats0["l1"]), rel=1e-6)


def test_against_a_projected_discriminator_the_perceptual_term_reads_its_mixed_8x8_map():
    torch.manual_seed(0)
    gan = PerturbGAN(replace(GAN_PRESETS["smoke"], discriminator="projected", disc_input_size=32, disc_width=8)).eval()
    method = encoder_on(gan)
    assert method.gan_disc_features is gan.disc_features and "gan_disc_features" not in method.modules()
    x = images(2) * 2 - 1
    features = method.discriminator_features(x, resolution=8)
    expected = gan.discriminator.mix(gan.disc_features((x + 1) / 2))[0]  # 32 px -> stride 4 -> 8 x 8, the finest map
    assert features.shape == (2, 64, 8, 8) and torch.equal(features, expected)
    with pytest.raises(ValueError, match="feature_resolution 3"):
        method.discriminator_features(x, resolution=3)
    loss, stats = method.autoencoding_loss(method.encoder, images(2))
    assert float(stats["perceptual"]) > 0
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.fc.parameters())
    assert all(p.grad is None for p in gan.discriminator.parameters()) and all(
        p.grad is None for p in gan.disc_features.parameters())


def test_encoder_step_lowers_the_reconstruction_error_on_one_batch(gan):
    method = encoder_on(gan, replace(SMOKE, lr=1e-3))
    batch = {"image": images(4)}
    first = float(method.encoder_step(batch)["loss"])
    for _ in range(5):
        last = float(method.encoder_step(batch)["loss"])
    assert last < first


# segmentation


def test_segment_resizes_to_the_input_size(gan):
    method = encoder_on(gan)
    x = images(3, size=24)
    masks = method.segment(x)
    assert masks.shape == (3, 1, 24, 24) and masks.min() >= 0 and masks.max() <= 1
    out = method.encode(x)
    assert out["reconstruction"].shape == (3, 3, 24, 24)
    same = method.segment(images(3))
    assert same.shape == (3, 1, R, R)
    assert torch.allclose(method.segment(x, batch_size=1), masks, atol=1e-5)  # batching does not change the masks
    with pytest.raises(ValueError, match="16×16"):
        method.encoder(images(2, size=24))


def test_segment_in_chunks_returns_a_mask_per_image(gan):
    method = encoder_on(gan)
    x = images(4, size=20)
    masks = method.segment_in_chunks(x, chunk_size=2, steps=2, progress=False)
    assert masks.shape == (4, 1, 20, 20) and masks.min() >= 0 and masks.max() <= 1
    again = method.segment_in_chunks(x, chunk_size=2, steps=2, progress=False)
    assert torch.equal(masks, again)  # seeded from the config
    assert not torch.equal(method.segment(x), masks)  # fresh encoders, trained on their chunk


def test_segment_in_chunks_handles_a_last_chunk_of_one_image(gan):
    method = encoder_on(gan)
    masks = method.segment_in_chunks(images(5), chunk_size=2, steps=2, progress=False)  # chunks of 2, 2, 1
    assert masks.shape == (5, 1, R, R)
