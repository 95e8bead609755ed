"""Config dataclasses as JSON: written beside every checkpoint, read back with every key checked.

Configs are saved as JSON, never pickled. :func:`config_from_dict` turns lists back into tuples,
ints into floats where the field is a float, and refuses unknown keys and wrong types. The
command-line side (one ``--flag`` per field) is :mod:`workbench.train.config`.

This module needs only the standard library, so that methods (which read the configs of the runs
they build on) and the checkpoint format can use it below the training loop.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

# classes


class ConfigError(ValueError):
    """A config that cannot be read back: unknown keys, wrong types, a missing preset."""


# helpers


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """A JSON value back to the field's type (lists to tuples), checking what can be checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field {name!r} should be a list, got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"config field {name!r} should be {hint.__name__}, got {value!r}")
    return value


# functions


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (tuples become lists)."""

    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(cls: type, data: dict[str, Any], *, source: str = "the config") -> Any:
    """Dataclass ``cls`` from a dict written by :func:`config_to_dict`; unknown keys are an error.

    Keys the dict lacks (fields added since it was written) take the value ``cls.LEGACY_DEFAULTS``
    gives them, when it names them (how the method behaved before the field existed), else the
    dataclass defaults.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source} is damaged: the config is a JSON {type(data).__name__}, not an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source} has fields that {cls.__name__} does not know: {', '.join(unknown)}")
    legacy = {k: v for k, v in getattr(cls, "LEGACY_DEFAULTS", {}).items() if k in names and k not in data}
    values = {k: _coerce(k, hints[k], v) for k, v in {**legacy, **data}.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source} is not a valid {cls.__name__}: {error}") from error
