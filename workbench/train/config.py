"""Config dataclasses on the command line and in JSON.

Every field of a config dataclass becomes a ``--flag`` of its type; its help is the field's
``metadata["help"]`` or, EDM style, the one-line comment after the field in the source::

    lr: float = 2e-4  # Adam learning rate        ->   --lr FLOAT   Adam learning rate (default: 0.0002)

Flags accept dashes or underscores (``--batch-size`` = ``--batch_size``). Only the flags a user
gives are applied, on top of a base config (a preset, or the config of a resumed checkpoint).
Configs are saved as JSON, never pickled; reading one back checks every key (:mod:`workbench.config`,
whose names this module re-exports).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from typing import Any, Literal

from workbench.config import ConfigError, config_from_dict, config_to_dict  # the JSON side, re-exported here

__all__ = ["ConfigError", "add_config_arguments", "config_from_dict", "config_overrides", "config_to_dict",
           "field_help", "normalize_flags", "preset_summary"]

# helpers

_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")


def field_help(cls: type) -> dict[str, str]:
    """Help text per field: ``metadata["help"]``, else the trailing comment in the class source."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = _COMMENT.match(line)
            if match:
                helps[match.group(1)] = match.group(2)
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            helps[f.name] = f.metadata["help"]
    return helps


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _optional(parse):
    def parse_or_none(text: str):
        return None if text.lower() == "none" else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def _argument(name: str, hint: Any) -> dict[str, Any]:
    """argparse keywords for a field of type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            kwargs = _argument(name, inner[0])
            kwargs["type"] = _optional(kwargs.get("type", str))
            kwargs.pop("action", None)
            return kwargs
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if hint in (int, float, str):
        return {"type": hint, "metavar": hint.__name__.upper()}
    if origin is Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": args[0], "nargs": "+", "metavar": args[0].__name__.upper()}
        if len(set(args)) == 1:
            return {"type": args[0], "nargs": len(args), "metavar": args[0].__name__.upper()}
    raise TypeError(f"config field {name!r} has type {hint!r}, which the command line cannot express")


def _flag_value(value: Any) -> str:
    """A config value as the command line spells it (tuples as space-separated items)."""
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


# functions


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, *, defaults: Any,
                         groups: dict[type, str] | None = None, reference: Any = None,
                         reference_name: str = "paper") -> None:
    """Add one ``--flag`` per field of dataclass ``cls``; the help shows the value in ``defaults``.

    With ``reference`` (another preset's config, e.g. ``paper``), a field whose value differs
    there shows both: ``(default: 1500; paper: 26382)``.

    The flags default to "not given" (``argparse.SUPPRESS``), so that :func:`config_overrides`
    sees only what the user typed. ``groups`` maps a base class to the title of the argument
    group of the fields it declares (e.g. the shared training-loop options).
    """
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    owners = {}
    for klass in reversed(cls.__mro__):
        for name in getattr(klass, "__annotations__", {}):
            owners.setdefault(name, klass)
    sections: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(cls):
        title = (groups or {}).get(owners.get(f.name), f"{cls.__name__} options")
        if title not in sections:
            sections[title] = parser.add_argument_group(title)
        kwargs = _argument(f.name, hints[f.name])
        value = getattr(defaults, f.name)
        shown = f"default: {_flag_value(value)}"
        if reference is not None and getattr(reference, f.name) != value:
            shown += f"; {reference_name}: {_flag_value(getattr(reference, f.name))}"
        text = helps.get(f.name, "")
        text = f"{text} ({shown})" if text else f"({shown})"
        kwargs["help"] = text.replace("%", "%%")  # argparse formats help with %
        sections[title].add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=argparse.SUPPRESS, **kwargs)


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields the user gave on the command line, as ``{name: value}``."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for name, value in vars(args).items():
        if name in names:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def normalize_flags(argv: list[str]) -> list[str]:
    """``--batch_size=3`` -> ``--batch-size=3``: underscores in flag names become dashes."""
    out = []
    for token in argv:
        if token.startswith("--"):
            flag, eq, rest = token.partition("=")
            token = flag.replace("_", "-") + eq + rest
        out.append(token)
    return out


def preset_summary(presets: dict[str, Any], *, default: str, shown: str | None = None) -> str:
    """One line per preset with the fields where it differs from preset ``shown`` (the one in the help)."""
    shown = shown or default
    base = presets[shown]
    lines = [f"presets (--preset NAME, default {default}):"]
    for name, config in presets.items():
        diff = [f"{f.name}={getattr(config, f.name)}" for f in dataclasses.fields(config)
                if getattr(config, f.name) != getattr(base, f.name)]
        lines.append(f"  {name:<6} " + (" ".join(diff) if diff else "the defaults shown above"))
    return "\n".join(lines)
