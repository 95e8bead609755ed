"""Dataset folder loaders and build_dataset, on tiny trees that each test writes itself."""

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from workbench.data import DATASET_KINDS, ImageReadError, build_dataset
from workbench.data.folders import cub, duts, flowers102, hku_is, image_folder, paired_folders

RNG = np.random.default_rng(0)


# helpers


def write_image(path: Path, *, h=30, w=40, mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    elif mode == "L":
        Image.fromarray(RNG.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    elif mode == "RGBA":
        Image.fromarray(RNG.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").save(path)
    elif mode == "16bit":
        cv2.imwrite(str(path), RNG.integers(0, 65536, (h, w), dtype=np.uint16))
    return path


def write_mask(path: Path, *, h=30, w=40, box=(5, 10, 20, 30), soft=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((h, w), np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    if soft:  # CUB-style soft border
        mask[top:bottom, left] = 100
    Image.fromarray(mask).save(path)
    return path


def make_pairs(images: Path, masks: Path, names, *, ext=".jpg"):
    for name in names:
        write_image(images / f"{name}{ext}")
        write_mask(masks / f"{name}.png")


def check_item(item, size, *, mask=True):
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert isinstance(item["name"], str)
    if mask:
        assert item["mask"].shape == (1, size, size) and item["mask"].dtype == torch.float32
        assert set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0}
        assert item["mask"].sum() > 0
    else:
        assert "mask" not in item


# saliency datasets


def test_duts_te_at_root_and_parent(tmp_path):
    base = tmp_path / "DUTS-TE"
    make_pairs(base / "DUTS-TE-Image", base / "DUTS-TE-Mask", ["ILSVRC_1", "ILSVRC_2", "sun_3"])
    for root in (base, tmp_path):
        ds = build_dataset(f"duts-te:{root}", size=24)
        assert len(ds) == 3 and ds[0]["name"] == "ILSVRC_1"
        check_item(ds[1], 24)
    with pytest.raises(FileNotFoundError, match="DUTS-TR-Image"):
        build_dataset(f"duts-tr:{tmp_path}", size=24)
    train = tmp_path / "DUTS-TR"
    make_pairs(train / "DUTS-TR-Image", train / "DUTS-TR-Mask", ["n01_1", "n02_2"])
    for root in (train, tmp_path):  # the parent holds both parts; each spec finds its own
        ds = build_dataset(f"duts-tr:{root}", size=24)
        assert [s.name for s in ds.samples] == ["n01_1", "n02_2"] and ds.name == "duts-tr"
        check_item(ds[0], 24)
    assert len(build_dataset(f"duts-te:{tmp_path}", size=24)) == 3
    image, mask = duts(base, part="te", size=None).load(2)  # size None keeps the original resolution
    assert image.shape == (30, 40, 3) and mask.shape == (30, 40) and mask.sum() == 15 * 20
    with pytest.raises(ValueError, match="'tr' or 'te'"):
        duts(base, part="val", size=8)


def test_ecssd_dut_omron_with_nested_archive_folder(tmp_path):
    make_pairs(tmp_path / "ECSSD" / "images", tmp_path / "ECSSD" / "ground_truth_mask", ["0001", "0002"])
    ds = build_dataset(f"ecssd:{tmp_path / 'ECSSD'}", size=16, n=1)
    assert len(ds) == 1
    check_item(ds[0], 16)
    omron = tmp_path / "DUT-OMRON"
    # archives often extract to DUT-OMRON-image/DUT-OMRON-image/*.jpg
    make_pairs(omron / "DUT-OMRON-image" / "DUT-OMRON-image", omron / "pixelwiseGT-new-PNG", ["im005", "im007"])
    ds = build_dataset(f"dut-omron:{omron}", size=20)
    assert [s.name for s in ds.samples] == ["im005", "im007"]
    check_item(ds[1], 20)


def test_hku_is_splits_from_mat_and_txt(tmp_path):
    base = tmp_path / "HKU-IS"
    names = ["0004", "0005", "0006", "0007"]
    make_pairs(base / "imgs", base / "gt", names, ext=".png")
    savemat(base / "valImgSet.mat", {"valImgSet": np.array([["0005.png"], ["0007.png"]], dtype=object)})
    (base / "test.txt").write_text("0004\n0006\n")
    assert [s.name for s in hku_is(base, split="val", size=8).samples] == ["0005", "0007"]
    assert [s.name for s in build_dataset(f"hku-is:{tmp_path}", size=8).samples] == ["0004", "0006"]
    assert len(hku_is(base, split="all", size=8)) == 4
    with pytest.warns(UserWarning, match="trainImgSet.mat"):
        assert len(hku_is(base, split="train", size=8)) == 4


# CUB-200-2011 and Flowers102


def make_cub(root: Path, *, redo: bool, seg_beside: bool = False) -> Path:
    base = root / "CUB_200_2011"
    files = ["001.Albatross/Albatross_0001.jpg", "001.Albatross/Albatross_0002.jpg",
             "002.Auklet/Auklet_0003.jpg", "002.Auklet/Auklet_0004.jpg"]
    seg = (root if seg_beside else base) / "segmentations"
    for f in files:
        write_image(base / "images" / f, h=30, w=50)
        write_mask((seg / f).with_suffix(".png"), h=30, w=50, box=(5, 20, 25, 30), soft=True)
    (base / "images.txt").write_text("".join(f"{i} {f}\n" for i, f in enumerate(files, 1)))
    (base / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n4 0\n")
    if redo:
        (base / "train_val_test_split.txt").write_text("1 0\n2 1\n3 2\n4 2\n")
    return base


def test_cub_redo_split_centre_crop_and_soft_masks(tmp_path):
    make_cub(tmp_path, redo=True)
    ds = build_dataset(f"cub:{tmp_path}", size=20)  # parent folder; split "test" by default
    assert [s.name for s in ds.samples] == ["002.Auklet/Auklet_0003", "002.Auklet/Auklet_0004"]
    assert ds.crop == "center"
    item = ds[0]
    check_item(item, 20)
    image, mask = ds.load(0)
    # centre crop of 30x50 is columns 10..40; the soft column 20 (value 100) is background
    expected = np.zeros((30, 30), np.float32)
    expected[5:25, 11:20] = 1
    assert np.array_equal(mask, cv2.resize(expected, (20, 20), interpolation=cv2.INTER_NEAREST) > 0)
    assert len(cub(tmp_path, split="val", size=None)) == 1
    assert cub(tmp_path, split="train", size=None, crop="resize").load(0)[0].shape == (30, 50, 3)


def test_cub_official_split_and_segmentations_beside(tmp_path):
    make_cub(tmp_path, redo=False, seg_beside=True)
    with pytest.warns(UserWarning, match="ReDO"):
        ds = cub(tmp_path / "CUB_200_2011", split="train", size=16)
    assert [s.name.split("/")[1] for s in ds.samples] == ["Albatross_0001", "Auklet_0003"]
    check_item(ds[1], 16)
    with pytest.raises(ValueError, match="val"):
        cub(tmp_path, split="val", size=16)


def test_cub_missing_segmentation_is_named(tmp_path):
    base = make_cub(tmp_path, redo=True)
    (base / "segmentations" / "002.Auklet" / "Auklet_0004.png").unlink()
    with pytest.raises(FileNotFoundError, match="Auklet_0004.png"):
        cub(base, split="test", size=16)


def make_flowers(root: Path, ids) -> Path:
    base = root / "flowers"
    (base / "jpg").mkdir(parents=True)
    (base / "segmim").mkdir()
    for i in ids:
        photo = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)
        photo[..., 2] = np.minimum(photo[..., 2], 150)  # no pure blue in the "flower"
        Image.fromarray(photo).save(base / "jpg" / f"image_{i:05d}.jpg")
        seg = photo.copy()
        seg[:, :20] = (0, 0, 254)  # background painted blue: the flower is the right two thirds
        Image.fromarray(seg).save(base / "segmim" / f"segmim_{i:05d}.jpg", quality=90)
    savemat(base / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3]]), "tstid": np.array([[4, 5]])})
    savemat(base / "imagelabels.mat", {"labels": np.array([[7, 7, 9, 9, 12]])})
    return base


def test_flowers102_blue_background_and_redo_splits(tmp_path):
    make_flowers(tmp_path, [1, 2, 3, 4, 5])
    test = build_dataset(f"flowers102:{tmp_path}", size=None, split="test", crop="resize")
    assert [s.name for s in test.samples] == ["image_00001", "image_00002"]  # test = trnid
    assert test.labels == [7, 7]
    _, mask = test.load(0)
    truth = np.zeros((40, 60), bool)
    truth[:, 20:] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95
    train = flowers102(tmp_path / "flowers", split="train", size=32)  # train = tstid
    assert [s.name for s in train.samples] == ["image_00004", "image_00005"] and train.crop == "center"
    check_item(train[0], 32)
    assert len(flowers102(tmp_path, split="all", size=8)) == 5


# your own folders


def test_plain_folder_has_no_masks_and_recurses(tmp_path):
    write_image(tmp_path / "pics" / "a.jpg")
    write_image(tmp_path / "pics" / "sub" / "b.png", mode="L")
    (tmp_path / "pics" / "notes.txt").write_text("ignored")
    (tmp_path / "pics" / "._a.jpg").write_bytes(b"\x00\x05junk")  # macOS sidecar, skipped
    ds = build_dataset(f"folder:{tmp_path / 'pics'}", size=12)
    assert [s.name for s in ds.samples] == ["a", "sub/b"]
    check_item(ds[1], 12, mask=False)
    image, mask = image_folder(tmp_path / "pics", size=None).load(1)
    assert image.shape == (30, 40, 3) and mask is None and np.array_equal(image[..., 0], image[..., 1])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 12, 12)


def test_pairs_bad_inputs(tmp_path):
    images, masks = tmp_path / "im", tmp_path / "gt"
    write_image(images / "gray.png", mode="L")
    write_image(images / "rgba.png", mode="RGBA")
    write_image(images / "deep.png", mode="16bit")
    write_image(images / "plain.jpg")
    for name in ("gray", "rgba", "deep", "plain"):
        write_mask(masks / f"{name}.png")
    ds = build_dataset(f"pairs:{images},{masks}", size=16)
    assert len(ds) == 4
    for i in range(4):
        check_item(ds[i], 16)
    # a corrupt image (valid header, truncated body) fails when read, naming the file
    data = (images / "plain.jpg").read_bytes()
    (images / "plain.jpg").write_bytes(data[:40])
    ds = paired_folders(images, masks, size=16)
    with pytest.raises(ImageReadError, match="plain.jpg"):
        ds[[s.name for s in ds.samples].index("plain")]
    # a file that is no image at all is caught when the dataset is built
    (images / "oops.png").write_text("hello")
    write_mask(masks / "oops.png")
    with pytest.raises(ImageReadError, match="oops.png"):
        paired_folders(images, masks, size=16)


def test_pairs_missing_and_extra_masks(tmp_path):
    images, masks = tmp_path / "im", tmp_path / "gt"
    make_pairs(images, masks, ["a", "b"])
    write_image(images / "c.jpg")
    with pytest.raises(ValueError, match=r"1 of 3 images have no mask.*c\.jpg"):
        paired_folders(images, masks, size=16)
    (images / "c.jpg").unlink()
    write_mask(masks / "zzz.png")
    with pytest.warns(UserWarning, match="zzz.png"):
        assert len(paired_folders(images, masks, size=16)) == 2


def test_mask_of_the_wrong_size(tmp_path):
    images, masks = tmp_path / "im", tmp_path / "gt"
    write_image(images / "a.jpg", h=30, w=40)
    write_mask(masks / "a.png", h=20, w=20, box=(2, 2, 10, 10))
    with pytest.raises(ImageReadError, match="20x20"):
        paired_folders(images, masks, size=16)[0]


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "im").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        build_dataset(f"pairs:{tmp_path / 'im'},{tmp_path / 'gt'}", size=8)
    with pytest.raises(ValueError, match="no image files"):
        build_dataset(f"folder:{tmp_path / 'im'}", size=8)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset(f"ecssd:{tmp_path / 'nowhere'}", size=8)
    with pytest.raises(FileNotFoundError, match="ground_truth_mask"):
        build_dataset(f"ecssd:{tmp_path}", size=8)


def test_crop_modes(tmp_path):
    images, masks = tmp_path / "im", tmp_path / "gt"
    write_image(images / "wide.png", h=20, w=80)
    write_mask(masks / "wide.png", h=20, w=80, box=(0, 0, 20, 20))  # the left quarter
    squash = paired_folders(images, masks, size=8, crop="resize")[0]["mask"]
    centre = paired_folders(images, masks, size=8, crop="center")[0]["mask"]
    assert squash[0, :, :2].all() and not squash[0, :, 2:].any()
    assert not centre.any()  # the centre square (columns 30..50) misses the left quarter


# build_dataset


def test_build_dataset_specs_and_errors(tmp_path):
    ds = build_dataset("synthetic:hard", size=32, split="train", n=5, seed=2)
    assert len(ds) == 5
    check_item(ds[0], 32)
    assert len(build_dataset("synthetic", size=32, n=3)) == 3
    photos = build_dataset("photos", size=24, n=2)
    assert len(photos) == 2 and photos[0]["image"].shape == (3, 24, 24)
    with pytest.raises(ValueError) as info:
        build_dataset("imagenet:/data", size=32)
    for kind in DATASET_KINDS:
        assert kind in str(info.value)
    with pytest.raises(ValueError, match="needs a path"):
        build_dataset("ecssd", size=32)
    with pytest.raises(ValueError, match="comma"):
        build_dataset(f"pairs:{tmp_path}", size=32)
    with pytest.raises(ValueError, match="crop"):
        build_dataset("synthetic:easy", size=32, crop="zoom")
    with pytest.raises(ValueError, match="preset"):
        build_dataset("synthetic:medium", size=32)
    assert all(isinstance(v, str) and v for v in DATASET_KINDS.values())


def test_no_warnings_for_clean_folders(tmp_path):
    make_pairs(tmp_path / "ECSSD" / "images", tmp_path / "ECSSD" / "ground_truth_mask", ["1", "2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = build_dataset(f"ecssd:{tmp_path}", size=8)
        check_item(ds[0], 8)
