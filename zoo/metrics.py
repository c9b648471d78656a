"""Dice and IoU of thresholded predictions, per image (mean over images) and over the dataset.

An image whose truth and prediction are both empty scores Dice = IoU = 1 (nothing to find, nothing
found). Pixels outside ``valid`` count for nothing.
"""

from __future__ import annotations

import torch


def confusion_counts(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image TP, FP, FN of ``sigmoid(logits) > threshold`` against binary ``target`` (N, 1, H, W)."""
    pred = torch.sigmoid(logits.float()) > threshold
    truth = target > 0.5
    if valid is not None:
        keep = valid > 0.5
        pred, truth = pred & keep, truth & keep
    dims = tuple(range(1, pred.dim()))
    tp = (pred & truth).sum(dims, dtype=torch.float64)
    return tp, (pred & ~truth).sum(dims, dtype=torch.float64), (~pred & truth).sum(dims, dtype=torch.float64)


def dice_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(denom))


def iou_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denom = tp + fp + fn
    return torch.where(denom > 0, tp / denom.clamp_min(1), torch.ones_like(denom))


class SegmentationMeter:
    """Accumulates counts on the device (no sync per batch); :meth:`compute` syncs once."""

    def __init__(self, device: torch.device | str = "cpu", threshold: float = 0.5) -> None:
        self.threshold = threshold
        # dice sum, iou sum, images, TP, FP, FN
        self.sums = torch.zeros(6, dtype=torch.float64, device=device)

    def update(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        tp, fp, fn = confusion_counts(logits, target, valid, self.threshold)
        self.sums += torch.stack((dice_from_counts(tp, fp, fn).sum(), iou_from_counts(tp, fp, fn).sum(),
                                  tp.new_tensor(float(len(tp))), tp.sum(), fp.sum(), fn.sum()))

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

    def compute(self) -> dict[str, float]:
        dice, iou, n, tp, fp, fn = self.sums.tolist()
        totals = [torch.tensor(v, dtype=torch.float64) for v in (tp, fp, fn)]
        return {
            "dice": dice / max(n, 1), "iou": iou / max(n, 1),
            "dice_dataset": float(dice_from_counts(*totals)), "iou_dataset": float(iou_from_counts(*totals)),
            "images": int(n),
        }
