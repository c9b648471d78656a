"""Losses that are a (weighted) mean over pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.losses import SegmentationLoss, masked_mean, parse_class_weights
from zoo.tasks import Task


def _pixel_weights(weights: torch.Tensor | None, task: Task, target: torch.Tensor) -> torch.Tensor | None:
    """Per-pixel weight of the pixel's true class: binary by background/foreground, multilabel per
    label plane (weights[c] on the whole plane c)."""
    if weights is None:
        return None
    w = weights.to(target.dtype if target.is_floating_point() else torch.float32).to(target.device)
    if task.kind == "binary":
        return w[0] + (w[1] - w[0]) * target
    return w.view(1, -1, 1, 1).expand_as(target)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None, valid: torch.Tensor | None) -> torch.Tensor:
    """sum(w v) / sum(w) over valid pixels: a class weight changes a pixel's share, not the scale."""
    if weights is None:
        return masked_mean(values, valid)
    if valid is not None:
        weights = weights * valid
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


class MSELoss(SegmentationLoss):
    tasks = ("binary", "multilabel")

    def compute(self, logits, target, valid):
        return masked_mean((torch.sigmoid(logits) - target) ** 2, valid)


class BCELoss(SegmentationLoss):
    tasks = ("binary", "multilabel")

    def __init__(self, task: Task | None = None, pos_weight: float | None = None) -> None:
        super().__init__(task)
        # a buffer, made once: no host-to-device copy in every step
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(pos_weight), persistent=False)

    def compute(self, logits, target, valid):
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight)
        return masked_mean(bce, valid)


class CELoss(SegmentationLoss):
    """Softmax cross-entropy for multiclass (class weights as ``F.cross_entropy``'s, ignored pixels
    left out); sigmoid cross-entropy for binary and multilabel (smoothing pulls targets towards 1/2)."""

    def __init__(self, task: Task | None = None, class_weights: str = "", label_smoothing: float = 0.0) -> None:
        super().__init__(task)
        self.register_buffer("weights", parse_class_weights(class_weights, self.task), persistent=False)
        self.label_smoothing = label_smoothing

    def compute(self, logits, target, valid):
        if self.task.kind == "multiclass":
            if valid is not None:
                target = torch.where(valid[:, 0] > 0, target, torch.full_like(target, -100))
            weight = None if self.weights is None else self.weights.to(logits.dtype)
            return F.cross_entropy(logits, target, weight=weight, ignore_index=-100,
                                   label_smoothing=self.label_smoothing)
        smoothed = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        bce = F.binary_cross_entropy_with_logits(logits, smoothed, reduction="none")
        return _weighted_mean(bce, _pixel_weights(self.weights, self.task, target), valid)


class FocalLoss(SegmentationLoss):
    """Sigmoid focal loss per channel (binary, multilabel) or softmax focal loss (multiclass):
    ``-alpha_t (1 - p_t)^gamma log p_t`` with ``p_t`` the probability of the true class."""

    def __init__(self, task: Task | None = None, alpha: float | None = None, gamma: float = 2.0,
                 class_weights: str = "") -> None:
        super().__init__(task)
        self.alpha, self.gamma = alpha, gamma
        self.register_buffer("weights", parse_class_weights(class_weights, self.task), persistent=False)

    def compute(self, logits, target, valid):
        if self.task.kind == "multiclass":
            log_pt = torch.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
            loss = -(1 - log_pt.exp()).pow(self.gamma) * log_pt if self.gamma else -log_pt
            loss = loss[:, None]
            weights = None if self.weights is None else self.weights.to(logits.dtype)[target][:, None]
            return _weighted_mean(loss, weights, valid)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # = -log p_t, stable
        loss = bce if self.gamma == 0 else (1 - torch.exp(-bce)).pow(self.gamma) * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1 - self.alpha) * (1 - target))
        return _weighted_mean(loss, _pixel_weights(self.weights, self.task, target), valid)
