"""Checkpoints: safetensors for tensors, JSON for everything else; never pickles.

A checkpoint is a folder, written whole into a temporary folder and then renamed, so that a crash
never leaves a half-written checkpoint and never harms an older one::

    step-0001000/
      config.json          {"method": "dcgan", "config": {...}, "format": 1, "workbench": "0.1.0"}
      modules.safetensors  every saved module of the method, keys "<module>.<parameter>"
      ema.safetensors      the EMA copies, same keys (only when the method keeps an EMA)
      state.safetensors    optimizer tensors "optimizer.<name>.<index>.<key>", RNG states "rng.<rank>.<kind>"
      state.json           step, data position, optimizer hyper-parameters and counters,
                           numpy/python RNG states, the method's extra state

Third-party weights (``.pth`` files of MAE, DINO) are read by :func:`load_pth` with
``torch.load(..., weights_only=True)``; :func:`load_state_dict_strict` loads any state dict and
names every missing, unexpected or mis-shaped key instead of loading silently.

This module knows the method protocol (``workbench/methods/base.py``) but no method: it sits below
``workbench.methods``, so a method can load the run it builds on (:func:`load_method_as`). Loading
a checkpoint of any method by the name it records needs the registry: ``workbench.train.load_method``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from workbench.config import config_from_dict, config_to_dict
from workbench.device import pick_device
from workbench.nets.ema import ema_copy
from workbench.nets.weights import CheckpointError, StateDictMismatchError, load_pth, load_state_dict_strict

if TYPE_CHECKING:
    from workbench.methods.base import Method

FORMAT = 1  # version of the folder layout above
CONFIG_FILE, STATE_FILE = "config.json", "state.json"
LOCK_FILE = ".lock"  # in a run folder: locked (flock) by the process that trains it
MODULES_FILE, EMA_FILE, TENSORS_FILE = "modules.safetensors", "ema.safetensors", "state.safetensors"

# classes


@dataclass
class Checkpoint:
    """A checkpoint folder read back: its method, config and JSON state; tensors on demand."""

    path: Path
    method: str  # name of the method that wrote it
    config: dict[str, Any]  # the config as JSON
    state: dict[str, Any]  # state.json

    def tensors(self, file: str = MODULES_FILE) -> dict[str, torch.Tensor]:
        """The tensors of one of the safetensors files.

        Only the EMA file may be absent (a method without an EMA), which gives ``{}``; a missing
        modules or state file, or one that is not valid safetensors, is a :class:`CheckpointError`.
        """
        path = self.path / file
        if not path.is_file():
            if file == EMA_FILE:
                return {}
            raise CheckpointError(f"{self.path} is incomplete: it has no {file}")
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or cut short): {error}") from error

    def module_state(self, name: str, *, ema: bool = False) -> dict[str, torch.Tensor]:
        """The state dict of module ``name`` (of its EMA with ``ema=True``)."""
        tensors = self.tensors(EMA_FILE if ema else MODULES_FILE)
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            kind = "EMA of" if ema else "module"
            names = sorted({k.split(".", 1)[0] for k in tensors})
            raise CheckpointError(f"{self.path} has no {kind} {name!r}; it has: {', '.join(names) or 'none'}")
        return state


class RunInUseError(CheckpointError):
    """The run folder is locked by another training process."""


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock``, held while a process trains the run; :meth:`release` ends it.

    The operating system drops the lock when the process dies (even on kill -9), so a stale lock
    file never blocks a later resume. Where ``fcntl`` does not exist (Windows) nothing is locked.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # no flock on this platform
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            self.release()
            raise RunInUseError(f"{self.folder} is being trained by another process"
                                f"{f' (pid {owner})' if owner.isdigit() else ''}: two processes must not write one "
                                "run. Wait for it to finish (or stop it), then resume.") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock (closing the file unlocks it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.release()


def remove_orphans(run: str | Path) -> list[Path]:
    """Delete the temporary checkpoint folders (``.step-N.tmp-PID``, ``.step-N.old``) that a process killed
    while writing a checkpoint left in ``run/checkpoints``; returns them. Call it only while holding
    the run's :class:`RunLock` (no other process can be writing one then)."""
    folder = Path(run) / "checkpoints"
    removed = []
    if folder.is_dir():
        for orphan in sorted(folder.glob(".step-*")):
            if orphan.is_dir() and (".tmp-" in orphan.name or orphan.name.endswith(".old")):
                shutil.rmtree(orphan, ignore_errors=True)
                removed.append(orphan)
    return removed


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: a crash at
    any moment leaves either the old file or the new one, never a truncated one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# helpers


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy that shares memory with nothing (safetensors refuses shared tensors)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def _flatten_state(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": _plain(v) for k, v in state.items()}


def optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state dict split into tensors (for safetensors) and the rest (for JSON)."""
    full = optimizer.state_dict()
    tensors, per_param = {}, {}
    for index, entry in full["state"].items():
        rest = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{name}.{index}.{key}"] = _plain(value)
            else:
                rest[key] = value
        per_param[str(index)] = rest
    for group in full["param_groups"]:
        for key, value in group.items():
            if torch.is_tensor(value):
                raise CheckpointError(f"optimizer {name!r} has a tensor hyper-parameter {key!r}; use a float")
    return tensors, {"param_groups": full["param_groups"], "state": per_param}


def load_optimizer_state(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         saved: dict, *, source: str) -> None:
    """Restore what :func:`optimizer_state` split, with the hyper-parameters' types of ``optimizer``."""
    current = optimizer.state_dict()["param_groups"]
    if len(current) != len(saved["param_groups"]):
        raise CheckpointError(f"{source}: optimizer {name!r} has {len(saved['param_groups'])} parameter groups, "
                              f"the new one {len(current)}")
    groups = []
    for now, old in zip(current, saved["param_groups"]):
        if len(now["params"]) != len(old["params"]):
            raise CheckpointError(f"{source}: optimizer {name!r} was saved for {len(old['params'])} parameters, "
                                  f"the new one has {len(now['params'])}; did the model change?")
        groups.append({k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in old.items()})
    state: dict[int, dict] = {int(i): dict(rest) for i, rest in saved["state"].items()}
    prefix = f"optimizer.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{source}: cannot restore optimizer {name!r}: {error}") from error


def rng_state(device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states: torch CPU and the accelerator's as tensors, numpy and python as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        tensors["mps"] = torch.mps.get_rng_state()
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    version, internal, gauss = random.getstate()
    return tensors, {"numpy": np_state, "python": [version, list(internal), gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], saved: dict[str, Any], device: torch.device) -> None:
    """Undo :func:`rng_state`."""
    torch.set_rng_state(tensors["torch"])
    if device.type == "cuda" and "cuda" in tensors:
        torch.cuda.set_rng_state(tensors["cuda"], device)
    elif device.type == "mps" and "mps" in tensors:
        torch.mps.set_rng_state(tensors["mps"])
    np_state = dict(saved["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.asarray(np_state["state"]["key"], dtype=np.uint32))
    np.random.set_state(np_state)
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))


def step_of(path: Path) -> int:
    """The step of a ``step-NNNNNNN`` checkpoint folder (-1 for other names)."""
    _, _, digits = path.name.partition("-")
    return int(digits) if digits.isdigit() else -1


def _replace_folder(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing an older ``path`` only once ``tmp`` is whole."""
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


# functions


def method_record(method: "Method") -> dict[str, Any]:
    """What ``config.json`` holds: the method's name and config."""
    from workbench import __version__

    return {"method": method.name, "config": config_to_dict(method.config), "format": FORMAT, "workbench": __version__}


def write_checkpoint(path: str | Path, *, method: "Method", state: dict[str, Any] | None = None,
                     tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``method`` (modules, EMA, optimizers, extra state) plus a caller's ``state``/``tensors``.

    The folder appears at ``path`` only once it is complete (temporary folder + rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        modules = {}
        for name, module in method.modules().items():
            modules.update(_flatten_state(f"{name}.", module.state_dict()))
        save_file(modules, str(tmp / MODULES_FILE), metadata={"method": method.name})
        if method.ema:
            ema = {}
            for name, module in method.ema.items():
                ema.update(_flatten_state(f"{name}.", module.state_dict()))
            save_file(ema, str(tmp / EMA_FILE), metadata={"method": method.name})
        all_tensors = {k: _plain(v) for k, v in (tensors or {}).items()}
        optimizers = {}
        for name, optimizer in method.optimizers().items():
            opt_tensors, optimizers[name] = optimizer_state(name, optimizer)
            all_tensors.update(opt_tensors)
        save_file(all_tensors, str(tmp / TENSORS_FILE))
        full_state = {**(state or {}), "optimizers": optimizers, "method_state": method.extra_state()}
        (tmp / STATE_FILE).write_text(json.dumps(full_state, indent=1))
        (tmp / CONFIG_FILE).write_text(json.dumps(method_record(method), indent=2))
        _replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder ``path`` names: itself, or the newest under ``path/checkpoints``."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file() and (path / STATE_FILE).is_file():
        return path
    folder = path / "checkpoints"
    found = sorted(folder.glob("step-*"), key=step_of) if folder.is_dir() else []
    found = [p for p in found if step_of(p) >= 0 and (p / STATE_FILE).is_file()]
    if not found:
        raise CheckpointError(f"no checkpoint at {path}: expected a checkpoint folder (with {CONFIG_FILE} and "
                              f"{STATE_FILE}) or a run folder with checkpoints/step-*")
    return found[-1]


def read_checkpoint(path: str | Path, *, method: str | None = None) -> Checkpoint:
    """Read a checkpoint (folder or run folder); with ``method``, insist that this method wrote it."""
    path = find_checkpoint(path)
    try:
        record = json.loads((path / CONFIG_FILE).read_text())
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error
    for name, value in ((CONFIG_FILE, record), (STATE_FILE, state)):
        if not isinstance(value, dict):
            raise CheckpointError(f"{path}/{name} is damaged: it holds a JSON {type(value).__name__}, not an object")
    if not isinstance(record.get("config"), dict):
        raise CheckpointError(f"{path}/{CONFIG_FILE} is damaged: its 'config' entry is missing or not an object")
    if record.get("format") != FORMAT or "method" not in record:
        raise CheckpointError(f"{path} has checkpoint format {record.get('format')!r}; this workbench reads {FORMAT}")
    if method is not None and record["method"] != method:
        raise CheckpointError(f"{path} is a checkpoint of method {record['method']!r}, not {method!r}; "
                              f"train or load it as {record['method']!r}")
    return Checkpoint(path=path, method=record["method"], config=record["config"], state=state)


def load_method_weights(method: "Method", checkpoint: Checkpoint) -> None:
    """Load the checkpoint's modules, and its EMA copies when the method keeps them, into ``method``."""
    for name, module in method.modules().items():
        load_state_dict_strict(module, checkpoint.module_state(name), source=f"{checkpoint.path} module {name!r}")
    for name, average in method.ema.items():
        load_state_dict_strict(average, checkpoint.module_state(name, ema=True), source=f"{checkpoint.path} EMA {name!r}")


def load_method_as(cls: type["Method"], path: str | Path, *, device: str | torch.device = "cpu") -> "Method":
    """The trained method of class ``cls`` in a checkpoint (or a run's newest), in evaluation mode, with its
    EMA copies; paths to other runs in its config are found by :func:`resolve_linked_runs`.

    A checkpoint written by another method is a :class:`CheckpointError`.
    """
    checkpoint = read_checkpoint(path, method=cls.name)
    config = config_from_dict(cls.Config, checkpoint.config, source=f"{checkpoint.path}/{CONFIG_FILE}")
    return method_from_checkpoint(checkpoint, cls, resolve_linked_runs(cls, config, checkpoint=checkpoint.path),
                                  device=device)


def find_linked_path(path: str | Path, *, checkpoint: str | Path) -> Path | None:
    """Where a relative path recorded in a checkpoint's config is: as given (absolute, or relative to
    the working directory), else relative to the nearest folder above ``checkpoint`` that holds it;
    None when found nowhere. So that a run naming ``assets/move-small/mae`` loads from any directory."""
    path = Path(path).expanduser()
    if path.exists():
        return path
    if not path.is_absolute():
        for folder in Path(checkpoint).resolve().parents:
            if (folder / path).exists():
                return folder / path
    return None


def resolve_linked_runs(cls: type["Method"], config: Any, *, checkpoint: str | Path) -> Any:
    """``config`` with each of ``cls.linked_runs`` (paths of other runs) found by :func:`find_linked_path`;
    a path found nowhere is left as it is, for the method to report."""
    found = {}
    for field in cls.linked_runs:
        value = getattr(config, field)
        if value and (path := find_linked_path(value, checkpoint=checkpoint)) is not None:
            found[field] = str(path)
    return replace(config, **found) if found else config


def method_from_checkpoint(checkpoint: Checkpoint, cls: type["Method"], config: Any, *,
                           device: str | torch.device = "cpu") -> "Method":
    """``cls(config)`` with the checkpoint's weights, EMA copies, step and extra state, in evaluation mode.

    ``config`` is the checkpoint's config, possibly adjusted by the caller (e.g. a path resolved).
    """
    instance = cls(config, device=pick_device(device))
    ema_names = {k.split(".", 1)[0] for k in checkpoint.tensors(EMA_FILE)}
    instance.ema = {name: ema_copy(instance.module(name)) for name in instance.ema_betas if name in ema_names}
    load_method_weights(instance, checkpoint)
    instance.step = int(checkpoint.state.get("step", 0))
    instance.load_extra_state(checkpoint.state.get("method_state", {}))
    return instance.eval()
