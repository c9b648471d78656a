"""Dice, Jaccard and Tversky: one Tversky index with different weights of FP and FN.

Dice is Tversky with alpha = beta = 1/2 and Jaccard with alpha = beta = 1; the smoothing ``s`` is
added to the soft TP count and to the denominator, so an empty target with an empty prediction
scores a loss of 0.
"""

from __future__ import annotations

import torch

from zoo.losses import BinaryLoss, soft_counts


def tversky_loss(logits, target, valid, alpha: float, beta: float, smooth: float, per_image: bool) -> torch.Tensor:
    tp, fp, fn = soft_counts(torch.sigmoid(logits), target, valid, per_image)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(1e-7)
    return (1 - index).mean()


class TverskyLoss(BinaryLoss):
    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0, per_image: bool = False) -> None:
        super().__init__()
        self.alpha, self.beta, self.smooth, self.per_image = alpha, beta, smooth, per_image

    def compute(self, logits, target, valid):
        return tversky_loss(logits, target, valid, self.alpha, self.beta, self.smooth, self.per_image)


class DiceLoss(TverskyLoss):
    def __init__(self, smooth: float = 1.0, per_image: bool = False) -> None:
        super().__init__(0.5, 0.5, smooth, per_image)


class JaccardLoss(TverskyLoss):
    def __init__(self, smooth: float = 1.0, per_image: bool = False) -> None:
        super().__init__(1.0, 1.0, smooth, per_image)
