"""``python -m workbench bench robustness``: the workbench tried as a hostile or careless user would.

Every probe builds what it needs in a temporary folder (tiny smoke checkpoints, damaged weights
files, decompression-bomb images, hand-damaged run folders), runs the real command or the app's
callback in this process (no server is started), and checks the promise of
``docs/safety.md``: no code runs from a weights file, bad input gives one ``error:`` line and exit
code 2, nothing is lost or silently ignored, memory and time stay bounded. Probes of memory or time
run in a subprocess under an address-space limit (``RLIMIT_AS``) and a timeout, so that a
regression fails fast instead of taking the machine down.

The table has one row per probe (the defect of issue 14 it pins, whether it passed, what was
seen); the RESULT line counts them. ``--preset smoke`` uses smaller images and shorter limits.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from workbench.bench import BenchResult, register

MEMORY_HEADROOM = 1 << 30  # bytes of address space a limited subprocess may add to what its imports take
BOMB_SIDE = 20_000  # side of the decompression-bomb PNG: a ~400 KB file that decodes to 400 MB (1.6 GB as float)

# helpers


@dataclass
class Probe:
    defect: int  # the number of the defect in issue 14
    name: str
    fn: Callable[["Context"], str]  # returns what it saw; raises AssertionError (or anything) on failure


class Context:
    """The temporary folder and the tiny checkpoints the probes share (each made on first use)."""

    def __init__(self, folder: Path, *, smoke: bool):
        self.folder, self.smoke = folder, smoke
        self._runs: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run(self, method: str, *flags: str, name: str | None = None) -> Path:
        """A fresh copy of a smoke run of ``method`` (trained once, copied per use, so probes can damage it)."""
        key = f"{method} {' '.join(flags)}"
        if key not in self._runs:
            out = self.folder / "runs" / f"{method}-{len(self._runs)}"
            code, err = cli(["train", method, "--preset", "smoke", "--out", str(out), "--no-progress",
                             "--no-tensorboard", *flags])
            assert code == 0, f"training the {method} smoke run failed: {err[-400:]}"
            self._runs[key] = out
        copy = self.folder / "copies" / (name or f"{method}-{time.monotonic_ns()}")
        shutil.copytree(self._runs[key], copy)
        return copy


def cli(argv: list[str]) -> tuple[int, str]:
    """``python -m workbench ARGV`` in this process: (exit code, stderr). An exception that escapes the
    command (a traceback for the user) is returned as exit code -1 with its type and message."""
    from workbench.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException as error:  # noqa: BLE001 - the probe reports it
            return -1, f"{err.getvalue()}\nTraceback: {type(error).__name__}: {error}"
    return code, err.getvalue()


def expect_error_line(argv: list[str], *, mentions: str | None = None) -> str:
    """Run ``argv``; pass when it exits with code 2 and exactly one ``error:`` line (naming ``mentions``)."""
    code, err = cli(argv)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, \
        f"exit {code}, stderr: {err.strip()[-300:] or '(nothing)'}"
    if mentions is not None:
        assert mentions in errors[0], f"the error does not name {mentions!r}: {errors[0]}"
    return errors[0][:160]


def write_png_bomb(path: Path, side: int) -> Path:
    """A valid grey 8-bit PNG of side x side black pixels, compressed row by row (small file, huge image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale
    packer, row, parts = zlib.compressobj(9), bytes(side + 1), []
    for _ in range(side):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def limited_python(code: str, *, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``code`` in a fresh interpreter whose address space is capped at what its imports need plus
    :data:`MEMORY_HEADROOM`, killed after ``timeout`` s: (exit code, output); -9 for a timeout."""
    prelude = textwrap.dedent(f"""
        import resource
        def _cap():
            peak = int(open('/proc/self/status').read().split('VmPeak:')[1].split()[0]) * 1024
            limit = peak + {MEMORY_HEADROOM}
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    """)
    try:
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as expired:
        return -9, f"timed out after {timeout:g} s: {str(expired.stderr or '')[-300:]}"
    return done.returncode, (done.stdout + done.stderr).strip()


def _random_inception(path: Path) -> Path:
    """A random-weight Inception file in torch-fidelity's format (a plain state dict)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    keep = FeatureExtractorInceptionV3.load_state_dict
    FeatureExtractorInceptionV3.load_state_dict = lambda self, state, **kw: None  # build the skeleton only
    try:
        skeleton = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    finally:
        FeatureExtractorInceptionV3.load_state_dict = keep
    torch.save(skeleton.state_dict(), path)
    return path


@contextlib.contextmanager
def environment(**values: str):
    """Set environment variables for the duration of a ``with`` block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _release(trainer) -> None:
    """Unlock the run of a trainer that ``build`` made and the probe does not fit to the end."""
    lock = getattr(trainer, "run_lock", None)
    if lock is not None:
        lock.release()


class _Evil:
    """Unpickling this runs ``os.getpid`` (harmless here; any function could be named instead)."""

    def __reduce__(self):
        return (os.getpid, ())


# probes: defect 1, 11 (weights files)


def probe_inception_never_unpickled(ctx: Context) -> str:
    from workbench.eval.gan_metrics import InceptionFeatures

    path = _random_inception(ctx.path("weights/inception.pth"))
    calls, real_load = [], torch.load

    def spy(source, *args, **kwargs):
        calls.append((source, kwargs.get("weights_only", True)))
        return real_load(source, *args, **kwargs)

    torch.load = spy
    try:
        net = InceptionFeatures(path)
    finally:
        torch.load = real_load
    unsafe = [str(s) for s, weights_only in calls if not weights_only and isinstance(s, (str, os.PathLike))]
    assert not unsafe, f"a loader unpickled the file with weights_only=False: {unsafe}"
    features = net(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, 2048)
    return f"{len(calls)} torch.load call(s), all weights-only or of in-memory data; features {tuple(features.shape)}"


def probe_malicious_pickle_message(ctx: Context) -> str:
    from workbench.nets.weights import CheckpointError, load_pth

    path = ctx.path("weights/evil.pth")
    torch.save({"weight": torch.zeros(2), "payload": _Evil()}, path)
    try:
        load_pth(path)
    except CheckpointError as error:
        message = str(error)
    else:
        raise AssertionError("the pickle was accepted")
    assert "refused for safety" in message and "corrupt" not in message, message
    return message.split(": ", 1)[1][:120]


# defect 2: --resume and optimizer options


def probe_resume_applies_optimizer_options(ctx: Context) -> str:
    from workbench.train.launch import build

    run = ctx.run("dcgan", "--steps", "2")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        trainer = build("dcgan", ["--resume", str(run), "--lr-d", "1e-9", "--lr-g", "1e-9", "--betas", "0.5", "0.9",
                                  "--steps", "3", "--no-progress", "--no-tensorboard"])
    try:
        groups = [g for opt in trainer.method.optimizers().values() for g in opt.param_groups]
        seen = sorted({(g["lr"], tuple(g["betas"])) for g in groups})
        assert seen == [(1e-9, (0.5, 0.9))], f"restored optimizers keep {seen}"
        assert "--lr-d" in err.getvalue(), "the change was not reported"
    finally:
        _release(trainer)
    return f"param groups now lr 1e-9, betas (0.5, 0.9); reported: {err.getvalue().strip()[:70]}..."


# defect 3: bounded decoding


def probe_pixel_limit_everywhere(ctx: Context) -> str:
    bomb = write_png_bomb(ctx.path("bomb/bomb.png"), BOMB_SIDE)
    folder = ctx.path("bomb/dataset/x.png").parent
    shutil.copy(bomb, folder / "x.png")
    code, out = limited_python(f"""
        import gradio as gr
        from workbench.data.images import ImageReadError, read_image, read_mask
        from workbench.data.build import build_dataset
        from workbench.eval.folders import read_soft_mask
        from apps.tabs.shift_explorer import load_source
        _cap()  # from here on, decoding the bomb (1.6 GB as float) cannot fit
        seen = []
        def refused(name, fn):
            try:
                fn()
            except (ImageReadError, gr.Error) as error:
                text = str(getattr(error, 'message', error))
                assert 'too large' in text, text
                seen.append(name)
            else:
                raise SystemExit(name + ': decoded')
        refused('read_image', lambda: read_image({str(bomb)!r}))
        refused('eval', lambda: read_soft_mask({str(bomb)!r}))
        refused('mask', lambda: read_mask({str(bomb)!r}))
        refused('dataset', lambda: build_dataset({'folder:' + str(folder)!r}, size=32)[0])
        refused('app', lambda: load_source('Upload', 'easy', 0, '', {str(bomb)!r}))
        print('refused:', ' '.join(seen))
    """, timeout=60)
    assert code == 0, f"exit {code}: {out[-300:]}"
    return f"{bomb.stat().st_size // 1024} KB PNG of {BOMB_SIDE}² px under a memory cap; {out.splitlines()[-1]}"


def probe_predict_large_image(ctx: Context) -> str:
    import cv2

    run = ctx.run("move")
    h, w = (1200, 1600) if ctx.smoke else (3000, 4000)
    images = ctx.path("large/images/photo.png").parent
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "photo.png"), cv2.resize(rng.integers(0, 256, (h // 50, w // 50, 3), dtype=np.uint8),
                                                        (w, h), interpolation=cv2.INTER_LINEAR))
    out = ctx.path("large/pred")
    extra = ["--max-side", "256"] if ctx.smoke else []
    code, text = limited_python(f"""
        import timm, workbench.eval.predict, workbench.methods, workbench.train.checkpoint
        from workbench.cli import main
        _cap()
        raise SystemExit(main(['predict', 'move', '--checkpoint', {str(run)!r}, '--images', {str(images)!r},
                               '--out', {str(out)!r}, '--refine', 'bilateral', '--device', 'cpu', *{extra!r}]))
    """, timeout=240 if ctx.smoke else 600)
    assert code == 0, f"exit {code}: {text[-300:]}"
    assert "predicting" in text, "no progress bar"
    shapes = {p.parent.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in (out / "soft" / "photo.png",
                                                                                      out / "binary" / "photo.png")}
    assert set(shapes.values()) == {(h, w)}, f"masks {shapes}, image {(h, w)}"
    return f"{w}×{h} image, bilateral refinement, under a memory cap: masks {w}×{h}, progress bar shown"


# defect 4: masks of inputs sharing a stem


def probe_predict_same_stem(ctx: Context) -> str:
    import cv2

    run = ctx.run("oracle-unet", "--steps", "1")
    flat = ctx.path("stems/flat/a.png").parent
    for name in ("a.jpg", "a.png"):
        cv2.imwrite(str(flat / name), np.full((20, 24, 3), 128, np.uint8))
    nested = ctx.path("stems/nested/sub1/x.png").parent.parent
    for sub in ("sub1", "sub2"):
        (nested / sub).mkdir(exist_ok=True)
        cv2.imwrite(str(nested / sub / "x.png"), np.full((20, 24, 3), 128, np.uint8))
    seen = []
    for images, flags in ((flat, []), (nested, ["--recursive"])):
        out = ctx.path(f"stems/out-{images.name}")
        seen.append(expect_error_line(["predict", "oracle-unet", "--checkpoint", str(run), "--images", str(images),
                                       "--out", str(out), "--device", "cpu", *flags], mentions="rename"))
        assert not list(out.rglob("*.png")), "masks were written before the refusal"
    return seen[0][:110]


# defect 5: the app's PNG export


def probe_export_unique_files(ctx: Context) -> str:
    from apps.tabs import triplet_browser as tb

    runs = [ctx.run("perturbgan", "--steps", "1", "--seed", str(seed)) for seed in (0, 1)]
    settings = dict(seed=0, seeds=2, truncation=1.0, dy=0, dx=0, jitter=1.0)
    with environment(WORKBENCH_APP_ROOTS=str(ctx.folder)):
        return _concurrent_exports(tb, runs, settings)


def _concurrent_exports(tb, runs: list[Path], settings: dict) -> str:
    from PIL import Image

    expected = [tb.browse(tb.FROM_PATH, str(run), **settings)[0] for run in runs]
    assert all(e is not None for e in expected), "a checkpoint did not load"
    assert not np.array_equal(*expected), "the two checkpoints draw the same figure"
    results: list[tuple[int, str | None]] = []

    def export(i: int) -> None:
        results.append((i % 2, tb.export_png(tb.FROM_PATH, str(runs[i % 2]), **settings)))

    threads = [threading.Thread(target=export, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paths = [p for _, p in results]
    assert len(set(paths)) == len(paths) == 8, f"{len(set(paths))} distinct files for 8 exports"
    for which, path in results:
        with Image.open(path) as png:
            assert np.array_equal(np.asarray(png.convert("RGB")), expected[which]), f"{path} holds another figure"
    return "8 concurrent exports of 2 checkpoints: 8 files, each with its own request's figure"


# defect 6: error lines instead of tracebacks


def _weights_files(ctx: Context) -> dict[str, Path]:
    files = {"empty.safetensors": b"", "truncated.safetensors": b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":",
             "huge-header.safetensors": b"\xff\xff\xff\xff\xff\xff\x00\x00{}", "text.pth": b"just some text\n"}
    out = {}
    for name, data in files.items():
        out[name] = ctx.path(f"bad-weights/{name}")
        out[name].write_bytes(data)
    out["int-keys.pth"] = ctx.path("bad-weights/int-keys.pth")
    torch.save({0: torch.zeros(2), 1: torch.ones(2)}, out["int-keys.pth"])
    return out


def probe_bad_weights_files(ctx: Context) -> str:
    files = _weights_files(ctx)
    cases = [(["--features", "dino_vits8", "--features-weights"], "truncated.safetensors"),
             (["--features", "dino_vits8", "--features-weights"], "int-keys.pth"),
             (["--disc-features", "efficientnet", "--disc-weights"], "empty.safetensors"),
             (["--disc-features", "efficientnet", "--disc-weights"], "huge-header.safetensors"),
             (["--mae-weights"], "text.pth"),
             (["--mae-weights"], "int-keys.pth")]
    for flags, name in cases:
        expect_error_line(["train", "move", "--preset", "smoke", "--out", str(ctx.path("bad-weights/run")),
                           "--no-progress", "--no-tensorboard", *flags, str(files[name])], mentions=name)
    return f"{len(cases)} damaged files via --features-weights, --disc-weights, --mae-weights: one error line each"


def probe_baselines_inputs(ctx: Context) -> str:
    import cv2

    root = ctx.path("baselines/images/0.png").parent.parent
    for sub in ("images", "masks", "few"):
        (root / sub).mkdir(exist_ok=True)
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.zeros((40, 40, 3), np.uint8))
        cv2.imwrite(str(root / "masks" / f"{i}.png"), np.zeros((20, 30), np.uint8))  # the wrong size
    cv2.imwrite(str(root / "few" / "0.png"), np.zeros((40, 40), np.uint8))
    out = ["--out", str(root / "out")]
    cases = [["--dataset", f"pairs:{root / 'images'},{root / 'masks'}", "--n", "3"],
             ["--dataset", f"pairs:{root / 'images'},{root / 'few'}", "--n", "3"],
             ["--dataset", f"pairs:{root / 'images'},{root / 'absent'}", "--n", "3"],
             ["--dataset", f"folder:{root / 'images'}", "--n", "3"],
             ["--size", "0", "--n", "2"], ["--n", "-3"], ["--n", "2", "--names", "nothing"]]
    for case in cases:
        expect_error_line(["baselines", *case, *out])
    return f"{len(cases)} bad inputs (wrong-size or missing masks, --size 0, --n -3, ...): one error line each"


def probe_bad_out_folders(ctx: Context) -> str:
    run = ctx.run("oracle-unet", "--steps", "1")
    a_file = ctx.path("out/a-file")
    a_file.write_text("not a folder")
    images = ctx.path("out/images/x.png").parent
    import cv2

    cv2.imwrite(str(images / "x.png"), np.zeros((16, 16, 3), np.uint8))
    commands = [["predict", "oracle-unet", "--checkpoint", str(run), "--images", str(images)],
                ["eval", "--pred", str(images), "--gt", str(images)],
                ["baselines", "--n", "2"]]
    for command in commands:
        for out in (a_file, a_file / "below"):
            expect_error_line([*command, "--out", str(out)], mentions="--out")
    return "predict, eval and baselines with --out a file or under a file: one error line each"


def probe_damaged_resume(ctx: Context) -> str:
    seen = []
    for damage in ("config-list", "state-without-rng"):
        run = ctx.run("dcgan", "--steps", "2", name=f"damaged-{damage}")
        checkpoint = run / "checkpoints" / "step-0000002"
        if damage == "config-list":
            (checkpoint / "config.json").write_text("[1, 2, 3]")
        else:
            state = json.loads((checkpoint / "state.json").read_text())
            state["rng"] = []
            (checkpoint / "state.json").write_text(json.dumps(state))
        seen.append(expect_error_line(["train", "dcgan", "--resume", str(run), "--steps", "3", "--no-progress",
                                       "--no-tensorboard"], mentions=str(checkpoint)))
    return "config.json a list, state.json without RNG: one error line each"


def probe_config_validation(ctx: Context) -> str:
    cases = [("--ema-beta", "2"), ("--width", "0"), ("--z-dim", "0"), ("--lr-g", "nan"), ("--batch-size", "0")]
    for flag, value in cases:
        expect_error_line(["train", "dcgan", "--preset", "smoke", "--steps", "1", "--out",
                           str(ctx.path(f"config/{flag}")), "--no-progress", "--no-tensorboard", flag, value],
                          mentions=flag)
    return "refused when the config is made: " + ", ".join(f"{f} {v}" for f, v in cases)


def probe_corrupt_training_image(ctx: Context) -> str:
    import cv2

    folder = ctx.path("corrupt/images/0.png").parent
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((24, 24, 3), 40 * i, np.uint8))
    good = (folder / "3.png").read_bytes()
    (folder / "3.png").write_bytes(good[: len(good) // 2])  # a PNG cut short: its signature is intact
    line = expect_error_line(["train", "dcgan", "--preset", "smoke", "--steps", "4", "--batch-size", "6",
                              "--dataset", f"folder:{folder}", "--out", str(ctx.path("corrupt/run")), "--no-progress",
                              "--no-tensorboard"], mentions="3.png")
    return line[:110]


def probe_official_mae_in_explorer(ctx: Context) -> str:
    import gradio as gr

    from apps.tabs import shift_explorer as se
    from workbench.nets.mae import MAE_FILES

    folder = ctx.path("explorer-weights/x").parent
    (folder / MAE_FILES[0]).write_bytes(b"not weights at all")
    label = next(label for label, (file, *_) in se.OFFICIAL_MAES.items() if file == MAE_FILES[0])
    try:
        with environment(WORKBENCH_WEIGHTS=str(folder)):
            se._inpainter(label)
    except gr.Error as error:
        message = str(error.message)
    else:
        raise AssertionError("a damaged MAE file was accepted")
    assert MAE_FILES[0] in message, message
    return message[:110]


# defects 7, 8, 9: run folders


def probe_stats_rewrite_is_atomic(ctx: Context) -> str:
    from workbench.train.launch import build

    run = ctx.run("dcgan", "--steps", "2", "--log-every", "1")
    before = (run / "stats.jsonl").read_text()
    assert before.count("\n") == 2
    real = Path.write_text

    def killed_midway(self, data, *args, **kwargs):  # a kill -9 while the file is being written
        if "stats.jsonl" in self.name:
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise KeyboardInterrupt
        return real(self, data, *args, **kwargs)

    trainer = build("dcgan", ["--resume", str(run), "--steps", "4", "--no-progress", "--no-tensorboard"])
    Path.write_text = killed_midway
    try:
        trainer.fit()
    except KeyboardInterrupt:
        pass
    finally:
        Path.write_text = real
        _release(trainer)
    after = (run / "stats.jsonl").read_text()
    assert after == before, f"stats.jsonl holds {after.count(chr(10))} of its {before.count(chr(10))} lines"
    return "killed while rewriting stats.jsonl on resume: both entries kept"


def probe_orphans_removed(ctx: Context) -> str:
    from workbench.train.launch import build

    run = ctx.run("dcgan", "--steps", "2")
    orphans = [run / "checkpoints" / ".step-0000004.tmp-999999", run / "checkpoints" / ".step-0000002.old"]
    for orphan in orphans:
        orphan.mkdir()
        (orphan / "modules.safetensors").write_bytes(b"half")
    trainer = build("dcgan", ["--resume", str(run), "--steps", "3", "--no-progress", "--no-tensorboard"])
    _release(trainer)
    left = [p.name for p in orphans if p.exists()]
    assert not left, f"still there: {left}"
    assert (run / "checkpoints" / "step-0000002").is_dir()
    return "a killed write's .step-N.tmp-PID/ and .step-N.old/ removed on the next start; checkpoints kept"


def probe_run_lock(ctx: Context) -> str:
    from workbench.train.launch import build

    run = ctx.run("dcgan", "--steps", "2")
    flags = ["--resume", str(run), "--steps", "3", "--no-progress", "--no-tensorboard"]
    first = build("dcgan", flags)
    try:
        try:
            second = build("dcgan", flags)
        except ValueError as error:
            message = str(error)
        else:
            _release(second)
            raise AssertionError("a second process was allowed to train the same run")
    finally:
        _release(first)
    assert "another process" in message, message
    code, err = cli(["train", "dcgan", *flags])  # once the first is done, resuming works again
    assert code == 0, err[-300:]
    return message[:110]


# defect 10: thresholds and NaN


def probe_thresholds_cli(ctx: Context) -> str:
    run = ctx.run("oracle-unet", "--steps", "1")
    images = ctx.path("thresholds/images/x.png").parent
    import cv2

    cv2.imwrite(str(images / "x.png"), np.zeros((16, 16, 3), np.uint8))
    for value in ("nan", "2", "inf", "-1"):
        expect_error_line(["predict", "oracle-unet", "--checkpoint", str(run), "--images", str(images), "--out",
                           str(ctx.path("thresholds/out")), "--threshold", value], mentions="--threshold")
    expect_error_line(["eval", "--pred", str(images), "--gt", str(images), "--threshold", "nan",
                       "--out", str(ctx.path("thresholds/eval"))], mentions="--threshold")
    return "predict --threshold nan|2|inf|-1 and eval --threshold nan: one error line each"


def probe_nan_in_app_callbacks(ctx: Context) -> str:
    import gradio as gr

    from apps.tabs import hinge_vs_kdd as hk
    from apps.tabs import shift_explorer as se
    from apps.tabs import triplet_browser as tb

    run = ctx.run("perturbgan", "--steps", "1", "--seed", "0")
    nan = math.nan
    calls = {
        "hinge-vs-kdd width": lambda: hk.compare(**{**hk.DEFAULTS, "width": nan}),
        "hinge-vs-kdd k": lambda: hk.compare(**{**hk.DEFAULTS, "k": nan}),
        "hinge-vs-kdd lr": lambda: hk.compare(**{**hk.DEFAULTS, "lr": math.inf}),
        "triplet seed": lambda: tb.browse(tb.FROM_PATH, str(run), nan, 2, 1.0, 0, 0, 1.0),
        "triplet dy": lambda: tb.browse(tb.FROM_PATH, str(run), 0, 2, 1.0, nan, 0, 1.0),
        "triplet sliders": lambda: tb.checkpoint_changed(tb.FROM_PATH, str(run), nan, 0),
        "shift explorer dx": lambda: se.explore(**{**se.DEFAULTS, "dx": nan}),
        "shift explorer index": lambda: se.explore(**{**se.DEFAULTS, "index": nan}),
        "shift explorer k": lambda: se.explore(**{**se.DEFAULTS, "k": nan}),
    }
    with environment(WORKBENCH_APP_ROOTS=str(ctx.folder)):
        for name, call in calls.items():
            try:
                call()
            except gr.Error as error:
                assert "finite" in str(error.message) or "nan" in str(error.message).lower(), (name, error.message)
            except Exception as error:  # noqa: BLE001 - the raw API would answer {"error": null}
                raise AssertionError(f"{name}: {type(error).__name__}: {error}") from None
            else:
                raise AssertionError(f"{name}: NaN accepted")
    return f"{len(calls)} callbacks given NaN or inf: each a clear gr.Error"


# defect 12: what the app may read


def probe_app_paths_confined(ctx: Context) -> str:
    import warnings

    from apps.tabs import triplet_browser as tb

    run = ctx.run("perturbgan", "--steps", "1", "--seed", "0")
    outside = ctx.path("outside/secret")
    outside.mkdir()
    (outside / "notes.txt").write_text("private")
    link = ctx.path("allowed/link")
    link.symlink_to(outside)
    summaries = {}
    with environment(WORKBENCH_APP_ROOTS=os.pathsep.join([str(ctx.path("allowed")), str(run.parent)])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, path in (("existing", outside), ("missing", ctx.folder / "outside" / "nothing"),
                               ("system", Path("/etc")), ("link", link), ("dots", ctx.path("allowed") / ".." / "outside")):
                image, summary = tb.browse(tb.FROM_PATH, str(path), 0, 1, 1.0, 0, 0, 1.0)
                assert image is None, f"{name}: {path} was read"
                summaries[name] = summary.replace(str(path), "PATH")
                image, summary = tb.browse(tb.FROM_PATH, str(run), 0, 1, 1.0, 0, 0, 1.0, str(path))
                assert image is None and "inside" in summary, f"segmenter {name}: {summary[:100]}"
            image, _ = tb.browse(tb.FROM_PATH, str(run), 0, 1, 1.0, 0, 0, 1.0)
    assert len(set(summaries.values())) == 1, f"the messages differ: {summaries}"
    assert image is not None, "a run inside the allowed folders did not load"
    return "outside paths (existing, missing, /etc, a symlink, ..) refused with one identical message; inside loads"


PROBES = [
    Probe(1, "inception weights never unpickled by torch-fidelity", probe_inception_never_unpickled),
    Probe(2, "--resume applies new --lr/--betas", probe_resume_applies_optimizer_options),
    Probe(3, "pixel limit before decoding (read, eval, dataset, app)", probe_pixel_limit_everywhere),
    Probe(3, "predict a large image: bounded, masks at input size", probe_predict_large_image),
    Probe(4, "predict refuses inputs sharing a stem", probe_predict_same_stem),
    Probe(5, "concurrent PNG exports get their own files", probe_export_unique_files),
    Probe(6, "damaged --features/--disc/--mae-weights", probe_bad_weights_files),
    Probe(6, "baselines input errors", probe_baselines_inputs),
    Probe(6, "unusable --out of predict, eval, baselines", probe_bad_out_folders),
    Probe(6, "damaged config.json / state.json on --resume", probe_damaged_resume),
    Probe(6, "config validation (--ema-beta 2, --width 0, ...)", probe_config_validation),
    Probe(6, "corrupt image in a training folder", probe_corrupt_training_image),
    Probe(6, "unloadable official MAE in the MOVE explorer", probe_official_mae_in_explorer),
    Probe(7, "stats.jsonl rewrite survives a kill", probe_stats_rewrite_is_atomic),
    Probe(8, "orphan checkpoint folders removed", probe_orphans_removed),
    Probe(9, "one process per run folder", probe_run_lock),
    Probe(10, "thresholds validated in predict/eval", probe_thresholds_cli),
    Probe(10, "NaN refused by every app callback", probe_nan_in_app_callbacks),
    Probe(11, "malicious pickle: refused for safety", probe_malicious_pickle_message),
    Probe(12, "app reads only runs/ and assets/", probe_app_paths_confined),
]


def run_probes(folder: Path, *, smoke: bool, only: list[str] | None = None) -> pd.DataFrame:
    """Run the probes (or those whose function name contains one of ``only``) in ``folder``."""
    ctx = Context(folder, smoke=smoke)
    rows = []
    for probe in PROBES:
        if only and not any(key in probe.fn.__name__ for key in only):
            continue
        start = time.perf_counter()
        try:
            seen, passed = probe.fn(ctx), True
        except Exception as error:  # noqa: BLE001 - a failed probe is a row of the table
            seen, passed = f"{type(error).__name__}: {error}", False
        rows.append({"defect": probe.defect, "probe": probe.name, "passed": passed,
                     "seconds": round(time.perf_counter() - start, 1), "seen": " ".join(str(seen).split())[:160]})
    return pd.DataFrame(rows)


# benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", default=None, help="run only the probes whose name contains one of these")
    parser.add_argument("--keep", type=Path, default=None, help="build the files here and keep them (default: a "
                                                                  "temporary folder, removed afterwards)")


@register("robustness", help="refusals, error lines, resume guarantees and memory bounds, one probe per defect",
          add_arguments=add_arguments)
def run(args: argparse.Namespace) -> BenchResult:
    smoke = getattr(args, "preset", "small") == "smoke"
    torch.manual_seed(getattr(args, "seed", 0))
    keep = getattr(args, "keep", None)
    with tempfile.TemporaryDirectory(prefix="robustness-") as tmp:
        folder = Path(keep) if keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cwd = os.getcwd()
        os.chdir(folder)  # runs/ of anything that defaults to it lands here
        try:
            table = run_probes(folder, smoke=smoke, only=getattr(args, "only", None))
        finally:
            os.chdir(cwd)
    passed = int(table["passed"].sum())
    notes = [f"probe files were built in a temporary folder and removed" if keep is None else f"files kept in {keep}"]
    failed = table[~table["passed"]]
    notes += [f"FAILED {row.probe}: {row.seen}" for row in failed.itertuples()]
    return BenchResult(name="robustness", table=table,
                       metrics={"probes": len(table), "passed": passed, "failed": len(table) - passed}, notes=notes)
