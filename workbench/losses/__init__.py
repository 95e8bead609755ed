"""Adversarial losses as small classes with documented hyper-parameters (EDM style).

``WGANGP`` (eqs. 3.5/3.6), ``NonSaturatingR1`` (eqs. 4.5/4.6) and ``Hinge`` (eqs. 5.5/5.6, 6.2/6.3).
Each has ``discriminator(D, real, fake) -> (loss, stats)`` and ``generator(fake_logits) -> loss``.
``KDD`` (eqs. 6.5-6.9) and ``Joint`` (eq. 6.18) work on discriminator features instead of logits.
"""

from workbench.losses.adversarial import WGANGP, Hinge, NonSaturatingR1
from workbench.losses.kdd import KDD, FeatureBank, Joint, jacobian_penalty, kde_log_density

ADVERSARIAL_LOSSES = {"hinge": Hinge, "nonsaturating-r1": NonSaturatingR1, "wgan-gp": WGANGP}  # by config name

__all__ = ["ADVERSARIAL_LOSSES", "KDD", "WGANGP", "FeatureBank", "Hinge", "Joint", "NonSaturatingR1", "jacobian_penalty",
           "kde_log_density"]
