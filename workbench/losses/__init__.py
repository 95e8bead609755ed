"""Adversarial losses as small classes with documented hyper-parameters (EDM style).

``WGANGP`` (eqs. 3.5/3.6), ``NonSaturatingR1`` (eqs. 4.5/4.6) and ``Hinge`` (eqs. 5.5/5.6, 6.2/6.3).
Each has ``discriminator(D, real, fake) -> (loss, stats)`` and ``generator(fake_logits) -> loss``.
"""

from workbench.losses.adversarial import WGANGP, Hinge, NonSaturatingR1

ADVERSARIAL_LOSSES = {"hinge": Hinge, "nonsaturating-r1": NonSaturatingR1, "wgan-gp": WGANGP}  # by config name

__all__ = ["ADVERSARIAL_LOSSES", "WGANGP", "Hinge", "NonSaturatingR1"]
