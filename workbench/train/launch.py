"""``python -m workbench train METHOD [--preset NAME] [--FIELD VALUE ...]``: the training command.

The flags are generated from the method's config dataclass; ``--preset`` picks the base values
(``paper``, ``small``, ``smoke``), any ``--FIELD`` overrides one. ``--resume DIR`` continues a run
(its config, plus any ``--FIELD`` given, e.g. a larger ``--steps``; new optimizer options such as
``--lr-d`` or ``--betas`` are applied to the restored optimizers, and said so). Under ``torchrun``
the same command trains on several processes with DDP.

A run folder is locked (``<run>/.lock``, ``flock``) while a process trains it: a second
``--resume`` of the same run is refused. Temporary checkpoint folders left by a killed process are
removed when the run starts again.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from workbench.checkpoint import CONFIG_FILE, LOCK_FILE, RunLock, read_checkpoint, remove_orphans
from workbench.data.images import ImageReadError
from workbench.device import DeviceError, pick_device, seed_everything
from workbench.methods import METHODS
from workbench.methods.base import Method, TrainConfig
from workbench.train.config import (ConfigError, add_config_arguments, config_from_dict, config_overrides,
                                    normalize_flags, preset_summary)
from workbench.train.distributed import cleanup_distributed, init_distributed, local_rank
from workbench.train.trainer import Callback, NonFiniteError, Trainer

OPTIMIZER_FIELDS = ("lr", "betas", "weight_decay", "min_lr", "eps", "momentum")  # config fields (by prefix) that
# set optimizer hyper-parameters: changed on --resume, the restored param groups take the new values
HYPER_PARAMETERS = ("lr", "betas", "weight_decay", "eps", "momentum", "dampening", "alpha", "nesterov", "amsgrad")

# helpers


def _hyper_parameters(method: Method) -> dict[str, list[dict]]:
    """The optimizer hyper-parameters of every param group of ``method``, by optimizer name."""
    return {name: [{k: v for k, v in group.items() if k in HYPER_PARAMETERS} for group in optimizer.param_groups]
            for name, optimizer in method.optimizers().items()}


def apply_optimizer_options(method: Method, wanted: dict[str, list[dict]]) -> list[str]:
    """Set the hyper-parameters ``wanted`` (from :func:`_hyper_parameters` of a method built with the
    new config) on ``method``'s restored optimizers; returns one line per value changed."""
    changes = []
    for name, optimizer in method.optimizers().items():
        for index, (group, new) in enumerate(zip(optimizer.param_groups, wanted.get(name, []))):
            for key, value in new.items():
                if group.get(key) != value:
                    changes.append(f"optimizer {name!r} group {index}: {key} {group.get(key)} -> {value}")
                    group[key] = value
    return changes


def build_parser(cls: type[Method], *, shown: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser of method ``cls``: run options, then one flag per config field.

    The help shows the values of preset ``shown`` (default: the method's default preset) and, where
    the ``paper`` preset differs, its value too.
    """
    default = cls.default_preset
    shown = shown if shown in cls.presets else default
    parser = argparse.ArgumentParser(
        prog=f"python -m workbench train {cls.name}",
        description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
        epilog=preset_summary(cls.presets, default=default, shown=shown),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("run options")
    run.add_argument("--preset", choices=list(cls.presets), default=argparse.SUPPRESS,
                     help=f"base values of every option below (default: {default}); see the list at the end")
    run.add_argument("--out", type=Path, default=None,
                     help=f"run folder (default: runs/{cls.name}/<timestamp>; with --resume: the resumed run's folder)")
    run.add_argument("--resume", type=Path, default=None,
                     help="continue from a checkpoint folder or a run folder (its newest checkpoint)")
    run.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs (stats.jsonl only)")
    reference = cls.presets.get("paper") if shown != "paper" else None
    add_config_arguments(parser, cls.Config, defaults=cls.presets[shown], reference=reference,
                         groups={TrainConfig: "training loop options", cls.Config: f"{cls.name} options"})
    return parser


def resolve_config(cls: type[Method], args: argparse.Namespace):
    """The run's config: preset or resumed config, then the fields given on the command line."""
    overrides = config_overrides(args, cls.Config)
    if args.resume is not None:
        if "preset" in args:
            raise ConfigError("--preset does not combine with --resume: a resumed run keeps its config "
                              "(override single fields instead, e.g. --steps)")
        checkpoint = read_checkpoint(args.resume, method=cls.name)
        base = config_from_dict(cls.Config, checkpoint.config, source=f"{checkpoint.path}/{CONFIG_FILE}")
    else:
        checkpoint = None
        base = cls.presets[getattr(args, "preset", cls.default_preset)]
    try:
        return dataclasses.replace(base, **overrides), checkpoint
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid option: {error}") from error


# functions


def build(method: str, argv: list[str], *, dataset=None, callbacks: list[Callback] = ()) -> Trainer:
    """Parse ``argv``, join the process group under torchrun, build the method and its trainer.

    Resumed runs come back with their checkpoint loaded. ``dataset`` replaces the method's own.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of: {', '.join(sorted(METHODS))}")
    cls = METHODS[method]
    argv = normalize_flags(list(argv))
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--preset")
    args = build_parser(cls, shown=peek.parse_known_args(argv)[0].preset).parse_args(argv)
    config, checkpoint = resolve_config(cls, args)
    device = pick_device(args.device, local_rank=local_rank())
    info = init_distributed(device)
    seed_everything(config.seed + info.rank)
    if args.out is not None:
        out = args.out
    elif checkpoint is not None and checkpoint.path.parent.name == "checkpoints":
        out = checkpoint.path.parent.parent
    else:
        out = Path("runs") / cls.name / time.strftime("%Y%m%d-%H%M%S")
    if checkpoint is None and info.is_main and any((out / "checkpoints").glob("step-*")):
        raise ConfigError(f"{out} already holds checkpoints; continue it with --resume {out} or choose another --out")
    created = not out.exists()
    lock = RunLock(out) if info.is_main else None  # refuses a second process on this run
    try:
        if lock is not None:
            remove_orphans(out)  # half-written checkpoints of a process killed mid-write
        instance = cls(config, device=device)
        wanted = _hyper_parameters(instance)  # from the new config, before the checkpoint replaces them
        trainer = Trainer(instance, out_dir=out, dataset=dataset, callbacks=callbacks,
                          progress=not args.no_progress, tensorboard=not args.no_tensorboard)
        trainer.run_lock = lock
        if checkpoint is not None:
            trainer.load_checkpoint(checkpoint)
            old = config_from_dict(cls.Config, checkpoint.config, source=f"{checkpoint.path}/{CONFIG_FILE}")
            changed = [f.name for f in dataclasses.fields(config) if f.name.startswith(OPTIMIZER_FIELDS)
                       and getattr(config, f.name) != getattr(old, f.name)]
            if changed:
                changes = apply_optimizer_options(instance, wanted)
                if info.is_main and changes:
                    flags = ", ".join("--" + name.replace("_", "-") for name in changed)
                    print(f"resume: the new optimizer options ({flags}) replace the checkpoint's: " + "; ".join(changes),
                          file=sys.stderr)
    except BaseException:
        if lock is not None:
            lock.release()
            if created and [p.name for p in out.iterdir()] == [LOCK_FILE]:  # nothing was written: leave no folder
                (out / LOCK_FILE).unlink(missing_ok=True)
                out.rmdir()
        raise
    return trainer


def _last_line(error: BaseException) -> str:
    """The error's own message: a DataLoader worker's error carries the worker's whole traceback, whose
    last line is ``<module>.<Type>: message``."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    head, sep, rest = last.partition(f"{type(error).__name__}: ")
    return rest if sep and " " not in head.strip() else last


def main(method: str, argv: list[str]) -> int:
    """The ``train`` command: 0 on success, 1 when training diverged, 2 on bad options, checkpoints or data."""
    trainer = None
    try:
        try:
            trainer = build(method, argv)
        except SystemExit as exit_:  # --help, or argparse rejecting an option
            return exit_.code if isinstance(exit_.code, int) else 2
        except (ValueError, DeviceError, FileNotFoundError) as error:  # options, dataset specs, checkpoints
            print(f"error: {error}", file=sys.stderr)
            return 2
        if trainer.dist.is_main:
            processes = trainer.dist.world_size
            print(f"{method}: {trainer.config.steps} steps on {trainer.device} ({processes} "
                  f"process{'es' if processes > 1 else ''}), from step {trainer.step}, writing to {trainer.out_dir}",
                  file=sys.stderr)
        try:
            trainer.fit()
        except NonFiniteError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except ImageReadError as error:  # a corrupt file in the dataset: name it, keep the last checkpoint
            where = trainer.last_checkpoint
            print(f"error: {_last_line(error)}; training stopped at step {trainer.step} (remove or replace the file"
                  + (f", then resume with --resume {where})" if where else ")"), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            where = trainer.last_checkpoint
            print(f"interrupted at step {trainer.step}; " + (f"resume with --resume {where}" if where else
                                                            "no checkpoint was written yet"), file=sys.stderr)
            return 130
        if trainer.dist.is_main:
            print(f"done: {trainer.last_checkpoint}", file=sys.stderr)
        return 0
    finally:
        if trainer is not None and trainer.run_lock is not None:
            trainer.run_lock.release()
        cleanup_distributed()
