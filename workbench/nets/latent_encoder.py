"""The encoder E of section 3.2.3: an image -> the style codes of a layered generator.

A randomly initialised ResNet-18 (timm) without its average pooling, flattened, and one
fully-connected layer that outputs one ``w_dim`` code per AdaIN layer of each generator (the
thesis: 5 scales · 2 AdaIN layers · 2 generators = 20 codes of 512 at 64 px, an FC of 10,240
outputs). The codes are predicted as offsets from the generator's mean styles w̄, so that an
untrained encoder already decodes to an average scene (a workbench choice that the thesis
does not state; it changes the starting point, not the model).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LatentEncoder"]


class LatentEncoder(nn.Module):
    """ResNet-18 trunk + FC: (B, 3, R, R) in [0, 1] -> style codes (B, num_ws, w_dim)."""

    def __init__(self, *, resolution: int, num_ws: int, w_dim: int, backbone: str = "resnet18"):
        super().__init__()
        import timm

        self.trunk = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool="")
        side = max(1, -(-resolution // 32))  # the trunk's output side: stride 32, ceil
        self.num_ws, self.w_dim, self.resolution = num_ws, w_dim, resolution
        self.fc = nn.Linear(self.trunk.num_features * side * side, num_ws * w_dim)
        nn.init.zeros_(self.fc.bias)
        self.fc.weight.data.mul_(0.1)  # start near the mean styles
        self.register_buffer("mean_styles", torch.zeros(num_ws, w_dim))

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        if x01.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"the encoder takes {self.resolution}×{self.resolution} images, got {tuple(x01.shape[-2:])}")
        h = self.trunk(x01 * 2 - 1).flatten(1)  # (B, 512·s·s)
        return self.mean_styles + self.fc(h).view(-1, self.num_ws, self.w_dim)  # (B, num_ws, w_dim)
