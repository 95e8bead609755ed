"""Can chapter 3's discriminator see the ghost a shift reveals? A supervised upper bound (issue 16's ladder).

    python scripts/ghost_capacity.py --preset anywhere --steps 1500 --width 16

Trains a fresh StyleGAN discriminator (:class:`workbench.nets.stylegan.StyleDiscriminator`, the
PerturbGAN ``small`` widths by default) with the logistic loss to tell real scenes (label real) from
composites of their true layers that a wrong layering would leave (label fake): the object moved
with the original left in place (``duplicate``) and a patch of background moved by another scene's
mask (``wrong_mask``), from :func:`workbench.eval.separation.ghost_composites` on the training
split. Every ``--every`` steps it prints the AUC of real against each kind of composite on held-out
test scenes (``moved``, the object moved over its empty background, is not trained on: real by the
movability principle). No generator is involved: this is how well, and how fast, the architecture
can learn the cue when it is the only one.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from workbench.eval.separation import ghost_composites, ranking_auc
from workbench.nets.stylegan import StyleDiscriminator


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="anywhere", help="synthetic scene preset")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--max-shift", type=float, default=0.125, help="δ as a fraction of the resolution")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=16, help="D channels at full resolution (small: 16)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    common = dict(preset=args.preset, resolution=args.resolution, max_shift=args.max_shift, seed=args.seed)
    train = ghost_composites(**common, split="train", n=args.n_train)  # each (n, 3, R, R) in [0, 1]
    test = ghost_composites(**common, n=args.n_test)
    D = StyleDiscriminator(resolution=args.resolution, width=args.width, max_width=128)
    opt = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.0, 0.99))
    half = args.batch_size // 2
    rows = []
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                logits = {k: D(v * 2 - 1).flatten().numpy() for k, v in test.items()}  # (n_test,) each
            row = {"step": step, **{f"auc_{k}": round(ranking_auc(logits["real"], logits[k]), 4)
                                    for k in ("duplicate", "wrong_mask", "moved")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if step == args.steps:
            break
        i = torch.randint(0, args.n_train, (args.batch_size,))
        real = train["real"][i] * 2 - 1  # (B, 3, R, R)
        ghost = torch.cat([train["duplicate"][i[:half]], train["wrong_mask"][i[half:]]]) * 2 - 1
        loss = F.softplus(-D(real)).mean() + F.softplus(D(ghost)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(f"minutes {(time.perf_counter() - start) / 60:.1f}")
    return rows


if __name__ == "__main__":
    main()
