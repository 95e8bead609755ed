"""MOVE checkpoint bundles: a MOVE checkpoint together with the MAE it was trained through (chapter 5).

A MOVE checkpoint saves only what MOVE trains (the segmenter head, its EMA and the
discriminator); its config names the frozen MAE by the path of a ``train mae`` run (``mae_run``).
A *bundle* puts both in one folder, so that it can be moved, shipped and loaded from anywhere::

    move-small/
      mae/    config.json  state.json  modules.safetensors                  the frozen MAE (train mae)
      move/   config.json  state.json  modules.safetensors  ema.safetensors  head, D (train move)
      metrics.json                                                          scores on the synthetic test split

The bundle's checkpoints hold weights only (no optimizer or RNG state: they load, they do not
resume), and the MAE's weights may be stored in float16 to halve the download. The repository
ships one, :data:`SHIPPED_MOVE` (``assets/move-small``), which the app loads on first launch;
``scripts/export_move_asset.py`` makes it from two training runs.

A relative ``mae_run`` is looked for in the working directory, then against every folder above
the checkpoint (``MOVE.linked_runs``), so both ``load_move("assets/move-small")`` and ``python -m
workbench predict move --checkpoint assets/move-small/move`` work from any working directory.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from workbench.methods.move import MOVE

__all__ = ["SHIPPED_MOVE", "export_move_bundle", "export_weights_only", "load_move", "resolve_mae_run"]

SHIPPED_MOVE = Path(__file__).resolve().parents[2] / "assets" / "move-small"  # the repository's bundle
MAKE_SHIPPED = "scripts/export_move_asset.py (see assets/move-small/README.md)"  # how to remake it

# helpers


def _checkpoint_of(path: Path) -> Path:
    """The MOVE checkpoint folder that ``path`` names: a bundle's ``move/``, a checkpoint or a run folder."""
    from workbench.checkpoint import find_checkpoint

    return find_checkpoint(path / "move" if (path / "move").is_dir() else path)


def resolve_mae_run(mae_run: str | Path, *, checkpoint: Path) -> Path:
    """The ``train mae`` folder that a MOVE checkpoint's ``mae_run`` names.

    Tried in order: the path as given (absolute, or relative to the working directory), then
    relative to each folder above ``checkpoint`` (:func:`~workbench.checkpoint.find_linked_path`).
    FileNotFoundError says where it looked.
    """
    from workbench.checkpoint import find_linked_path

    found = find_linked_path(mae_run, checkpoint=checkpoint)
    if found is None:
        raise FileNotFoundError(f"the MAE run {mae_run} of the MOVE checkpoint {checkpoint} was not found; "
                                f"looked in: {mae_run} and under every folder above {Path(checkpoint).resolve()}")
    return found.resolve()


def _copy_weights(source: Path, target: Path, *, name: str, half: bool) -> None:
    """Copy a safetensors file, with floating tensors as float16 when ``half``."""
    from safetensors.torch import load_file, save_file

    if not half:
        shutil.copyfile(source, target)
        return
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(source)).items()}
    save_file(tensors, str(target), metadata={"method": name, "dtype": "float16"})


def export_weights_only(source: Path, target: Path, *, config: dict, half: bool) -> None:
    """Write the weights-only copy of checkpoint ``source``: config, step, method state, modules, EMA."""
    from workbench.checkpoint import CONFIG_FILE, EMA_FILE, MODULES_FILE, STATE_FILE

    target.mkdir(parents=True)
    state = json.loads((source / STATE_FILE).read_text())
    kept = {"step": state.get("step", 0), "method_state": state.get("method_state", {}), "weights_only": True}
    (target / STATE_FILE).write_text(json.dumps(kept, indent=1))
    (target / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    for file in (MODULES_FILE, EMA_FILE):
        if (source / file).is_file():
            _copy_weights(source / file, target / file, name=config["method"], half=half)


# functions


def load_move(path: str | Path = SHIPPED_MOVE, *, device: str | torch.device = "cpu") -> "MOVE":
    """A trained MOVE in evaluation mode, with its EMA head, from a bundle, a checkpoint or a run folder.

    The frozen MAE comes from the checkpoint's ``mae_run``, found by :func:`resolve_mae_run`.
    Raises FileNotFoundError (nothing at ``path``, or its MAE missing) or
    :class:`~workbench.checkpoint.CheckpointError` (not a MOVE checkpoint, damaged files).
    """
    from workbench.methods.move import MOVE
    from workbench.checkpoint import CONFIG_FILE, method_from_checkpoint, read_checkpoint
    from workbench.config import config_from_dict

    path = Path(path).expanduser()
    if not path.exists():
        hint = f" Remake it with {MAKE_SHIPPED}." if path.resolve() == SHIPPED_MOVE else ""
        raise FileNotFoundError(f"no MOVE checkpoint at {path}.{hint}")
    checkpoint = read_checkpoint(_checkpoint_of(path), method=MOVE.name)
    config = config_from_dict(MOVE.Config, checkpoint.config, source=f"{checkpoint.path}/{CONFIG_FILE}")
    if config.mae_run is not None:
        config = replace(config, mae_run=str(resolve_mae_run(config.mae_run, checkpoint=checkpoint.path)))
    return method_from_checkpoint(checkpoint, MOVE, config, device=device)


def export_move_bundle(*, move_run: str | Path, mae_run: str | Path | None = None, out: str | Path,
                       half_mae: bool = True) -> Path:
    """Write a self-contained bundle (see the module docstring) from a ``train move`` run and its MAE.

    Args:
        move_run: a MOVE checkpoint or run folder (its newest checkpoint is taken).
        mae_run: the ``train mae`` checkpoint or run folder; default: the one MOVE's config names.
        out: the bundle folder; it must not exist yet.
        half_mae: store the MAE's weights as float16 (half the size; they load into float32).
    Returns:
        ``out``. The bundled MOVE config names its MAE as ``out/mae`` relative to the working
        directory when ``out`` lies inside it (else absolutely).
    """
    from workbench.methods.move import MOVE
    from workbench.checkpoint import find_checkpoint, read_checkpoint

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it first or choose another folder")
    move = read_checkpoint(move_run, method=MOVE.name)
    if mae_run is None:
        if move.config.get("mae_run") is None:
            raise ValueError(f"{move.path} uses no `train mae` run (mae_run is None); nothing to bundle")
        mae_run = resolve_mae_run(move.config["mae_run"], checkpoint=move.path)
    mae = read_checkpoint(find_checkpoint(mae_run), method="mae")
    relative = os.path.relpath((out / "mae").resolve())
    mae_path = (out / "mae").resolve() if relative.startswith("..") else Path(relative)
    record = json.loads((move.path / "config.json").read_text())
    record["config"]["mae_run"] = mae_path.as_posix()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        export_weights_only(mae.path, tmp / "mae", config=json.loads((mae.path / "config.json").read_text()),
                           half=half_mae)
        export_weights_only(move.path, tmp / "move", config=record, half=False)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
