"""What a trained model scores on held-out scenes, against the baselines: one line for the screen.

Every panel of the app that shows a trained model states what it scores, from the
``metrics.json`` stored beside its checkpoint (the shipped ``assets/*/`` folders: written by
``scripts/export_*_asset.py``, with the no-learning baselines of the same scenes added by
``scripts/score_asset_baselines.py``). :func:`find_metrics` finds that file for a checkpoint,
bundle or run folder; :func:`segmenter_verdict` turns a segmenter's scores and the baselines into
Markdown, including the plain verdict "does not segment" when the model is no better than
marking the whole image; :func:`generator_verdict` does the same for a PerturbGAN generator,
which is scored on its own composites, not on held-out scenes.

``metrics.json`` layouts read here::

    move-small:      {"iou": ..., "accuracy": ..., "images": N, "size": S, "dataset": ..., "baselines": {...}}
    layered-small:   {"joint": {"iou": ...}, "post": {"iou": ...}, "test_images": N, "resolution": S, ..., "baselines": {...}}
    perturbgan-small: {"gen_mask_iou": ..., "full_mask_ref_iou": ..., "detected": K, "n": N}
    baselines:       {"dataset", "split", "size", "n", "seed", "command", "full": {"iou": ...}, "center": ..., "grabcut": ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["METRICS_FILE", "NO_BETTER_MARGIN", "find_metrics", "read_metrics", "segmenter_scores",
           "segments", "segmenter_verdict", "generator_verdict", "scores_line"]

METRICS_FILE = "metrics.json"
NO_BETTER_MARGIN = 0.05  # an IoU within this of the full-image mask's counts as "does not segment"
BASELINE_LABELS = {"full": "full image", "center": "centred ellipse", "grabcut": "GrabCut"}


def find_metrics(path: str | Path, *, levels: int = 3) -> Path | None:
    """The ``metrics.json`` of a checkpoint: in ``path`` or the nearest of the ``levels`` folders above it.

    A bundle keeps it at its top (``assets/move-small/metrics.json`` for ``assets/move-small/move``),
    a run folder may keep it beside ``checkpoints/``. None when there is none.
    """
    folder = Path(path).expanduser().resolve()
    if folder.is_file():
        folder = folder.parent
    for candidate in [folder, *folder.parents][: levels + 1]:
        if (candidate / METRICS_FILE).is_file():
            return candidate / METRICS_FILE
    return None


def read_metrics(path: str | Path) -> dict[str, Any] | None:
    """The parsed ``metrics.json`` of :func:`find_metrics`, or None (none there, or not valid JSON)."""
    file = find_metrics(path)
    if file is None:
        return None
    try:
        metrics = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return metrics if isinstance(metrics, dict) else None


def segmenter_scores(metrics: dict[str, Any], *, part: str | None = None) -> dict[str, Any] | None:
    """The segmenter's own scores in ``metrics``: the top level (MOVE), or ``metrics[part]`` (layered: joint, post)."""
    scores = metrics.get(part) if part is not None else metrics
    return scores if isinstance(scores, dict) and isinstance(scores.get("iou"), (int, float)) else None


def segments(metrics: dict[str, Any] | None, *, part: str | None = None) -> bool | None:
    """False when the stored IoU is within :data:`NO_BETTER_MARGIN` of the full-image baseline's (or
    below it); True when above; None when the scores or that baseline are not stored."""
    scores = segmenter_scores(metrics, part=part) if metrics else None
    full = (metrics or {}).get("baselines", {}).get("full") if isinstance((metrics or {}).get("baselines"), dict) else None
    if scores is None or not isinstance(full, dict):
        return None
    return float(scores["iou"]) >= float(full["iou"]) + NO_BETTER_MARGIN


def _scenes(metrics: dict[str, Any], baselines: dict[str, Any] | None) -> str:
    source = baselines or metrics
    n = source.get("n") or metrics.get("images") or metrics.get("test_images")
    size = source.get("size") or metrics.get("size") or metrics.get("resolution")
    dataset = source.get("dataset") or metrics.get("dataset", "?")
    split = source.get("split") or metrics.get("split", "test")
    return f"{n} held-out `{split}` scenes of `{dataset}` at {size} px"


def segmenter_verdict(metrics: dict[str, Any] | None, *, part: str | None = None, name: str = "This model") -> str:
    """Markdown: the segmenter's IoU on held-out scenes, the baselines' on the same scenes, and a verdict.

    The verdict is computed from the numbers: "does not segment" when its IoU is within
    :data:`NO_BETTER_MARGIN` of (or below) the full-image mask's, "below GrabCut" or "above GrabCut"
    otherwise ("below" or "about as well as a fixed centred ellipse" when below, or within the same
    margin of, that one's).
    Without stored scores, says so and how to score the model.
    """
    scores = segmenter_scores(metrics, part=part) if metrics else None
    if scores is None:
        return (f"**{name}: no held-out scores stored with this checkpoint** (no `{METRICS_FILE}` beside it). "
                "Score it with `python -m workbench predict` and `python -m workbench eval`, or the method's "
                "`python -m workbench bench`.")
    baselines = metrics.get("baselines") if isinstance(metrics.get("baselines"), dict) else None
    iou = float(scores["iou"])
    text = f"**{name}: IoU {iou:.3f}** on {_scenes(metrics, baselines)}"
    if baselines is None:
        return text + " (no baselines stored beside it: `scripts/score_asset_baselines.py` adds them)."
    quoted = [(key, float(baselines[key]["iou"])) for key in BASELINE_LABELS if isinstance(baselines.get(key), dict)]
    text += "; the baselines on the same scenes: " + ", ".join(f"{BASELINE_LABELS[k]} {v:.3f}" for k, v in quoted)
    full, center, grabcut = (dict(quoted).get(key) for key in ("full", "center", "grabcut"))
    if segments(metrics, part=part) is False:
        verdict = ("**It does not segment**: its masks score no better than marking the whole image as the "
                   "object, so what it shows is not a segmentation.")
    elif center is not None and iou < center - NO_BETTER_MARGIN:
        verdict = ("It finds something (above the full-image mask) but scores below a fixed centred ellipse, "
                   "and below GrabCut.")
    elif center is not None and iou < center + NO_BETTER_MARGIN:
        verdict = "It scores about as well as a fixed centred ellipse: it has learnt little beyond where objects sit."
    elif grabcut is not None and iou < grabcut:
        verdict = "It segments, below GrabCut from a centred box."
    elif grabcut is not None:
        verdict = "It segments, above GrabCut from a centred box."
    else:
        verdict = "It segments better than the full-image mask."
    return f"{text}. {verdict}"


def generator_verdict(metrics: dict[str, Any] | None, *, name: str = "This generator") -> str:
    """Markdown for a PerturbGAN generator: its generated masks against an oracle U-Net, beside the full mask."""
    if not metrics or not isinstance(metrics.get("gen_mask_iou"), (int, float)):
        return (f"**{name}: no scores stored with this checkpoint** (no `{METRICS_FILE}` with `gen_mask_iou` "
                "beside it); `python -m workbench bench perturbgan` scores a run.")
    iou, ref = float(metrics["gen_mask_iou"]), metrics.get("full_mask_ref_iou")
    text = (f"**{name}: its generated masks agree with an oracle U-Net's masks of its own composites at IoU "
            f"{iou:.3f}**")
    if isinstance(ref, (int, float)):
        text += f" (the full-image mask: {float(ref):.3f})"
    detected = metrics.get("detected"), metrics.get("n")
    if all(isinstance(v, int) for v in detected):
        text += f", on the {detected[0]} of {detected[1]} composites where the oracle finds an object"
    return text + ". A generator is not scored on held-out scenes; an encoder trained on it would be."


def scores_line(path: str | Path, *, kind: str, part: str | None = None, name: str | None = None) -> str:
    """The Markdown line for the checkpoint at ``path``: ``kind`` "segmenter" or "generator"."""
    metrics = read_metrics(path)
    if kind == "generator":
        return generator_verdict(metrics, **({"name": name} if name else {}))
    if kind == "segmenter":
        return segmenter_verdict(metrics, part=part, **({"name": name} if name else {}))
    raise ValueError(f"kind must be 'segmenter' or 'generator', got {kind!r}")
