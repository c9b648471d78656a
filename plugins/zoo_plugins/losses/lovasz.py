"""Lovasz losses (Berman et al., CVPR 2018): the Lovasz extension of the Jaccard loss, evaluated on
errors sorted in decreasing order. The hinge form for binary (and per label for multilabel), the
softmax form for multiclass, averaged over the classes present in the target as in the paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.losses import SegmentationLoss, parse_class_weights
from zoo.tasks import Task


def _jaccard_steps(sorted_labels: torch.Tensor) -> torch.Tensor:
    """Increments of the Jaccard loss as pixels are added to the error set in sorted order."""
    positives = sorted_labels.sum()
    intersection = positives - sorted_labels.cumsum(0)
    union = positives + (1 - sorted_labels).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.cat((jaccard[:1], jaccard[1:] - jaccard[:-1]))


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if labels.numel() == 0:
        return logits.sum() * 0
    errors = 1 - logits * (2 * labels - 1)
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), _jaccard_steps(labels[order]))


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``probs`` (P, C), ``labels`` (P,): mean over present classes of the Lovasz extension of
    their Jaccard loss on ``|1[label = c] - p_c|``."""
    losses, used = [], []
    for c in range(probs.shape[1]):
        fg = (labels == c).to(probs.dtype)
        if fg.sum() == 0:
            continue
        errors, order = torch.sort((fg - probs[:, c]).abs(), descending=True)
        losses.append(torch.dot(errors, _jaccard_steps(fg[order])))
        used.append(c)
    if not losses:
        return probs.sum() * 0
    stacked = torch.stack(losses)
    if weights is None:
        return stacked.mean()
    w = weights.to(stacked)[used]
    return (stacked * w).sum() / w.sum().clamp_min(1e-12)


class LovaszLoss(SegmentationLoss):
    def __init__(self, task: Task | None = None, per_image: bool = False, class_weights: str = "") -> None:
        super().__init__(task)
        self.per_image = per_image
        self.register_buffer("weights", parse_class_weights(class_weights, self.task), persistent=False)

    def compute(self, logits, target, valid):
        groups = [(logits[i:i + 1], target[i:i + 1], None if valid is None else valid[i:i + 1])
                  for i in range(len(logits))] if self.per_image else [(logits, target, valid)]
        return torch.stack([self._one(x, t, v) for x, t, v in groups]).mean()

    def _one(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        keep = slice(None) if valid is None else valid[:, 0].reshape(-1) > 0
        if self.task.kind == "multiclass":
            probs = torch.softmax(logits, 1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
            return lovasz_softmax_flat(probs[keep], target.reshape(-1)[keep], self.weights)
        # one hinge per channel: binary has one, multilabel one per label
        channels = [lovasz_hinge_flat(logits[:, c].reshape(-1)[keep], target[:, c].reshape(-1)[keep])
                    for c in range(logits.shape[1])]
        stacked = torch.stack(channels)
        if self.weights is None or self.task.kind == "binary":
            return stacked.mean()
        w = self.weights.to(stacked)
        return (stacked * w).sum() / w.sum().clamp_min(1e-12)
