"""Dice and IoU against torchmetrics on the same tensors."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from zoo.metrics import SegmentationMeter


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 1, 16, 16, generator=g) * 3
    target = (torch.rand(6, 1, 16, 16, generator=g) > 0.7).float()
    target[4] = 0  # empty truth ...
    logits[4] = -5  # ... and empty prediction: Dice = IoU = 1
    target[5] = 0  # empty truth, some prediction: 0
    return logits, target


def test_against_torchmetrics(batch):
    logits, target = batch
    meter = SegmentationMeter()
    meter.update(logits[:3], target[:3])
    meter.update(logits[3:], target[3:])  # accumulation across batches
    got = meter.compute()
    probs = torch.sigmoid(logits)
    per_image_dice = [float(BinaryF1Score(zero_division=1.0)(probs[i].flatten(), target[i].flatten().int())) for i in range(6)]
    per_image_iou = [float(BinaryJaccardIndex(zero_division=1.0)(probs[i].flatten(), target[i].flatten().int())) for i in range(6)]
    assert per_image_dice[4] == 1.0 and per_image_dice[5] == 0.0
    assert got["dice"] == pytest.approx(sum(per_image_dice) / 6, abs=1e-6)
    assert got["iou"] == pytest.approx(sum(per_image_iou) / 6, abs=1e-6)
    assert got["dice_dataset"] == pytest.approx(float(BinaryF1Score()(probs.flatten(), target.flatten().int())), abs=1e-6)
    assert got["iou_dataset"] == pytest.approx(float(BinaryJaccardIndex()(probs.flatten(), target.flatten().int())), abs=1e-6)
    assert got["images"] == 6


def test_valid_mask_excludes_pixels(batch):
    logits, target = batch
    valid = torch.ones_like(target)
    valid[..., :8] = 0
    with_mask = SegmentationMeter()
    with_mask.update(logits, target, valid)
    cropped = SegmentationMeter()
    cropped.update(logits[..., 8:], target[..., 8:])
    a, b = with_mask.compute(), cropped.compute()
    assert a["confusion_matrix"] == b["confusion_matrix"] and a["iou_per_class"] == pytest.approx(b["iou_per_class"])
    assert [a[k] for k in ("dice", "iou", "dice_dataset", "images")] == pytest.approx(
        [b[k] for k in ("dice", "iou", "dice_dataset", "images")])


def test_threshold():
    logits = torch.full((1, 1, 2, 2), 0.5)  # sigmoid = 0.62
    target = torch.ones(1, 1, 2, 2)
    assert SegmentationMeter(threshold=0.5).compute()["images"] == 0
    high = SegmentationMeter(threshold=0.7)
    high.update(logits, target)
    low = SegmentationMeter(threshold=0.5)
    low.update(logits, target)
    assert (high.compute()["dice"], low.compute()["dice"]) == (0.0, 1.0)
