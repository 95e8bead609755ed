"""Folder evaluation on tiny PNG folders written by the test."""

import cv2
import numpy as np
import pandas as pd
import pytest

from workbench.data.images import ImageReadError
from workbench.eval.folders import evaluate_folders, read_soft_mask, to_markdown, write_tables

# helpers


def square(h=40, w=40, top=10, left=10, size=20) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[top : top + size, left : left + size] = True
    return m


def write(path, array) -> None:
    assert cv2.imwrite(str(path), array)


@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    a, b, c = square(), square(top=0, left=20), square(h=40, w=60, top=10, left=20)
    for name, m in [("a", a), ("b", b), ("c", c)]:
        write(gt / f"{name}.png", m.astype(np.uint8) * 255)
    write(pred / "a.png", a.astype(np.uint8) * 200)  # soft 8-bit: 200/255 on the object
    write(pred / "b.png", b.astype(np.uint16) * 65535)  # 16-bit
    half = cv2.resize(c.astype(np.uint8) * 255, (30, 20), interpolation=cv2.INTER_NEAREST)
    write(pred / "c.png", np.repeat(half[..., None], 3, axis=2))  # RGB at half size
    return pred, gt


# tests


def test_evaluate_folders_scores_and_resizes(folders):
    pred, gt = folders
    per_image, summary = evaluate_folders(pred, gt, progress=False)
    assert list(per_image["name"]) == ["a", "b", "c"]
    rows = per_image.set_index("name")
    assert rows.loc["a", "iou"] == 1.0 and rows.loc["b", "iou"] == 1.0
    assert rows.loc["a", "mae"] == pytest.approx(55 / 255 * 400 / 1600, rel=1e-5)  # soft error on the object only
    assert rows.loc["b", "mae"] == 0.0
    assert list(per_image["resized"]) == [False, False, True]
    assert rows.loc["c", "iou"] > 0.85 and rows.loc["c", "corloc"] == 1.0
    assert list(summary.columns) == [
        "n", "iou", "accuracy", "f_beta", "max_f_beta", "max_f_beta_threshold", "max_f_beta_per_image", "mae", "corloc",
    ]
    s = summary.iloc[0]
    assert s["n"] == 3 and s["corloc"] == 1.0
    assert s["iou"] == pytest.approx(per_image["iou"].mean())
    assert s["max_f_beta_per_image"] >= s["max_f_beta"] > 0.9


def test_write_tables(folders, tmp_path):
    per_image, summary = evaluate_folders(*folders, progress=False)
    paths = write_tables(per_image, summary, tmp_path / "out")
    assert [p.name for p in paths] == ["per_image.csv", "summary.csv", "summary.md"]
    assert pd.read_csv(paths[0])["name"].tolist() == ["a", "b", "c"]
    assert pd.read_csv(paths[1])["iou"][0] == pytest.approx(summary["iou"][0])
    text = paths[2].read_text()
    assert "max_f_beta_per_image" in text and "| a " in text


def test_markdown_keeps_names_and_integers():
    table = pd.DataFrame({"name": ["0001", "1e5"], "iou": [0.123456, 1.0], "n": [3, 4]})
    lines = to_markdown(table).splitlines()
    assert lines[2].split("|")[1:4] == [" 0001   ", " 0.1235 ", "   3 "]
    assert "1e5" in lines[3] and "1.0000" in lines[3]


def test_missing_and_unmatched_names_are_listed(folders):
    pred, gt = folders
    (pred / "b.png").unlink()
    write(pred / "b_mask.png", square().astype(np.uint8) * 255)
    with pytest.raises(ValueError) as err:
        evaluate_folders(pred, gt, progress=False)
    message = str(err.value)
    assert "1 ground-truth masks have no prediction" in message and ": b" in message
    assert "1 predictions have no ground truth" in message and "b_mask" in message


def test_folder_errors(folders, tmp_path):
    pred, gt = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a mask")
    with pytest.raises(ValueError, match="no image files"):
        evaluate_folders(empty, gt, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate_folders(tmp_path / "nowhere", gt, progress=False)
    write(pred / "a.jpg", square().astype(np.uint8) * 255)
    with pytest.raises(ValueError, match="two files with the stem 'a'"):
        evaluate_folders(pred, gt, progress=False)
    (pred / "a.jpg").unlink()
    (pred / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageReadError, match="c.png"):
        evaluate_folders(pred, gt, progress=False)


def test_read_soft_mask_formats(tmp_path):
    grey = np.array([[0, 128], [255, 64]], np.uint8)
    write(tmp_path / "g.png", grey)
    assert read_soft_mask(tmp_path / "g.png") == pytest.approx(grey / 255)
    write(tmp_path / "g16.png", grey.astype(np.uint16) * 257)
    assert read_soft_mask(tmp_path / "g16.png") == pytest.approx(grey / 255)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = grey  # a cut-out: uniform colour, the alpha is the mask
    write(tmp_path / "a.png", rgba)
    assert read_soft_mask(tmp_path / "a.png") == pytest.approx(grey / 255)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 2] = grey  # BGR: red channel
    write(tmp_path / "r.png", red)
    assert read_soft_mask(tmp_path / "r.png") == pytest.approx(grey / 255)
    write(tmp_path / "labels.png", np.array([[0, 1], [1, 0]], np.uint8))
    assert read_soft_mask(tmp_path / "labels.png").tolist() == [[0, 1], [1, 0]]
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        read_soft_mask(tmp_path / "empty.png")
