"""`python -m workbench <command>`: train, predict, eval, baselines, bench, app.

Every command has ``--help``. Heavy imports (torch, gradio, the models) happen inside the
command that needs them, and the parser imports only what the command being parsed needs (one
benchmark's module, the dataset kinds of ``baselines``), so that ``--help`` answers quickly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRESETS = ("paper", "small", "smoke")  # the named config presets every method and benchmark offers

# helpers


def _dataset_help() -> str:
    from workbench.data import DATASET_KINDS

    kinds = "; ".join(f"{kind}: {text}" for kind, text in DATASET_KINDS.items())
    return f"dataset spec, KIND[:ARGS]. Kinds: {kinds}"


def _check_out(path: Path, *, option: str = "--out") -> None:
    """Create the output folder ``path`` now, so that a bad ``--out`` fails before any work: a ValueError
    naming the option when it is a file, lies under a file, or cannot be created or written."""
    import os

    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{option} {path} cannot be created ({error.strerror or error})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} is not writable")


def _method_names() -> list[str]:
    from workbench.methods import METHODS

    return sorted(METHODS)


# commands


def cmd_train(argv: list[str]) -> int:
    """`train METHOD [options]`: options and presets come from the method's config dataclass."""
    from workbench.train.launch import main as train_main

    names = _method_names()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m workbench train METHOD [--preset {paper,small,smoke}] [options]\n")
        print("Train one method; `python -m workbench train METHOD --help` lists its presets and options.\n")
        print("methods: " + ", ".join(names))
        return 0
    method, rest = argv[0], argv[1:]
    if method not in names:
        print(f"error: unknown method {method!r}; choose one of: {', '.join(names)}", file=sys.stderr)
        return 2
    return train_main(method, rest)


def cmd_eval(args: argparse.Namespace) -> int:
    from workbench.eval.folders import evaluate_folders, to_markdown, write_tables
    from workbench.eval.predict import check_threshold

    try:
        check_threshold(args.threshold, option="--threshold")
        _check_out(args.out)
        per_image, summary = evaluate_folders(args.pred, args.gt, threshold=args.threshold, boxes=args.boxes,
                                              gt_boxes=args.gt_boxes, convention=args.convention)
        paths = write_tables(per_image, summary, args.out)
    except (ValueError, OSError) as error:  # ImageReadError is a ValueError; FileNotFoundError an OSError
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(to_markdown(summary))
    print("tables written: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from workbench.bench import BenchResult, report
    from workbench.data import build_dataset
    from workbench.eval.baselines import run_baselines

    try:
        for option, value in (("--size", args.size), ("--n", args.n)):
            if value < 1:
                raise ValueError(f"{option} must be a whole number >= 1, got {value}")
        _check_out(args.out)
        dataset = build_dataset(args.dataset, size=args.size, split=args.split, n=args.n, seed=args.seed)
        table = run_baselines(dataset, n=args.n, names=args.names)
        metrics: dict[str, float | int | str] = {"dataset": args.dataset, "size": args.size, "n": len(dataset)}
        for row in table.itertuples(index=False):
            metrics[f"{row.baseline}_iou"] = float(row.iou)
            metrics[f"{row.baseline}_maxf"] = float(row.max_f_beta)
        report(BenchResult(name="baselines", table=table, metrics=metrics), out_dir=args.out)
    except (ValueError, OSError, KeyError) as error:  # dataset specs, unreadable or mismatched files, --names
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.eval.predict import check_threshold, predict_folder
    from workbench.train.checkpoint import CheckpointError, load_method
    from workbench.train.device import DeviceError

    if args.official_checkpoint is not None and args.method != "move":
        print(f"error: --official-checkpoint is an official MOVE model; the method must be move, not {args.method!r}",
              file=sys.stderr)
        return 2
    if args.official_checkpoint is None and args.features_weights is not None:
        print("error: --features-weights goes with --official-checkpoint", file=sys.stderr)
        return 2
    own_scale = (args.inference_size, args.padding) != (None, None)
    if args.official_checkpoint is None and args.method != "move" and own_scale:
        print(f"error: --inference-size and --padding go with MOVE (predict move), not {args.method!r}",
              file=sys.stderr)
        return 2
    if args.inference_size is not None and args.inference_size < 0:
        print(f"error: --inference-size must be >= 0 (0 keeps the images' size), got {args.inference_size}",
              file=sys.stderr)
        return 2
    try:
        check_threshold(args.threshold, option="--threshold")
        if args.max_side < 1:
            raise ValueError(f"--max-side must be a whole number >= 1, got {args.max_side}")
        _check_out(args.out)
        if args.official_checkpoint is not None:
            from workbench.methods.move_official import INFERENCE_SIZE, load_official_move
            from workbench.train.device import pick_device

            size = INFERENCE_SIZE if args.inference_size is None else args.inference_size
            method = load_official_move(args.official_checkpoint, args.features_weights,
                                        device=pick_device(args.device), size=size or None)
            method.padding = args.padding or method.padding
        else:
            method = load_method(args.checkpoint, device=args.device, method=args.method)
            if args.method == "move":  # the workbench's default: the image's own size, edge padding
                method.inference_size = args.inference_size or None
                method.inference_padding = args.padding or method.inference_padding
        paths = predict_folder(method, args.images, args.out, threshold=args.threshold, recursive=args.recursive,
                               refine=args.refine, max_side=args.max_side)
    except (CheckpointError, DeviceError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    kind = f"{args.refine}-refined " if args.refine else ""
    print(f"wrote {len(paths)} {kind}soft masks to {args.out / 'soft'} and binary masks to {args.out / 'binary'}")
    if args.refine:
        print(f"unrefined masks: {args.out / 'unrefined' / 'soft'} and {args.out / 'unrefined' / 'binary'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from workbench.bench import load, report

    from workbench.train.device import DeviceError

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        result = load(args.bench_name).run(args)
    except (DeviceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, out_dir=args.out)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from apps.workbench_app import launch

    launch(host=args.host, port=args.port)
    return 0


# parser


def _parsed_command(argv: list[str] | None) -> tuple[str | None, str | None] | None:
    """The command and benchmark name that ``argv`` asks for (either may be None); None for every
    command, i.e. a parser complete in all its sub-commands."""
    if argv is None:
        return None
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words else None
    bench = words[1] if command == "bench" and len(words) > 1 else None
    return command, bench


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser. Given ``argv``, only the command it names gets its costly parts
    (a benchmark's own options, the list of dataset kinds); without, every command gets them."""
    wanted = _parsed_command(argv)

    def needs(command: str, bench: str | None = None) -> bool:
        return wanted is None or (wanted[0] == command and (bench is None or wanted[1] == bench))

    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Movability Workbench: unsupervised object segmentation with generative models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train a method (python -m workbench train METHOD --help)", add_help=False)

    p = sub.add_parser("eval", help="score a folder of predicted masks against a folder of ground truths")
    p.add_argument("--pred", required=True, type=Path, help="folder of predicted masks (PNG; soft or binary)")
    p.add_argument("--gt", type=Path, default=None,
                   help="folder of ground-truth masks (PNG), matched by file stem (optional with --gt-boxes)")
    p.add_argument("--threshold", type=float, default=0.5, help="binarisation threshold for IoU, accuracy and boxes")
    p.add_argument("--boxes", action="store_true",
                   help="also report the Multi box figures (corloc_multi, multi_boxes) beside CorLoc of the largest "
                        "connected component (thesis section 5.4.2)")
    p.add_argument("--gt-boxes", type=Path, default=None,
                   help="folder of Pascal VOC annotations (<stem>.xml) giving the ground-truth boxes; implies --boxes; "
                        "without --gt only the box figures are computed")
    p.add_argument("--convention", choices=["ours", "official"], default="ours",
                   help="ours (default: the workbench's documented definitions) or official (MOVE's segmentation_eval.py: "
                        "IoU 0 when both masks are empty, 0/0 precision or recall 1, thresholds k/256, PIL bilinear resize)")
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="where the CSV and markdown tables go")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("baselines", help="score the classical baselines (full mask, centre, GrabCut, saliency)")
    p.add_argument("--dataset", default="synthetic:benchmark",
                   help=_dataset_help() if needs("baselines") else "dataset spec, KIND[:ARGS]")
    p.add_argument("--size", type=int, default=64, help="square resolution images are resized to")
    p.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    p.add_argument("--names", nargs="+", default=None, help="only these baselines")
    p.add_argument("--out", type=Path, default=Path("runs/bench"),
                   help="the JSON result goes to OUT/baselines.json (default runs/bench)")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("predict", help="write the masks a trained method predicts for a folder of images")
    p.add_argument("method", help="the method that wrote the checkpoint (e.g. move)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", type=Path, help="a checkpoint folder, or a run folder (its newest)")
    which.add_argument("--official-checkpoint", type=Path, default=None,
                       help="an official MOVE checkpoint (adambielski/move-seg's checkpoint-N.pth, e.g. the released "
                            "model); read with weights_only=True")
    p.add_argument("--features-weights", type=Path, default=None,
                   help="with --official-checkpoint: DINO ViT-S/8 weights, when the checkpoint does not hold them "
                        "(every checkpoint after epoch 0); default: the weights folder, then the Hugging Face cache")
    p.add_argument("--inference-size", type=int, default=None,
                   help="MOVE: shorter side the images are resized to before segmenting (bicubic, antialiased); "
                        "masks are written at the input's size. Default: 448 with --official-checkpoint, as the "
                        "official infer.py; the image's own size with --checkpoint. 0 keeps the size")
    p.add_argument("--padding", choices=["edge", "reflect"], default=None,
                   help="MOVE: padding of the images to the patch size. Default: reflect with --official-checkpoint "
                        "(the official infer.py), edge with --checkpoint")
    p.add_argument("--images", required=True, type=Path, help="folder of images, any size")
    p.add_argument("--out", required=True, type=Path, help="writes OUT/soft/*.png and OUT/binary/*.png")
    p.add_argument("--threshold", type=float, default=0.5, help="threshold of the binary masks, in [0, 1]")
    p.add_argument("--recursive", action="store_true", help="also read images in sub-folders")
    p.add_argument("--max-side", type=int, default=1024,
                   help="images with a longer side are predicted at this size; masks are scaled back to the "
                        "image's size (default 1024)")
    p.add_argument("--refine", choices=["bilateral"], default=None,
                   help="refine the masks along the image (bilateral: the fast bilateral solver with MOVE's settings); "
                        "the unrefined masks go to OUT/unrefined")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="run a benchmark; prints a table and a RESULT line")
    bench_sub = p.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    from workbench.bench import catalogue, load

    for name, (_, text) in catalogue().items():
        bp = bench_sub.add_parser(name, help=text, description=text)
        bp.add_argument("--preset", choices=PRESETS, default="small", help="size of the run (default small)")
        bp.add_argument("--seed", type=int, default=0)
        bp.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
        bp.add_argument("--out", type=Path, default=Path("runs/bench"), help="where the JSON result goes")
        bp.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's; 1 is steadier on a busy machine)")
        if needs("bench", name) and (add_arguments := load(name).add_arguments) is not None:
            add_arguments(bp)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("app", help="launch the Gradio workbench")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)
