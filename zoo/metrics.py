"""Segmentation metrics from one source: confusion counts accumulated on the device.

Multiclass (and binary, as background/foreground) keep a confusion matrix (rows = truth, columns =
prediction); multilabel keeps one 2x2 matrix per label ``[[tn, fp], [fn, tp]]``. Per-class IoU,
Dice, precision and recall, their means over classes (macro, NaN classes left out as mmseg does) and
pixel-accumulated (micro) figures, and pixel accuracy are all views of those counts. Pixels outside
``valid`` count for nothing. Binary runs also keep round 1's figures: Dice and IoU per image (an
empty truth predicted empty scores 1) and over the split.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.tasks import Task


def decode(task: Task, logits: torch.Tensor) -> torch.Tensor:
    """Predicted labels: (N, H, W) class indices (binary: 0/1), or (N, C, H, W) bool for multilabel."""
    if task.kind == "multiclass":
        return logits.argmax(1)
    positive = logits > 0  # sigmoid(x) > 0.5
    return positive if task.kind == "multilabel" else positive[:, 0].long()


def probabilities(task: Task, logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.float(), 1) if task.kind == "multiclass" else torch.sigmoid(logits.float())


def dice_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(denom))


def iou_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denom = tp + fp + fn
    return torch.where(denom > 0, tp / denom.clamp_min(1), torch.ones_like(denom))


def _ratio(num: torch.Tensor, den: torch.Tensor) -> list[float | None]:
    """Per-class ratios; None where the denominator is 0 (a class absent from truth and prediction)."""
    return [float(n / d) if d > 0 else None for n, d in zip(num.tolist(), den.tolist())]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


class SegmentationMeter:
    """Accumulates counts on the device (no host sync per batch); :meth:`compute` syncs once."""

    def __init__(self, task: Task | None = None, device: torch.device | str = "cpu", threshold: float = 0.5) -> None:
        self.task = task or Task()
        self.threshold = threshold
        n = len(self.task.metric_classes)
        shape = (n, 2, 2) if self.task.kind == "multilabel" else (n, n)
        self.confusion = torch.zeros(shape, dtype=torch.float64, device=device)
        self.per_image = torch.zeros(3, dtype=torch.float64, device=device)  # binary: dice sum, iou sum, images
        self._one = torch.ones((), dtype=torch.float64, device=device)

    def update(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """``target`` as the loss takes it: binary (N, 1, H, W), multiclass (N, H, W) indices,
        multilabel (N, C, H, W); ``valid`` (N, 1, H, W) or None."""
        if self.task.kind == "multilabel":
            pred, truth = torch.sigmoid(logits.float()) > self.threshold, target > 0.5
        elif self.task.kind == "binary":
            pred, truth = (torch.sigmoid(logits[:, 0].float()) > self.threshold).long(), (target[:, 0] > 0.5).long()
        else:
            pred, truth = logits.argmax(1), target.long()
        self.update_labels(pred, truth, None if valid is None else valid[:, 0] > 0.5)

    def update_labels(self, pred: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor | None = None) -> None:
        """Predicted and true labels: (N, H, W) class indices (binary 0/1), or (N, C, H, W) bool
        planes for multilabel; ``keep`` (N, H, W) bool or None."""
        if self.task.kind == "multilabel":
            self._update_multilabel(pred, truth, keep)
            return
        if self.task.kind == "binary":
            self._update_per_image(pred, truth, keep)
        n = self.confusion.shape[0]
        index = truth * n + pred
        if keep is not None:
            index = index[keep]
        self.confusion += torch.bincount(index.reshape(-1), minlength=n * n).view(n, n).to(torch.float64)

    def _update_per_image(self, pred: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor | None) -> None:
        p, t = pred.bool(), truth.bool()
        if keep is not None:
            p, t = p & keep, t & keep
        dims = (1, 2)
        tp = (p & t).sum(dims, dtype=torch.float64)
        fp, fn = (p & ~t).sum(dims, dtype=torch.float64), (~p & t).sum(dims, dtype=torch.float64)
        count = self._one * len(tp)  # a device tensor: no host-to-device copy per batch
        self.per_image += torch.stack((dice_from_counts(tp, fp, fn).sum(), iou_from_counts(tp, fp, fn).sum(), count))

    def _update_multilabel(self, pred: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor | None) -> None:
        weight = torch.ones_like(truth[:, :1], dtype=torch.float64) if keep is None else keep[:, None].to(torch.float64)
        dims = (0, 2, 3)
        tp = ((pred & truth) * weight).sum(dims)
        fp = ((pred & ~truth) * weight).sum(dims)
        fn = ((~pred & truth) * weight).sum(dims)
        tn = ((~pred & ~truth) * weight).sum(dims)
        self.confusion += torch.stack((torch.stack((tn, fp), 1), torch.stack((fn, tp), 1)), 1)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.confusion)
            dist.all_reduce(self.per_image)

    def counts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-class TP, FP, FN (float64, on the CPU)."""
        c = self.confusion.cpu()
        if self.task.kind == "multilabel":
            return c[:, 1, 1], c[:, 0, 1], c[:, 1, 0]
        tp = c.diagonal()
        return tp, c.sum(0) - tp, c.sum(1) - tp

    def compute(self) -> dict[str, Any]:
        tp, fp, fn = self.counts()
        c = self.confusion.cpu()
        total = float(c.sum()) if self.task.kind != "multilabel" else float(c[0].sum())
        correct = float(tp.sum()) if self.task.kind != "multilabel" else float((c[:, 0, 0] + c[:, 1, 1]).sum())
        iou, dice = _ratio(tp, tp + fp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
        result: dict[str, Any] = {
            "classes": list(self.task.metric_classes),
            "iou_per_class": iou, "dice_per_class": dice,
            "precision_per_class": _ratio(tp, tp + fp), "recall_per_class": _ratio(tp, tp + fn),
            "miou": _mean(iou), "mdice": _mean(dice),
            "iou_micro": _ratio(tp.sum()[None], (tp + fp + fn).sum()[None])[0],
            "dice_micro": _ratio(2 * tp.sum()[None], (2 * tp + fp + fn).sum()[None])[0],
            "pixel_accuracy": correct / (total * (len(tp) if self.task.kind == "multilabel" else 1))
            if total else None,
            "confusion_matrix": c.to(torch.int64).tolist(),
            "pixels": int(total),
        }
        if self.task.kind == "binary":
            dice_sum, iou_sum, n = self.per_image.tolist()
            fg = [tp[1:], fp[1:], fn[1:]]
            result.update({"dice": dice_sum / max(n, 1), "iou": iou_sum / max(n, 1),
                           "dice_dataset": float(dice_from_counts(*fg)), "iou_dataset": float(iou_from_counts(*fg)),
                           "images": int(n)})
        return result
