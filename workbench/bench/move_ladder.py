"""The diagnostic ladder of `bench move --ladder` (issue 19): where along MOVE's chain the signal is lost.

Each rung changes one link of the chain and is one row of the bench's table:

1. **oracle inpainter** (a diagnostic, not a method): b̂ is the renderer's true background inside
   m̂ (``--inpainter oracle``), so only the discriminator, the losses and the data can fail;
2. **self-trained MAE inpainter**: the bench's MOVE run itself (the ``small`` preset's MAE-tiny);
3. **head features**: the MAE-tiny encoder against the ImageNet EfficientNet-Lite0 trunk
   (``--features efficientnet``, an offline stand-in for DINO), at the same budget;
4. **no shift** (table 5.6): the bench's ablation row, which must collapse;
5. **supervised upper bound**: the same head on the same frozen features, trained on the true masks
   (BCE + Dice, the same crops and steps): what the head and features can reach at all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nets.segmenter import SegmenterHead

# rungs: (row name, extra argv of `train move`, run folder) beside the bench's own MOVE run

LADDER_RUNS = (
    ("ladder 1: oracle inpainter (true background; diagnostic)", ["--inpainter", "oracle"], "move-oracle"),
    ("ladder 3: EfficientNet-Lite0 head features", ["--features", "efficientnet"], "move-efficientnet"),
)


def other_features(features: str) -> str:
    """The head features of rung 3 that the preset does not use (mae <-> efficientnet)."""
    return "efficientnet" if features != "efficientnet" else "mae"


def ladder_runs(features: str) -> list[tuple[str, list[str], str]]:
    """The extra MOVE runs of the ladder for a preset whose head uses ``features``."""
    other = other_features(features)
    label = {"efficientnet": "EfficientNet-Lite0 (ImageNet)", "mae": "MAE-tiny encoder"}[other]
    return [LADDER_RUNS[0], (f"ladder 3: {label} head features", ["--features", other], f"move-{other}")]


# supervised upper bound (rung 5)


class SupervisedHead(nn.Module):
    """A fresh head of ``move``'s shape on ``move``'s frozen extractor, trained on the true masks.

    ``predict`` matches :meth:`MOVE.predict` (any image size, soft masks), so the bench scores it alike.
    """

    def __init__(self, move, *, seed: int = 0):
        super().__init__()
        c = move.config
        self.move = move
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = SegmenterHead(in_dim=move.extractor.embed_dim, patch_size=move.extractor.patch_size,
                                      width=c.head_width, conv_per_block=c.head_convs).to(move.device)

    def loss(self, batch: dict) -> torch.Tensor:
        """BCE + Dice of the head's mask against the true mask, on one random resized crop of both."""
        from workbench.ops import random_resized_crop
        from workbench.ops.mask_losses import dice_loss

        c = self.move.config
        both = torch.cat([batch["image"], batch["mask"]], dim=1).to(self.move.device)  # (B, 4, H, W)
        both = random_resized_crop(both, size=c.size, scale=c.crop_scale, ratio=c.crop_ratio)
        x, target = both[:, :3], (both[:, 3:] > 0.5).float()  # (B, 3, S, S), (B, 1, S, S)
        with torch.no_grad():
            features = self.move.extractor(x).float()  # (B, D, h, w)
        logits = self.head.logits(features)  # (B, 1, S, S)
        return F.binary_cross_entropy_with_logits(logits, target) + dice_loss(torch.sigmoid(logits), target)

    def fit(self, dataset, *, steps: int, batch_size: int, lr: float = 2e-4, seed: int = 0) -> list[float]:
        """Adam on BCE + Dice for ``steps`` batches drawn from ``dataset``; returns the losses."""
        g = torch.Generator().manual_seed(seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=g, drop_last=True)
        opt = torch.optim.Adam(self.head.parameters(), lr=lr, betas=(0.9, 0.95))
        self.head.train()
        losses: list[float] = []
        while len(losses) < steps:
            for batch in loader:
                loss = self.loss(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                if len(losses) >= steps:
                    break
        self.head.eval()
        return losses

    @torch.no_grad()
    def predict(self, x01: torch.Tensor) -> torch.Tensor:
        """Soft masks (B, 1, H, W) of images (B, 3, H, W) in [0, 1]."""
        return self.move.predict(x01, head=self.head)


def train_supervised(move, *, dataset: str, steps: int, batch_size: int, seed: int) -> SupervisedHead:
    """Rung 5: a supervised head on the frozen features of the trained MOVE method ``move``."""
    from workbench.data import build_dataset

    data = build_dataset(dataset, size=move.config.size, split="train", seed=seed)
    supervised = SupervisedHead(move, seed=seed)
    supervised.fit(data, steps=steps, batch_size=batch_size, seed=seed)
    return supervised.eval()


# pictures


@torch.no_grad()
def ladder_picture(rows: dict[str, object], dataset, *, n: int = 8):
    """The masks of each method in ``rows`` (name -> object with ``predict``) on the first ``n`` scenes of ``dataset``.

    Returns (picture uint8 (R·S + gaps, n·S + gaps, 3), row names): the images, the true masks, then one row per method.
    """
    import numpy as np

    from workbench.methods.base import tile_rows

    items = [dataset[i] for i in range(min(n, len(dataset)))]
    x = torch.stack([item["image"] for item in items])  # (N, 3, S, S)
    grid = [x, torch.stack([item["mask"] for item in items]).expand(-1, 3, -1, -1)]
    for method in rows.values():
        grid.append(method.predict(x).cpu().expand(-1, 3, -1, -1))  # (N, 3, S, S) soft masks
    picture = tile_rows(grid)[0].clamp(0, 1).permute(1, 2, 0).numpy()  # (H', W', 3)
    return (np.round(picture * 255)).astype(np.uint8), ["image", "true mask", *rows]


def save_ladder_picture(path: str | Path, rows: dict[str, object], dataset, *, n: int = 8, scale: int = 2) -> Path:
    """Write :func:`ladder_picture` as a PNG (nearest-neighbour enlarged ``scale``x), with its row names in a .txt."""
    import cv2

    picture, names = ladder_picture(rows, dataset, n=n)
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    path.with_suffix(".txt").write_text("rows, top to bottom: " + "; ".join(names) + "\n")
    return path
