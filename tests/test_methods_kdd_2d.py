"""The 2D KDD experiments: figure 6.1 (eqs. 6.11/6.12 in action), gradient fields, metrics, the toy GAN."""

from dataclasses import replace

import pytest
import torch

from workbench.losses import Joint
from workbench.methods.kdd_2d import (LOSSES, PRESETS, Discriminator2D, GAN2DConfig, LinearClassifier,
                                      config_for, energy_distance, figure_6_1, figure_6_1_clouds,
                                      fit_linear_classifier, gradient_field, grid_mixture, mode_coverage,
                                      ring_mixture, train_gan_2d)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# figure 6.1


@pytest.fixture(scope="module")
def small_figure():
    return figure_6_1(seed=0, steps=200, lr=10.0, n=200)


def test_hinge_only_translates_the_fake_cloud(small_figure):
    """Eq. (6.11): every fake point gets the same update, lr·w/N per step, so the cloud's shape is frozen."""
    fig = small_figure
    hinge = fig.trajectories["hinge"]  # (201, 200, 2)
    assert hinge.shape == (201, 200, 2) and torch.equal(hinge[0], fig.fake)
    shift = hinge[-1] - hinge[0]  # (200, 2)
    expected = 200 * 10.0 / 200 * fig.classifier.w  # steps · lr / N · w
    assert torch.allclose(shift, expected.expand_as(shift), atol=1e-4)
    before, after = fig.summary["initial"], fig.summary["hinge"]
    for key in ("cov_xx", "cov_xy", "cov_yy"):
        assert after[key] == pytest.approx(before[key], abs=1e-6)
    assert after["on_a_mode"] == 0.0  # a translated square is still a square between the modes


def test_kdd_reshapes_the_fake_cloud_towards_the_real_modes(small_figure):
    """Eq. (6.12): each point climbs p̂_r and leaves p̂_g; the cloud splits towards the two modes."""
    s = small_figure.summary
    assert s["kdd"]["energy_distance"] < 0.5 * s["hinge"]["energy_distance"]
    assert s["kdd"]["energy_distance"] < 0.2 * s["initial"]["energy_distance"]
    assert s["kdd"]["cov_yy"] > 3 * s["initial"]["cov_yy"]  # stretched along the axis joining the modes
    assert s["kdd"]["on_a_mode"] > 0.3
    assert 0.3 < s["kdd"]["nearest_mode0"] < 0.7  # both modes get a share, not just one
    for summary in s.values():
        assert summary["nearest_mode0"] + summary["nearest_mode1"] == pytest.approx(1.0)


def test_figure_records_every_k_steps_and_the_per_point_reading_blows_up():
    fig = figure_6_1(seed=1, steps=20, n=100, record_every=5)
    assert fig.trajectories["kdd"].shape == (5, 100, 2) and torch.equal(fig.final("kdd"), fig.trajectories["kdd"][-1])
    per_point = figure_6_1(seed=1, steps=20, n=100, reduction="sum", record_every=100)
    hinge_travel = (per_point.final("hinge") - per_point.fake).norm(dim=1)
    assert hinge_travel.min() > 100  # lr 10 per point: 20 steps of 10·‖w‖ each, far past the real cloud
    assert per_point.summary["kdd"]["finite"] == 0.0  # x += 10 (μ - x) overshoots ×9 per step: it diverges
    assert per_point.summary["kdd"]["on_a_mode"] == 0.0 and fig.summary["kdd"]["finite"] == 1.0
    assert fig.settings["reduction"] == "mean" and per_point.settings["reduction"] == "sum"


def test_linear_classifier_separates_the_clouds():
    real, fake, centers = figure_6_1_clouds(n=300, seed=2)
    assert real.shape == fake.shape == (300, 2) and centers.shape == (2, 2)
    assert fake.min(0).values.tolist() >= [-4.0, -1.0] and fake.max(0).values.tolist() <= [-2.0, 1.0]
    hinge = fit_linear_classifier(real, fake)
    assert hinge(real).min() >= 1 - 1e-4 and hinge(fake).max() <= -1 + 1e-4  # the hinge loss of eq. (6.2) is 0
    logistic = fit_linear_classifier(real, fake, loss="logistic", steps=300)
    assert (logistic(real) > 0).all() and (logistic(fake) < 0).all()
    xs = torch.tensor([-1.0, 0.0, 1.0])
    on_line = torch.stack([xs, hinge.boundary(xs)], dim=1)
    assert torch.allclose(hinge(on_line), torch.zeros(3), atol=1e-5)
    with pytest.raises(ValueError, match="classifier loss"):
        fit_linear_classifier(real, fake, loss="svm")


def test_gradient_field_arrows():
    real, fake, centers = figure_6_1_clouds(n=200, seed=3)
    classifier = LinearClassifier(w=torch.tensor([1.5, -0.5]), b=0.2)
    field = gradient_field(real, fake, classifier=classifier)
    assert set(field) == {"hinge", "kdd"} and field["kdd"].shape == (200, 2)
    assert torch.allclose(field["hinge"], classifier.w.expand(200, 2), atol=1e-5)  # -∂L/∂φ = w for every point
    # KDD arrows point from each fake point towards the real cloud, and differ from point to point
    towards_real = real.mean(0) - fake  # (200, 2)
    cosine = torch.nn.functional.cosine_similarity(field["kdd"], towards_real, dim=1)
    assert (cosine > 0).float().mean() > 0.95
    assert field["kdd"].std(0).norm() > 0.05 * field["kdd"].norm(dim=1).mean()
    upper, lower = fake[:, 1] > 0.5, fake[:, 1] < -0.5  # points above the axis turn up, points below turn down
    assert field["kdd"][upper, 1].mean() > field["kdd"][lower, 1].mean()
    # a wider kernel averages over more anchors; the vMF kernel works on the unit circle
    assert not torch.allclose(gradient_field(real, fake, classifier=classifier, sigma=3.0)["kdd"], field["kdd"])
    vmf = gradient_field(real, fake, classifier=classifier, kernel="vmf", tau=0.5)["kdd"]
    assert torch.isfinite(vmf).all()
    radial = (vmf * torch.nn.functional.normalize(fake, dim=1)).sum(1)  # normalisation removes the radial part
    assert radial.abs().max() < 1e-4 * vmf.norm(dim=1).max() + 1e-6
    default = gradient_field(real, fake)  # the classifier is fitted when not given
    assert torch.allclose(default["hinge"], default["hinge"][:1].expand(200, 2))


# mixtures and metrics


def test_mixtures_are_the_standard_benchmarks():
    ring, grid = ring_mixture(), grid_mixture()
    assert ring.centers.shape == (8, 2) and torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2.0))
    assert ring.std == 0.02 and grid.std == 0.05
    assert grid.centers.shape == (25, 2)
    assert sorted(set(grid.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x = grid.sample(5000, generator=torch.Generator().manual_seed(0))
    offsets = x - grid.centers[torch.cdist(x, grid.centers).argmin(1)]
    assert offsets.std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(x, grid.sample(5000, generator=torch.Generator().manual_seed(0)))


def test_mode_coverage_counts_modes_and_high_quality_samples():
    grid = grid_mixture()
    exact = grid.centers.repeat(100, 1)  # (2500, 2): 100 samples on every mode
    report = mode_coverage(exact, grid)
    assert report.modes == 25 and report.total == 25 and report.hq == 100.0 and report.counts == [100] * 25
    collapsed = grid.centers[:1].repeat(2500, 1)
    assert mode_coverage(collapsed, grid).modes == 1
    # 2,300 samples on 23 modes, 9 on a 24th (under 10 = 0.1 · 2,500/25), 191 between modes
    between = torch.tensor([[1.0, 1.0]]).repeat(191, 1)
    samples = torch.cat([grid.centers[:23].repeat(100, 1), grid.centers[23:24].repeat(9, 1), between])
    report = mode_coverage(samples, grid)
    assert report.modes == 23 and report.hq == pytest.approx(100 * 2309 / 2500)
    assert mode_coverage(samples, grid, min_share=0.01).modes == 24
    near = grid.centers[:1] + torch.tensor([[0.14, 0.0], [0.16, 0.0]])  # inside / outside 3σ = 0.15
    assert mode_coverage(near, grid, min_share=0.0).hq == 50.0


def test_energy_distance():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, y) < 0.05  # two samples of one law
    far = energy_distance(x, y + torch.tensor([3.0, 0.0]))
    assert far > 2.0 and far == pytest.approx(energy_distance(y + torch.tensor([3.0, 0.0]), x))


# the toy GAN


def test_discriminator_output_is_what_joint_reads():
    D = Discriminator2D(hidden=16)
    out = D(torch.randn(8, 2))
    assert out.features.shape == (8, 16) and out.logits.shape == (8,) and out.projection is None
    loss, stats = Joint(gamma=1.0, alpha=1.0).discriminator(out, D(torch.randn(8, 2)))
    assert torch.isfinite(loss) and {"kdd_loss", "hinge"} <= set(stats)


def test_features_come_from_a_linear_layer():
    """φ̃ is a linear layer's output on the LeakyReLU trunk, as the image D's ``to_features``; the head reads φ̃."""
    torch.manual_seed(0)
    D = Discriminator2D(hidden=16)
    x = torch.randn(32, 2)
    trunk = D.body(x)  # (32, 16) after the last LeakyReLU
    assert isinstance(D.to_features, torch.nn.Linear)
    assert torch.allclose(D.features(x), D.to_features(trunk))
    assert not torch.allclose(D.features(x), trunk)
    assert torch.allclose(D(x).logits, D.head(D.features(x)).squeeze(1))


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_deterministically(loss):
    config = config_for("smoke", "ring8", loss=loss)
    state = torch.get_rng_state()
    rows = []
    a = train_gan_2d(config, seed=3, eval_every=10, callback=lambda step, row: rows.append(step))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    b = train_gan_2d(config, seed=3)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, train_gan_2d(config, seed=4).samples)
    assert a.samples.shape == (config.n_eval, 2) and torch.isfinite(a.samples).all()
    assert rows == [10, 20] and [r["step"] for r in a.history] == [10, 20]
    assert 0 <= a.report.modes <= 8 and 0.0 <= a.report.hq <= 100.0 and a.report.total == 8


def test_jacobian_regularised_run_and_bad_names():
    result = train_gan_2d(config_for("smoke", loss="kdd", jac_weight=1e-5, steps=3), seed=0)
    assert torch.isfinite(result.samples).all()
    with pytest.raises(ValueError, match="unknown loss"):
        train_gan_2d(config_for("smoke", loss="wgan"))
    with pytest.raises(ValueError, match="unknown mixture"):
        train_gan_2d(replace(config_for("smoke"), mixture="spiral"))
    with pytest.raises(ValueError, match="unknown mixture"):
        config_for("smoke", "spiral")
    with pytest.raises(ValueError, match="unknown preset"):
        config_for("huge")
    assert set(PRESETS) == {"paper", "small", "smoke"}
    small = config_for("small", "ring8")
    assert isinstance(small, GAN2DConfig) and small.mixture == "ring8" and small.tau == 0.05


def test_a_short_run_spreads_samples_to_the_ring():
    """150 hinge steps on the 8-ring: the untrained G puts everything near 0, the trained one near radius 2."""
    config = GAN2DConfig(mixture="ring8", loss="hinge", steps=150, batch_size=128, hidden=32, lr=1e-3, n_eval=500)
    untrained = train_gan_2d(replace(config, steps=0), seed=0)
    trained = train_gan_2d(config, seed=0)
    assert untrained.samples.norm(dim=1).mean().item() < 0.5
    assert abs(trained.samples.norm(dim=1).mean().item() - 2.0) < 0.3
