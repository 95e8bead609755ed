"""One entry point for every dataset: :func:`build_dataset` from a spec string ``kind:argument``.

========================  ==================================================================
spec                      what it loads
========================  ==================================================================
``synthetic:<preset>``    synthetic scenes with exact masks (presets easy, benchmark, hard, movable)
``photos``                the sample photos that scikit-image ships (no masks)
``duts-tr:PATH``          DUTS-TR  (PATH = DUTS-TR/ or its parent)
``duts-te:PATH``          DUTS-TE  (PATH = DUTS-TE/ or its parent)
``ecssd:PATH``            ECSSD
``dut-omron:PATH``        DUT-OMRON
``hku-is:PATH``           HKU-IS
``cub:PATH``              CUB-200-2011 (centre crop by default)
``flowers102:PATH``       Flowers102 (centre crop by default)
``folder:PATH``           every image under PATH, no masks
``classes:PATH``          class folders PATH/<class>/<images> (labels, no masks; CIFAR-10 exported as PNGs)
``pairs:IMAGES,MASKS``    two folders (comma-separated) matched by file name without extension
========================  ==================================================================

The kind is everything before the first colon, so Windows paths (``ecssd:C:\\data``) work.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from workbench.data import folders
from workbench.data.class_folders import class_folder
from workbench.data.photos import SamplePhotos
from workbench.data.synthetic import SCENE_PRESETS, SyntheticScenes

DATASET_KINDS: dict[str, str] = {  # kind -> one line for help texts (the spec is KIND or KIND:ARGUMENT)
    "synthetic": "generated scenes with exact masks, nothing to download (synthetic:PRESET, PRESET = "
                 + ", ".join(SCENE_PRESETS) + "; default benchmark)",
    "photos": "the colour sample photos shipped with scikit-image (no masks)",
    "duts-tr": "DUTS-TR at PATH: DUTS-TR/DUTS-TR-Image/*.jpg + DUTS-TR/DUTS-TR-Mask/*.png",
    "duts-te": "DUTS-TE at PATH: DUTS-TE/DUTS-TE-Image/*.jpg + DUTS-TE/DUTS-TE-Mask/*.png",
    "ecssd": "ECSSD at PATH: images/*.jpg + ground_truth_mask/*.png",
    "dut-omron": "DUT-OMRON at PATH: DUT-OMRON-image/*.jpg + pixelwiseGT-new-PNG/*.png",
    "hku-is": "HKU-IS at PATH: imgs/*.png + gt/*.png (split lists <split>ImgSet.mat optional)",
    "cub": "CUB-200-2011 at PATH: images/, images.txt, split file, segmentations/ (centre crop)",
    "flowers102": "Flowers102 at PATH: jpg/, segmim/ (blue background), setid.mat (centre crop)",
    "folder": "every image under PATH, recursively, without masks",
    "classes": "class folders PATH/<class>/<images>, labelled by folder, without masks",
    "pairs": "images and masks in two folders, pairs:IMAGES_DIR,MASKS_DIR, matched by file name without extension",
}

_NEEDS_PATH = {k for k in DATASET_KINDS if k not in ("synthetic", "photos")}


def require_masks(dataset: Dataset, spec: str, *, purpose: str = "this needs ground-truth masks") -> None:
    """Raise ValueError when ``dataset`` (named ``spec``) is empty or its items have no "mask"."""
    if len(dataset) == 0:
        raise ValueError(f"dataset {spec!r} is empty")
    if "mask" not in dataset[0]:
        raise ValueError(f"{purpose}, but dataset {spec!r} has none; use a dataset with masks, e.g. synthetic:easy, "
                         "synthetic:benchmark, ecssd:PATH, duts-te:PATH, cub:PATH or pairs:IMAGES,MASKS")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:argument`` at the first colon; unknown kinds raise, listing the valid ones."""
    kind, _, argument = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in DATASET_KINDS:
        valid = "\n  ".join(f"{k}: {v}" for k, v in DATASET_KINDS.items())
        raise ValueError(f"unknown dataset kind {kind!r} in {spec!r}; valid specs:\n  {valid}")
    if kind in _NEEDS_PATH and not argument.strip():
        raise ValueError(f"dataset {kind!r} needs a path: {DATASET_KINDS[kind]}")
    return kind, argument.strip()


def scene_preset(spec: str) -> str:
    """The scene preset of a ``synthetic[:PRESET]`` spec (``benchmark`` when none is named); ValueError for
    any other dataset, which has no true layers (backgrounds, masks) to build figures or oracles from."""
    kind, _, preset = spec.strip().partition(":")
    if kind.strip().lower() != "synthetic":
        raise ValueError(f"the separation figures need synthetic scenes (true backgrounds), not {spec!r}")
    return preset.strip() or "benchmark"


def build_dataset(spec: str, *, size: int, split: str = "test", n: int | None = None, seed: int = 0,
                  crop: str | None = None) -> Dataset:
    """The dataset named by ``spec`` (table in the module docstring), resized to ``size``.

    Args:
        split: "train", "val" or "test" (and "all" for folders). Synthetic scenes, CUB,
            Flowers102 and HKU-IS (with its lists) have splits; the other folders are one split
            each and are used whole.
        n: keep only the first ``n`` items.
        seed: the seed of synthetic scenes (other datasets are fixed files).
        crop: "resize" (squash) or "center" (centre square, then resize); None takes the
            dataset's protocol: "center" for CUB and Flowers102, "resize" for the rest. Synthetic
            scenes are square, so both are the same for them.
    """
    kind, argument = parse_spec(spec)
    if crop is not None and crop not in folders.CROPS:
        raise ValueError(f"unknown crop {crop!r}; choose one of {folders.CROPS}")
    if kind == "synthetic":
        return SyntheticScenes(preset=argument or "benchmark", size=size, split=split, n=n, seed=seed)
    if kind == "photos":
        dataset = SamplePhotos(size=size, crop=crop or "center")
        if n is not None:
            dataset.names = dataset.names[:n]
        return dataset
    options = {"size": size, "n": n}
    if crop is not None:
        options["crop"] = crop
    if kind == "duts-tr":
        return folders.duts(argument, part="tr", **options)
    if kind == "duts-te":
        return folders.duts(argument, part="te", **options)
    if kind == "ecssd":
        return folders.ecssd(argument, **options)
    if kind == "dut-omron":
        return folders.dut_omron(argument, **options)
    if kind == "hku-is":
        return folders.hku_is(argument, split=split, **options)
    if kind == "cub":
        return folders.cub(argument, split=split, **options)
    if kind == "flowers102":
        return folders.flowers102(argument, split=split, **options)
    if kind == "folder":
        return folders.image_folder(argument, **options)
    if kind == "classes":
        return class_folder(argument, **options)
    # pairs: IMAGES_DIR,MASKS_DIR
    parts = [p.strip() for p in argument.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"pairs needs two folders separated by a comma, got {argument!r}: {DATASET_KINDS['pairs']}")
    return folders.paired_folders(Path(parts[0]), Path(parts[1]), **options)
