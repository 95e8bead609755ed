"""Reading pretrained weights safely and strictly (official ``.pth`` files, timm/DINO state dicts).

Lives at the bottom of ``nets`` so that every network loads its weights without reaching up into
``train``; ``workbench.train.checkpoint`` re-exports these names next to the workbench's own
checkpoint format.

- :func:`weights_dir` / :func:`find_weights`: where weights are looked up by bare file name
  ($WORKBENCH_WEIGHTS, else ~/.cache/workbench).
- :func:`load_pth`: a third-party state dict through ``torch.load(weights_only=True)``, never
  running pickled code.
- :func:`read_state_file`: ``.safetensors`` or ``.pth``, every failure a :class:`CheckpointError`.
- :func:`load_state_dict_strict`: ``load_state_dict`` that first names every missing, unexpected
  or mis-shaped key.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

# classes


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here: missing, of another method, or not matching the modules."""


class StateDictMismatchError(CheckpointError):
    """A state dict whose keys or shapes differ from the module's; the message lists them."""



# helpers


def _weights_only_failure(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file pickled)."""
    text = str(error)
    lowered = text.lower()
    start = lowered.find("unsupported global")  # torch's words for a pickled function or class (GLOBAL opcode)
    if start >= 0:
        what = " (" + text[start:].split(" whose", 1)[0].split(" was not", 1)[0].splitlines()[0].strip() + ")"
        return (f"it contains code or Python objects that are not plain tensors{what}; it was refused for "
                "safety and nothing in it was run")
    return f"not a PyTorch weights file, or a corrupt or truncated one ({type(error).__name__})"


def weights_dir() -> Path:
    """Where the workbench looks for pretrained weights by file name: $WORKBENCH_WEIGHTS or ~/.cache/workbench."""
    return Path(os.environ.get("WORKBENCH_WEIGHTS", Path.home() / ".cache" / "workbench")).expanduser()


def find_weights(path: str | Path) -> Path | None:
    """``path`` when it exists, else a bare file name found in :func:`weights_dir`; ``None`` when neither."""
    path = Path(path).expanduser()
    if path.exists():
        return path
    if len(path.parts) == 1 and (weights_dir() / path).exists():
        return weights_dir() / path
    return None


# functions


def load_state_dict_strict(module: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``module.load_state_dict(state)``, after naming every missing, unexpected or mis-shaped key."""
    state = _string_keys(state, source=source)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:

        def listed(keys):
            return ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")

        parts = [f"missing keys: {listed(missing)}" if missing else "",
                 f"unexpected keys: {listed(unexpected)}" if unexpected else "",
                 f"shape mismatches (file vs module): {listed(shapes)}" if shapes else ""]
        raise StateDictMismatchError(f"{source} does not fit {type(module).__name__}: " + "; ".join(p for p in parts if p))
    module.load_state_dict(state, strict=True)



def load_pth(path: str | Path, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """A third-party ``.pth`` state dict, read with ``torch.load(..., weights_only=True)``.

    ``key`` picks an entry of a wrapped checkpoint (e.g. ``"model"`` in MAE's files).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, TypeError, AttributeError,
            IndexError, OverflowError, MemoryError, UnicodeDecodeError) as error:  # what a hostile file can raise
        raise CheckpointError(f"{path} cannot be read as plain weights: {_weights_only_failure(error)}") from error
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = sorted(map(str, obj)) if isinstance(obj, dict) else []
            raise CheckpointError(f"{path} has no entry {key!r}; its top-level keys: {', '.join(keys) or 'none'}")
        obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else [type(obj).__name__]
        raise CheckpointError(f"{path} is not a plain state dict (top-level: {', '.join(keys[:12])}); "
                              "pass key= to pick the entry holding the weights")
    return _string_keys(obj, source=path)


def _string_keys(state: dict, *, source: str | Path) -> dict[str, torch.Tensor]:
    """``state`` when every key is a parameter name (a string); a CheckpointError otherwise."""
    odd = [k for k in state if not isinstance(k, str)]
    if odd:
        shown = ", ".join(repr(k) for k in odd[:5])
        raise CheckpointError(f"{source} is not a state dict of named parameters: it has keys that are not "
                              f"strings ({shown}{', ...' if len(odd) > 5 else ''})")
    return state


def read_state_file(path: str | Path, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: ``.safetensors`` (safetensors' own reader) or a ``.pth`` /
    ``.pt`` / ``.bin`` through :func:`load_pth`. Every way the file can be wrong (missing, empty,
    truncated, a huge or damaged header, pickled code, not a state dict) is a
    :class:`CheckpointError` or ``FileNotFoundError`` naming the file; nothing in it is run."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_pth(path, key=key)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, MemoryError, OverflowError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file (empty, truncated or damaged: "
                              f"{reason})") from error
    return _string_keys(state, source=path)
