"""CPU seconds per training step (time.process_time, one torch thread) of the chapter notebooks' CPU configurations.

    OMP_NUM_THREADS=1 python scripts/notebook_step_costs.py perturbgan layered move kdd

Each model trains 3 warm-up steps, then 12 measured ones; prints one JSON line {name: CPU s per step}. The
notebooks' setup cells quote these figures multiplied by their step counts (measured on an AMD EPYC, 2 cores
shared with other jobs, load average about 15). CPU time is what the process itself used, so other jobs on the
machine inflate it far less than they inflate the wall clock.
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import dataclasses
import json
import time
import torch
torch.set_num_threads(1)
from workbench.train.trainer import Trainer
from workbench.train.device import seed_everything

def per_step(method, steps=12, warm=3):
    trainer = Trainer(method, out_dir=None, progress=False)
    trainer.fit(warm)
    start = time.process_time()
    trainer.fit(warm + steps)
    return (time.process_time() - start) / steps

out = {}
which = sys.argv[1:]
if "perturbgan" in which:
    from workbench.methods.perturbgan import PRESETS, PerturbGAN
    seed_everything(0)
    out["perturbgan small"] = per_step(PerturbGAN(PRESETS["small"], device="cpu"))
if "layered" in which:
    from workbench.methods.layered import PRESETS as L, LayeredGAN
    from workbench.methods.layered_post import PRESETS as P, PostSegmenter
    seed_everything(0)
    gan = LayeredGAN(dataclasses.replace(L["small"], setting="c"), device="cpu")
    out["layered small c"] = per_step(gan)
    out["layered-post small"] = per_step(PostSegmenter(P["small"], device="cpu", gan=gan))
if "move" in which:
    from workbench.methods.mae import MAEPretraining
    from workbench.methods.move import MOVE
    out["mae small"] = per_step(MAEPretraining(MAEPretraining.presets["small"], device="cpu"))
    out["move small bs8"] = per_step(MOVE(dataclasses.replace(MOVE.presets["small"], batch_size=8, mae_run=str(Path(__file__).resolve().parents[1] / "assets" / "move-small" / "mae")), device="cpu"))
if "kdd" in which:
    from workbench.methods.kdd_gan import KDDGAN
    for loss in ("hinge", "kdd"):
        c = dataclasses.replace(KDDGAN.presets["small"], loss=loss, num_workers=0)
        out[f"kdd_gan small {loss}"] = per_step(KDDGAN(c, device="cpu"))
print(json.dumps(out))
