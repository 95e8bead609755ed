"""KDD GAN (chapter 6): training every loss through the Trainer, checkpoints, exact resume, the
DA ×N anchors against a hand computation of eqs. (6.5)-(6.9), the phase order's cost, classes."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.methods.kdd_gan import KDDGAN, PRESETS, KDDGANConfig
from workbench.train import load_method
from workbench.train.checkpoint import read_checkpoint
from workbench.train.trainer import Trainer

SMOKE = PRESETS["smoke"]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """load_method finds methods in the registry (where the workbench lists kdd-gan)."""
    from workbench.methods import METHODS

    monkeypatch.setitem(METHODS, KDDGAN.name, KDDGAN)


class Memory(torch.utils.data.Dataset):
    """16 fixed random 16 px images: quicker than rendering synthetic scenes."""

    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "name": str(i)}


def train(config, out=None, *, steps=None, dataset=Memory()):
    """Train with the Trainer; ``dataset=None``: the config's own dataset."""
    torch.manual_seed(config.seed)
    method = KDDGAN(config)
    trainer = Trainer(method, out_dir=out, dataset=dataset, progress=False, tensorboard=False)
    trainer.fit(steps)
    return method, trainer


def memory_batch(n=8, size=16, seed=0):
    return {"image": torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))}


# training and checkpoints


@pytest.mark.parametrize("overrides", [dict(loss="hinge"), dict(loss="kdd"), dict(loss="joint", gamma=0.5, d_steps=2),
                                       dict(loss="kdd", augment_anchors=1, jac_weight=1e-5),
                                       dict(loss="joint", dagger=True)],
                         ids=["hinge", "kdd", "joint-2d", "kdd-da-jac", "joint-dagger"])
def test_smoke_training_and_checkpoint_round_trip(tmp_path, overrides):
    config = replace(SMOKE, **overrides)
    method, trainer = train(config, tmp_path / "run", dataset=None if config.loss == "hinge" else Memory())
    stats = trainer.history[-1]
    assert stats["step"] == 4 and all(math.isfinite(v) for v in stats.values())
    assert "generator/loss" in stats and "discriminator/loss" in stats
    assert ("discriminator/kdd_loss" in stats) == (config.loss != "hinge")
    assert ("discriminator/hinge" in stats) == (config.loss != "kdd")
    assert ("discriminator_extra/loss" in stats) == (config.d_steps > 1)
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000004", method="kdd-gan")
    assert checkpoint.config["loss"] == config.loss
    loaded = load_method(tmp_path / "run")
    assert loaded.step == 4 and loaded.config == config
    for name in ("generator", "discriminator"):
        for key, value in method.modules()[name].state_dict().items():
            assert torch.equal(value, loaded.modules()[name].state_dict()[key]), f"{name}.{key}"
    assert torch.equal(loaded.sample(), method.sample())  # the EMA generator came back too
    images = loaded.sample()
    assert images.shape == (16, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    grid = np.asarray(Image.open(tmp_path / "run" / "samples" / "step-0000004.png"))
    assert grid.ndim == 3 and grid.std() > 0


def test_resume_is_exact_with_the_dagger_bank(tmp_path):
    config = replace(SMOKE, loss="joint", dagger=True, bank_size=12, augment_anchors=1)
    straight, _ = train(config)
    train(config, tmp_path / "run", steps=2)
    torch.manual_seed(123)  # the checkpoint must restore every RNG and the bank
    resumed = KDDGAN(config)
    trainer = Trainer(resumed, out_dir=tmp_path / "run", dataset=Memory(), progress=False, tensorboard=False)
    trainer.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000002")
    assert len(resumed.bank) == 12
    trainer.fit()
    for key, value in straight.discriminator.state_dict().items():
        assert torch.equal(value, resumed.discriminator.state_dict()[key]), key
    assert torch.equal(straight.bank.features(), resumed.bank.features())


# the losses against a hand computation


def log_kde(query, anchors, tau, *, leave_one_out, copies=0):
    """log p̂ of eqs. (6.7)-(6.9) with normalised features, written out with an explicit loop.

    With ``leave_one_out`` query i's own anchor i is left out, and so are its ``copies``
    augmented copies, anchors i + k·B for k = 1..copies.
    """
    q, a = F.normalize(query, dim=1), F.normalize(anchors, dim=1)
    b = len(q)
    out = []
    for i in range(len(q)):
        own = {i + k * b for k in range(1 + copies)} if leave_one_out else set()
        terms = [(q[i] @ a[j]) / tau for j in range(len(a)) if j not in own]
        out.append(torch.logsumexp(torch.stack(terms), 0) - math.log(len(terms)))
    return torch.stack(out)


class Flips:
    """A deterministic stand-in for DiffAugment: horizontal, then vertical flips, in turn."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x.flip(-1) if self.calls % 2 else x.flip(-2)


@pytest.mark.parametrize("n,leave_copies_out", [(0, True), (2, True), (2, False)])
def test_augmented_copies_only_add_anchors(n, leave_copies_out):
    """By default a sample's own augmented copies leave its KDE with it (near-self terms); a switch keeps them."""
    config = replace(SMOKE, loss="kdd", augment_anchors=n, tau=0.5, leave_copies_out=leave_copies_out)
    own = n if leave_copies_out else 0
    torch.manual_seed(0)
    method = KDDGAN(config)
    method.augment = Flips()
    method.discriminator.eval()  # no power iteration: the hand computation sees the same weights
    batch = memory_batch()
    D, G = method.discriminator, method.generator

    def features_and_anchors(x):
        phi = D(x).features
        anchors = D(torch.cat([x.flip(-1), x.flip(-2)])).features if n else phi[:0]
        return phi, anchors

    # discriminator step: eq. (6.5) on the batch, the anchors only inside the KDEs
    torch.manual_seed(1)
    with torch.no_grad():
        x_fake = G(torch.randn(8, config.z_dim))
        r, ra = features_and_anchors(batch["image"])
        f, fa = features_and_anchors(x_fake)
        real_set, fake_set = torch.cat([r, ra]), torch.cat([f, fa])
        at_real = (log_kde(r, real_set, 0.5, leave_one_out=True, copies=own)
                   - log_kde(r, fake_set, 0.5, leave_one_out=False))
        at_fake = (log_kde(f, real_set, 0.5, leave_one_out=False)
                   - log_kde(f, fake_set, 0.5, leave_one_out=True, copies=own))
        expected_d = F.relu(1 - at_real).mean() + F.relu(1 + at_fake).mean()
    torch.manual_seed(1)
    stats = method.discriminator_step(batch)
    assert float(stats["kdd_loss"]) == pytest.approx(float(expected_d), abs=1e-5)
    assert method.augment.calls == 2 * n

    # generator step: eq. (6.6), real features (and their copies) under the updated D anchor p̂_r
    torch.manual_seed(2)
    with torch.no_grad():
        x_fake = G(torch.randn(8, config.z_dim))
        r, ra = features_and_anchors(batch["image"])
        f, fa = features_and_anchors(x_fake)
        at_fake = (log_kde(f, torch.cat([r, ra]), 0.5, leave_one_out=False)
                   - log_kde(f, torch.cat([f, fa]), 0.5, leave_one_out=True, copies=own))
    torch.manual_seed(2)
    loss = method.generator_step(batch)["loss"]
    assert float(loss) == pytest.approx(float(-at_fake.mean()), abs=1e-5)


def test_anchors_change_the_loss():
    losses = []
    for n in (0, 2):
        torch.manual_seed(0)
        method = KDDGAN(replace(SMOKE, loss="kdd", augment_anchors=n))
        method.augment = Flips()
        torch.manual_seed(1)
        losses.append(float(method.discriminator_step(memory_batch())["kdd_loss"]))
    assert losses[0] != pytest.approx(losses[1], abs=1e-4)


# the phase order: KDD passes no more images through D than the hinge loss


def images_through_d(config):
    torch.manual_seed(0)
    method = KDDGAN(config)
    seen = []
    method.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    for phase in method.phases():
        phase.fn(memory_batch() if phase.real_data else None)
    return method, sum(seen)


def test_kdd_costs_the_same_discriminator_passes_as_hinge():
    _, hinge = images_through_d(replace(SMOKE, loss="hinge"))
    kdd, kdd_images = images_through_d(replace(SMOKE, loss="kdd"))
    _, dagger = images_through_d(replace(SMOKE, loss="kdd", dagger=True))
    assert hinge == kdd_images == dagger == 3 * 8  # real + fake in the D step, fake in the G step
    assert [p.name for p in kdd.phases()] == ["generator", "discriminator"] and kdd.carry is None
    _, da = images_through_d(replace(SMOKE, loss="kdd", augment_anchors=3))
    assert da == 3 * 8 * 4


def test_generator_step_leaves_d_gradients_alone_and_hands_over_its_real_pass():
    torch.manual_seed(0)
    method = KDDGAN(replace(SMOKE, loss="joint"))
    method.generator_step(memory_batch())
    assert all(p.grad is None for p in method.discriminator.parameters())
    assert all(p.grad is not None for p in method.generator.parameters() if p.requires_grad)
    x_real, _, real_pass = method.carry
    assert torch.equal(x_real, memory_batch()["image"]) and real_pass.logits.requires_grad
    method.discriminator_step(None)
    assert method.carry is None
    assert all(p.grad is not None for p in method.discriminator.parameters())
    with pytest.raises(RuntimeError, match="generator_step"):
        method.discriminator_step(None)


# classes


def write_class_folder(root, classes=("cat", "dog"), per_class=3, size=20):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_conditional_training_on_a_class_folder(tmp_path):
    write_class_folder(tmp_path / "data")
    config = replace(SMOKE, loss="joint", num_classes=2, dataset=f"classes:{tmp_path / 'data'}", batch_size=4, steps=2)
    method = KDDGAN(config)
    dataset = method.build_dataset()
    assert len(dataset) == 6 and dataset.labels == [0, 0, 0, 1, 1, 1]
    item = dataset[4]
    assert item["label"].item() == 1 and item["image"].shape == (3, 16, 16)
    method, trainer = train(config, dataset=None)
    assert all(math.isfinite(v) for v in trainer.history[-1].values())
    assert method.discriminator.embed is not None and method.generator.shared is not None
    assert method.generate(4, labels=torch.tensor([0, 1, 0, 1]), seed=0).shape == (4, 3, 16, 16)
    no_projection, trainer = train(replace(config, projection=False, steps=1), dataset=dataset)
    assert no_projection.discriminator.embed is None and no_projection.generator.shared is not None
    assert math.isfinite(trainer.history[-1]["discriminator/loss"])
    with pytest.raises(ValueError, match="3 classes|has 2 classes"):
        KDDGAN(replace(config, num_classes=3)).build_dataset()
    with pytest.raises(ValueError, match="classes"):
        KDDGAN(replace(SMOKE, num_classes=2)).build_dataset()  # synthetic scenes have no classes


def test_class_folder_errors(tmp_path):
    from workbench.data.class_folders import class_folder

    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match="no class sub-folders"):
        class_folder(tmp_path / "flat", size=8)
    (tmp_path / "flat" / "empty").mkdir()
    with pytest.raises(ValueError, match="hold no images"):
        class_folder(tmp_path / "flat", size=8)
    with pytest.raises(FileNotFoundError):
        class_folder(tmp_path / "missing", size=8)
    (tmp_path / "flat" / "empty" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not images"):
        class_folder(tmp_path / "flat", size=8)


def test_config_checks():
    with pytest.raises(ValueError, match="need loss=kdd"):
        KDDGANConfig(loss="hinge", augment_anchors=1)
    with pytest.raises(ValueError, match="need loss=kdd"):
        KDDGANConfig(loss="hinge", dagger=True)
    with pytest.raises(ValueError, match="loss must be"):
        KDDGANConfig(loss="wgan")
    with pytest.raises(ValueError, match="NoProj"):
        KDDGANConfig(projection=False)
    with pytest.raises(ValueError, match="use loss=hinge"):
        KDDGANConfig(loss="joint", gamma=0)
    assert KDDGAN(replace(SMOKE, dagger=True, augment_anchors=2)).bank.size == 3 * 8  # one D step's real features
    paper = PRESETS["paper"]
    assert (paper.batch_size, paper.steps, paper.feature_dim, paper.width) == (64, 100_000, 128, 64)


# fidelity to chapter 6: τ by the thesis' rule, L_Jac in D's input space, the normalised class projection


def test_tau_follows_the_thesis_rule():
    """Table 6.1 runs its unconditional KDD and Joint at τ = 0.05; section 6.3's τ = 1 is for the conditional ones."""
    from workbench.train.config import field_help

    for name, preset in PRESETS.items():
        assert preset.tau is None and preset.kernel_tau == 0.05, name  # every preset is unconditional
    conditional = replace(PRESETS["paper"], num_classes=10)  # decided when used, so a later --num-classes counts
    assert conditional.kernel_tau == 1.0
    assert replace(conditional, tau=0.2).kernel_tau == 0.2
    assert KDDGAN(replace(SMOKE, loss="kdd")).objective.kdd.tau == 0.05
    assert KDDGAN(replace(SMOKE, loss="kdd", tau=0.7)).objective.kdd.tau == 0.7
    help_text = field_help(KDDGANConfig)["tau"]
    assert "0.05 unconditional" in help_text and "1 with classes" in help_text
    with pytest.raises(ValueError, match="tau"):
        KDDGANConfig(tau=0.0)


def test_jacobian_is_measured_in_the_discriminators_input_space():
    """Eq. (6.17) where D sees the images, [−1, 1]: unit direction, δ and the target 1 in those units, not [0, 1]'s."""
    torch.manual_seed(0)
    method = KDDGAN(replace(SMOKE, loss="kdd", jac_weight=1e-5, jac_delta=1e-4))
    D = method.discriminator.double().eval()  # eval: no power iteration between the passes
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64)  # images in [0, 1]
    state = torch.get_rng_state()
    penalty = method.jacobian(x).item()
    torch.set_rng_state(state)
    direction = torch.randn_like(x)  # the same random direction, drawn in D's input space
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    _, change = torch.func.jvp(D.features_of_input, (D.to_input(x),), (direction,))  # (4, K) ∂φ̃/∂u · Δu
    stretch = change.norm(dim=1)  # (4,)
    assert penalty == pytest.approx((stretch - 1).abs().mean().item(), rel=1e-6)
    # in [0, 1] units every stretch doubles (u = 2x - 1): a different penalty
    assert abs(penalty - (2 * stretch - 1).abs().mean().item()) > 1e-2


def test_kdd_projection_switch():
    """The KDD log-ratio's class term is yᵀVφ on the normalised φ (thesis); 'unnormalised' is the named switch."""
    conditional = replace(SMOKE, loss="joint", num_classes=3)
    assert KDDGAN(conditional).objective.normalised_projection
    assert not KDDGAN(replace(conditional, kdd_projection="unnormalised")).objective.normalised_projection
    with pytest.raises(ValueError, match="kdd_projection"):
        KDDGANConfig(kdd_projection="raw")
