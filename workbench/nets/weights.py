"""Reading pretrained weights safely and strictly (official ``.pth`` files, timm/DINO state dicts).

Lives at the bottom of ``nets`` so that every network loads its weights without reaching up into
``train``; ``workbench.train.checkpoint`` re-exports these names next to the workbench's own
checkpoint format.

- :func:`weights_dir` / :func:`find_weights`: where weights are looked up by bare file name
  ($WORKBENCH_WEIGHTS, else ~/.cache/workbench).
- :func:`load_pth`: a third-party state dict through ``torch.load(weights_only=True)``, never
  running pickled code.
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
    if "Unsupported global" in text:
        refused = text[text.index("Unsupported global"):].split(" was not", 1)[0]
        return f"it holds Python objects besides tensors ({refused}), which weights-only loading refuses"
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
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"{path} cannot be read as plain weights: {_weights_only_failure(error)}") from error
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = sorted(obj) if isinstance(obj, dict) else []
            raise CheckpointError(f"{path} has no entry {key!r}; its top-level keys: {', '.join(map(str, keys))}")
        obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else [type(obj).__name__]
        raise CheckpointError(f"{path} is not a plain state dict (top-level: {', '.join(keys[:12])}); "
                              "pass key= to pick the entry holding the weights")
    return obj
