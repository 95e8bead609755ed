"""What a trained model scores on held-out scenes, against the baselines: one line for the screen.

Every panel of the app that shows a trained model states what it scores, from the
``metrics.json`` stored beside its checkpoint (the shipped ``assets/*/`` folders: written by
``scripts/export_*_asset.py``, with the no-learning baselines of the same scenes added by
``scripts/score_asset_baselines.py``). :func:`find_metrics` finds that file for a checkpoint,
bundle or run folder; :func:`segmenter_verdict` turns a segmenter's scores and the baselines into
Markdown, including the plain verdict "does not segment" when the model is no better than
marking the whole image; :func:`generator_verdict` does the same for a layered GAN's generator
(PerturbGAN, chapter 3, or the conditional layered GAN, chapter 4), which is scored on its own
composites, not on held-out scenes: with the separation figures of issue 16 stored
(``metrics["separation"]``, :mod:`workbench.eval.separation`), :func:`separation_verdict` says in
plain words whether it separates object from background, which figure fails its target
(:func:`workbench.eval.separation.separation_checks`), and whether its discriminator sees the
ghosts a shift reveals; :func:`separation_table` lists the record (computed by
:func:`workbench.eval.separation.score_separation`) in the export scripts' README text.

``metrics.json`` layouts read here::

    move-small:      {"iou": ..., "accuracy": ..., "images": N, "size": S, "dataset": ..., "baselines": {...}}
    layered-small:   {"joint": {"iou": ...}, "post": {"iou": ...}, "test_images": N, "resolution": S, ...,
                      "separation": {...}, "baselines": {...}}
    perturbgan-small: {"gen_mask_iou": ..., "full_mask_ref_iou": ..., "detected": K, "n": N, "separation": {...}}
    separation:      {"preset": ..., "oracle": ..., "n": N, "gen_mask_iou", "detected" (a fraction), "detected_ok",
                      "bg_object_area", "mask_area", "mask_shown", "mask_edge", "mask_diversity", "centroid_corr", "bg_floor",
                      "true_mask_diversity", "true_area", "fake_auc", "ghost_auc_duplicate",
                      "ghost_auc_wrong_mask", "ghost_auc_moved"}  (written by scripts/export_*_asset.py)
    baselines:       {"dataset", "split", "size", "n", "seed", "command", "full": {"iou": ...}, "center": ..., "grabcut": ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.eval.separation import CENTROID_TARGET, IOU_TARGET, MIN_DETECTED, separation_checks

__all__ = ["METRICS_FILE", "NO_BETTER_MARGIN", "find_metrics", "read_metrics", "segmenter_scores",
           "segments", "segmenter_verdict", "separation_verdict", "ghost_verdict", "generator_verdict", "scores_line",
           "separation_table", "SEPARATION_KEYS", "GHOST_CHANCE_MARGIN"]

METRICS_FILE = "metrics.json"
NO_BETTER_MARGIN = 0.05  # an IoU within this of the full-image mask's counts as "does not segment"
BASELINE_LABELS = {"full": "full image", "center": "centred ellipse", "grabcut": "GrabCut"}
SEPARATION_KEYS = ("gen_mask_iou", "detected", "bg_object_area", "mask_area", "mask_diversity", "centroid_corr",
                   "bg_floor", "true_mask_diversity", "true_area")  # what separation_verdict needs
GHOST_CHANCE_MARGIN = 0.1  # a discriminator AUC below 0.5 + this counts as "does not tell apart" (a display choice)
GHOSTS = (("ghost_auc_duplicate", "a duplicated object, the original left in place"),
          ("ghost_auc_wrong_mask", "a seam where a wrong mask moved background"),
          ("fake_auc", "its generator's own composites"))  # ghost_test's keys, what they alter


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


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _listed(phrases: list[str]) -> str:
    """"a", "a and b", "a, b, and c"."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + ", and " + phrases[-1]


def separation_verdict(separation: dict[str, Any] | None) -> str | None:
    """Plain words, computed from the numbers: does the generator separate object from background, and
    if not, which figures miss their targets (:func:`workbench.eval.separation.separation_checks`),
    with each figure beside its reference. None when ``separation`` lacks a figure of :data:`SEPARATION_KEYS`."""
    if not isinstance(separation, dict) or not all(
            isinstance(separation.get(key), (int, float)) for key in SEPARATION_KEYS):
        return None
    s = {key: float(separation[key]) for key in SEPARATION_KEYS}
    ok = {check.figure: check.ok for check in separation_checks(separation, s)}
    said = {  # each figure in words, when it fails (False) and when it meets its target (True)
        "mask_diversity": {
            False: f"its mask is nearly one shape for every code (diversity {s['mask_diversity']:.2f}; "
                   f"true masks {s['true_mask_diversity']:.2f})",
            True: f"its masks vary with the code as the true ones do (diversity {s['mask_diversity']:.2f}; "
                  f"true masks {s['true_mask_diversity']:.2f})"},
        "centroid_corr": {
            False: f"its mask does not follow the object (centroid correlation {s['centroid_corr']:.2f}; "
                   f"{CENTROID_TARGET:g} needed)",
            True: f"they follow the object (centroid correlation {s['centroid_corr']:.2f})"},
        "bg_object_area": {
            False: f"the background layer holds the object (the oracle finds {_percent(s['bg_object_area'])} of B "
                   f"alone; {_percent(s['bg_floor'])} on true empty backgrounds)",
            True: f"the background layer holds no object (the oracle finds {_percent(s['bg_object_area'])} of B alone; "
                  f"{_percent(s['bg_floor'])} on true empty backgrounds)"},
        "gen_mask_iou": {
            False: f"its masks disagree with the oracle's (IoU {s['gen_mask_iou']:.3f}; {IOU_TARGET:g} needed)",
            True: f"its masks agree with the oracle's (IoU {s['gen_mask_iou']:.3f})"},
        "detected": {
            False: f"the oracle finds an object in only {_percent(s['detected'])} of its composites ({100 * MIN_DETECTED:g}% needed)",
            True: f"the oracle finds an object in {_percent(s['detected'])} of its composites"},
    }
    order = ("mask_diversity", "centroid_corr", "bg_object_area", "gen_mask_iou", "detected")
    failed = [said[key][False] for key in order if not ok[key]]
    met = [said[key][True] for key in order[:-1] if ok[key]]  # "detected" is said only when it fails
    area = f"Mask area {_percent(s['mask_area'])} of the frame; true objects {_percent(s['true_area'])}."
    if failed:
        rest = f" It meets the other targets: {_listed(met)}." if met else ""
        return f"**It does not separate object from background**: {_listed(failed)}.{rest} {area}"
    return (f"**It separates object from background** on every target: {said['mask_diversity'][True]}, "
            f"{said['centroid_corr'][True]}, {said['bg_object_area'][True]}, and {said['gen_mask_iou'][True]}. "
            f"{area}")


def ghost_verdict(separation: dict[str, Any] | None) -> str | None:
    """Plain words on the ghost test (:func:`workbench.eval.separation.ghost_test`): what the trained
    discriminator tells from a real scene (AUC at least 0.5 + :data:`GHOST_CHANCE_MARGIN`) and what it
    does not. None when no ghost AUC is stored."""
    if not isinstance(separation, dict):
        return None
    found = [(label, float(separation[key])) for key, label in GHOSTS if isinstance(separation.get(key), (int, float))]
    if not found:
        return None
    blind = [f"{label} (AUC {auc:.2f})" for label, auc in found if auc < 0.5 + GHOST_CHANCE_MARGIN]
    sees = [f"{label} (AUC {auc:.2f})" for label, auc in found if auc >= 0.5 + GHOST_CHANCE_MARGIN]
    parts = []
    if blind:
        parts.append("does not tell real scenes from " + " or ".join(blind))
    if sees:
        parts.append(("but tells them from " if blind else "tells real scenes from ") + " and ".join(sees))
    return f"Its discriminator {', '.join(parts)}; 0.5 is chance."


def generator_verdict(metrics: dict[str, Any] | None, *, name: str = "This generator") -> str:
    """Markdown for a layered GAN's generator: its generated masks against an oracle U-Net, beside the
    full mask, and, when ``metrics["separation"]`` is stored, :func:`separation_verdict` and
    :func:`ghost_verdict`. A chapter-4 ``metrics.json`` (segmenter scores only) without it says so."""
    separation = (metrics or {}).get("separation")
    verdict = separation_verdict(separation)
    has_iou = bool(metrics) and isinstance(metrics.get("gen_mask_iou"), (int, float))
    if not has_iou and verdict is None:
        return (f"**{name}: no scores stored with this checkpoint** (no `{METRICS_FILE}` with `gen_mask_iou` "
                "or `separation` beside it); `python -m workbench bench perturbgan` (or `bench layered`) scores a "
                "run, and `scripts/export_*_asset.py --oracle` stores its figures beside a shipped one.")
    if has_iou:
        iou, ref = float(metrics["gen_mask_iou"]), metrics.get("full_mask_ref_iou")
        text = (f"**{name}: its generated masks agree with an oracle U-Net's masks of its own composites at IoU "
                f"{iou:.3f}**")
        if isinstance(ref, (int, float)):
            text += f" (the full-image mask: {float(ref):.3f})"
        detected = metrics.get("detected"), metrics.get("n")
        if all(isinstance(v, int) for v in detected):
            text += f", on the {detected[0]} of {detected[1]} composites where the oracle finds an object"
        text += "."
    else:
        text = (f"**{name}: its generated masks agree with an oracle U-Net's masks of its own composites at IoU "
                f"{float(separation['gen_mask_iou']):.3f}**, on the {_percent(float(separation['detected']))} of "
                f"{separation.get('n', '?')} composites where the oracle finds an object.")
    if verdict is None:
        return text + " A generator is not scored on held-out scenes; an encoder trained on it would be."
    ghost = ghost_verdict(separation)
    return " ".join([text, verdict, *([ghost] if ghost else [])])


def separation_table(separation: dict[str, Any]) -> str:
    """Markdown: the figures of a ``separation`` record, each with its reference and whether it meets the
    target of :func:`workbench.eval.separation.separation_checks`, then the ghost test's AUCs, and
    :func:`separation_verdict` and :func:`ghost_verdict` in words."""
    checks = {check.figure: check for check in separation_checks(separation, separation)}
    s = separation

    def row(label: str, value: float, reference: str, figure: str | None = None) -> str:
        met = "–" if figure is None else ("met" if checks[figure].ok else "**not met**")
        target = "" if figure is None else checks[figure].target
        return f"| {label} | {value:.3f} | {reference} | {target} | {met} |"

    rows = [
        row("generated-mask IoU against the oracle (detected composites)", s["gen_mask_iou"], "–", "gen_mask_iou"),
        row("detected: share of composites where the oracle finds an object", s["detected"], "–", "detected"),
        row("object in the background: the oracle's area on B alone", s["bg_object_area"],
            f"bg_floor {s['bg_floor']:.3f} (true empty backgrounds)", "bg_object_area"),
        row("mask diversity: mean pairwise IoU of the masks (one fixed shape = 1)", s["mask_diversity"],
            f"true masks {s['true_mask_diversity']:.3f}", "mask_diversity"),
        row("centroid correlation with the oracle's object", s["centroid_corr"], "–", "centroid_corr"),
        row("mask area", s["mask_area"], f"true objects {s['true_area']:.3f}"),
        *[row(f"discriminator AUC, real scenes vs {label}", float(s[key]), "0.5 = chance")
          for key, label in (*GHOSTS, ("ghost_auc_moved", "the object moved over its empty background (real: "
                                                            "0.5 ideal)")) if isinstance(s.get(key), (int, float))],
    ]
    head = (f"{s['n']} unshifted composites scored against the oracle U-Net `{s.get('oracle')}`; references from "
            f"the true scenes of `synthetic:{s['preset']}` (seed {s['seed']}); "
            "`workbench.eval.separation` defines each figure.")
    words = " ".join(text for text in (separation_verdict(s), ghost_verdict(s)) if text)
    return "\n".join([head, "", "| figure | value | reference | target | met |", "|---|---:|---|---|---|", *rows, "",
                      words.replace("**", "")])


def scores_line(path: str | Path, *, kind: str, part: str | None = None, name: str | None = None) -> str:
    """The Markdown line for the checkpoint at ``path``: ``kind`` "segmenter" or "generator"."""
    metrics = read_metrics(path)
    if kind == "generator":
        return generator_verdict(metrics, **({"name": name} if name else {}))
    if kind == "segmenter":
        return segmenter_verdict(metrics, part=part, **({"name": name} if name else {}))
    raise ValueError(f"kind must be 'segmenter' or 'generator', got {kind!r}")
