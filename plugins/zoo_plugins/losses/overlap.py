"""Dice, Jaccard and Tversky: one Tversky index per class with different weights of FP and FN.

Dice is Tversky with alpha = beta = 1/2 and Jaccard with alpha = beta = 1; the smoothing ``s`` is
added to the soft TP count and to the denominator, so a class absent from the target and from the
prediction costs 0 (and one that is predicted but absent is penalized). The loss is the (weighted)
mean of 1 - index over classes: softmax probabilities against one-hot targets for multiclass,
sigmoid ones per channel for binary and multilabel.
"""

from __future__ import annotations

import torch

from zoo.losses import SegmentationLoss, class_planes, parse_class_weights, soft_counts, weighted_class_mean
from zoo.tasks import Task


def tversky_loss(logits, target, valid, alpha: float, beta: float, smooth: float, per_image: bool,
                 task: Task | None = None, weights: torch.Tensor | None = None) -> torch.Tensor:
    task = task or Task()
    probs, planes = class_planes(task, logits, target)
    tp, fp, fn = soft_counts(probs, planes, valid, per_image)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(1e-7)
    return weighted_class_mean(1 - index, weights, task)


class TverskyLoss(SegmentationLoss):
    def __init__(self, task: Task | None = None, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0,
                 per_image: bool = False, class_weights: str = "") -> None:
        super().__init__(task)
        self.alpha, self.beta, self.smooth, self.per_image = alpha, beta, smooth, per_image
        self.register_buffer("weights", parse_class_weights(class_weights, self.task), persistent=False)

    def compute(self, logits, target, valid):
        return tversky_loss(logits, target, valid, self.alpha, self.beta, self.smooth, self.per_image, self.task,
                            self.weights)


class DiceLoss(TverskyLoss):
    def __init__(self, task: Task | None = None, smooth: float = 1.0, per_image: bool = False,
                 class_weights: str = "") -> None:
        super().__init__(task, 0.5, 0.5, smooth, per_image, class_weights)


class JaccardLoss(TverskyLoss):
    def __init__(self, task: Task | None = None, smooth: float = 1.0, per_image: bool = False,
                 class_weights: str = "") -> None:
        super().__init__(task, 1.0, 1.0, smooth, per_image, class_weights)
