"""`python -m workbench predict`: masks of a trained segmenter for images of any size, as PNGs."""

import cv2
import numpy as np
import pytest

from workbench.cli import main
from workbench.eval.predict import predict_folder
from workbench.train.checkpoint import load_method
from workbench.train.launch import main as train_main


@pytest.fixture(scope="module")
def move_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("move")
    assert train_main("move", ["--preset", "smoke", "--out", str(out), "--no-progress", "--no-tensorboard"]) == 0
    return out


def write_images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_predict_any_size_writes_soft_and_binary(move_run, tmp_path):
    write_images(tmp_path / "images", [(37, 50), (32, 32), (61, 29)])
    assert main(["predict", "move", "--checkpoint", str(move_run), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    for i, (h, w) in enumerate([(37, 50), (32, 32), (61, 29)]):
        soft = cv2.imread(str(tmp_path / "pred" / "soft" / f"img{i}.png"), cv2.IMREAD_UNCHANGED)
        binary = cv2.imread(str(tmp_path / "pred" / "binary" / f"img{i}.png"), cv2.IMREAD_UNCHANGED)
        assert soft.shape == (h, w) and binary.shape == (h, w)
        assert set(np.unique(binary)) <= {0, 255}
        assert np.array_equal(binary == 255, soft >= 128)  # binary = soft thresholded at 0.5


def test_predicted_masks_match_the_method(move_run, tmp_path):
    write_images(tmp_path / "images", [(40, 40)])
    method = load_method(move_run, device="cpu")
    (path,) = predict_folder(method, tmp_path / "images", tmp_path / "pred", progress=False)
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "images" / "img0.png")), cv2.COLOR_BGR2RGB) / 255.0
    import torch

    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    expected = np.rint(method.predict(x)[0, 0].numpy() * 255)
    assert np.abs(cv2.imread(str(path), cv2.IMREAD_UNCHANGED) - expected).max() <= 1


def test_predict_errors_are_clear(move_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", "move", "--checkpoint", str(move_run), "--images", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 2
    assert "no image" in capsys.readouterr().err
    assert main(["predict", "move", "--checkpoint", str(tmp_path / "missing"), "--images", str(tmp_path),
                 "--out", str(tmp_path / "pred")]) == 2


def test_predict_refine_bilateral_writes_refined_and_unrefined(move_run, tmp_path, capsys):
    import torch

    from workbench.ops.bilateral import refine_mask

    write_images(tmp_path / "images", [(40, 56)])
    assert main(["predict", "move", "--checkpoint", str(move_run), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu", "--refine", "bilateral"]) == 0
    assert "unrefined" in capsys.readouterr().out
    read = lambda *parts: cv2.imread(str(tmp_path.joinpath("pred", *parts)), cv2.IMREAD_UNCHANGED)  # noqa: E731
    soft, binary = read("soft", "img0.png"), read("binary", "img0.png")
    raw, raw_binary = read("unrefined", "soft", "img0.png"), read("unrefined", "binary", "img0.png")
    assert soft.shape == binary.shape == raw.shape == raw_binary.shape == (40, 56)
    assert np.array_equal(binary == 255, soft >= 128) and np.array_equal(raw_binary == 255, raw >= 128)
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "images" / "img0.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    method = load_method(move_run, device="cpu")
    mask = method.predict(torch.from_numpy(image).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.abs(raw - np.rint(mask * 255)).max() <= 1  # the unrefined masks are the method's
    assert np.abs(soft - np.rint(refine_mask(image, mask) * 255)).max() <= 1  # the refined ones, its bilateral refinement
    assert not np.array_equal(soft, raw)
    with pytest.raises(ValueError, match="unknown refinement"):
        predict_folder(method, tmp_path / "images", tmp_path / "other", refine="crf", progress=False)


def test_predict_move_checkpoint_at_the_official_inference_size_and_padding(move_run, tmp_path, capsys):
    import torch

    write_images(tmp_path / "images", [(37, 50)])
    read = lambda out: cv2.imread(str(tmp_path / out / "soft" / "img0.png"), cv2.IMREAD_UNCHANGED)  # noqa: E731
    args = ["predict", "move", "--checkpoint", str(move_run), "--images", str(tmp_path / "images"), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "own")]) == 0  # default: the image's own size, edge padding
    assert main([*args, "--out", str(tmp_path / "official"), "--inference-size", "64", "--padding", "reflect"]) == 0
    assert read("own").shape == read("official").shape == (37, 50)  # masks at the input's size either way
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "images" / "img0.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    method = load_method(move_run, device="cpu")
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    expected = method.predict(x, size=64, padding="reflect")[0, 0].numpy()  # 64 x 86, reflect-padded to 64 x 88
    assert np.abs(read("official") - np.rint(expected * 255)).max() <= 1
    assert np.abs(read("own") - np.rint(method.predict(x)[0, 0].numpy() * 255)).max() <= 1
    assert not np.array_equal(read("own"), read("official"))
    assert main(["predict", "oracle", "--checkpoint", str(move_run), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "x"), "--padding", "reflect"]) == 2
    assert "go with MOVE" in capsys.readouterr().err
