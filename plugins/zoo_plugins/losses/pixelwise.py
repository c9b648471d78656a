"""Losses that are a mean over pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.losses import BinaryLoss, masked_mean


class MSELoss(BinaryLoss):
    def compute(self, logits, target, valid):
        return masked_mean((torch.sigmoid(logits) - target) ** 2, valid)


class BCELoss(BinaryLoss):
    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def compute(self, logits, target, valid):
        pos_weight = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight)
        return masked_mean(bce, valid)


class FocalLoss(BinaryLoss):
    def __init__(self, alpha: float | None = None, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def compute(self, logits, target, valid):
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # = -log p_t, stable
        loss = bce if self.gamma == 0 else (1 - torch.exp(-bce)).pow(self.gamma) * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1 - self.alpha) * (1 - target))
        return masked_mean(loss, valid)
