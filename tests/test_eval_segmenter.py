"""evaluate_segmenter: any predict callable scored on a dataset with masks (IoU, accuracy, max-F_β of
tables 4.1-4.5)."""

import pytest
import torch

from workbench.data import require_masks
from workbench.eval.segmenter import evaluate_segmenter

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
N, H, W = 7, 12, 10

# helpers


class Boxes(torch.utils.data.Dataset):
    """N random images, each with a rectangle mask of its own size; ``masks=False`` drops the masks."""

    def __init__(self, *, masks: bool = True):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(N, 3, H, W, generator=g)
        self.masks = torch.zeros(N, 1, H, W)
        for i in range(N):
            self.masks[i, :, 1: 3 + i, 2: 4 + i] = 1  # (1 + i + 1) × (2 + i) pixels, never empty or full
        self.with_masks = masks

    def __len__(self):
        return N

    def __getitem__(self, i):
        item = {"image": self.images[i], "name": f"box-{i}"}
        if self.with_masks:
            item["mask"] = self.masks[i]
        return item


def true_masks(dataset: Boxes):
    """A perfect predictor: looks each image up and returns its mask (B, 1, H, W)."""
    def predict(images: torch.Tensor) -> torch.Tensor:
        index = [int((dataset.images - image).abs().flatten(1).sum(1).argmin()) for image in images]
        return dataset.masks[index]
    return predict


# tests


def test_perfect_predictor_scores_one():
    data = Boxes()
    scores = evaluate_segmenter(true_masks(data), data, batch_size=3)
    assert scores["n"] == N
    assert scores["iou"] == pytest.approx(1) and scores["accuracy"] == pytest.approx(1)
    assert scores["max_f_beta"] == pytest.approx(1) and scores["mae"] == pytest.approx(0)


def test_all_ones_predictor_scores_the_mean_mask_area():
    data = Boxes()
    scores = evaluate_segmenter(lambda x: torch.ones(x.shape[0], 1, *x.shape[-2:]), data, batch_size=4)
    area = data.masks.mean(dim=(1, 2, 3))  # (N,): IoU of a full prediction = |g| / |Ω|
    assert scores["iou"] == pytest.approx(float(area.mean()), abs=1e-6)
    assert scores["accuracy"] == pytest.approx(float(area.mean()), abs=1e-6)
    assert scores["iou"] < 0.5


def test_soft_predictions_are_thresholded_at_one_half():
    data = Boxes()
    perfect = true_masks(data)
    scores = evaluate_segmenter(lambda x: 0.3 + 0.4 * perfect(x), data)  # 0.7 inside, 0.3 outside
    assert scores["iou"] == pytest.approx(1) and scores["mae"] == pytest.approx(0.3, abs=1e-6)


def test_first_n_items_only():
    data = Boxes()
    seen = []

    def predict(images):
        seen.append(images.shape[0])
        return true_masks(data)(images)

    scores = evaluate_segmenter(predict, data, n=5, batch_size=2)
    assert scores["n"] == 5 and seen == [2, 2, 1]
    assert evaluate_segmenter(predict, data, n=100)["n"] == N  # n beyond the dataset: all of it


def test_half_right_predictor():
    """Predict the true mask for even items and nothing for odd ones: mean IoU is the share of even items."""
    data = Boxes()
    perfect = true_masks(data)

    def predict(images):
        masks = perfect(images)
        index = [int((data.images - image).abs().flatten(1).sum(1).argmin()) for image in images]
        keep = torch.tensor([i % 2 == 0 for i in index], dtype=torch.float32).view(-1, 1, 1, 1)
        return masks * keep

    assert evaluate_segmenter(predict, data, batch_size=4)["iou"] == pytest.approx(4 / 7)


def test_a_dataset_without_masks_raises():
    data = Boxes(masks=False)
    with pytest.raises(ValueError, match="masks"):
        evaluate_segmenter(lambda x: torch.ones(x.shape[0], 1, H, W), data, spec="photos:somewhere")
    with pytest.raises(ValueError, match="photos:somewhere"):
        require_masks(data, "photos:somewhere")
    with pytest.raises(ValueError, match="empty"):
        evaluate_segmenter(lambda x: x[:, :1], torch.utils.data.Subset(Boxes(), []))
