"""Binary Lovasz hinge (Berman et al., CVPR 2018): the Lovasz extension of the Jaccard loss,
evaluated on hinge errors sorted in decreasing order."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.losses import BinaryLoss


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


class LovaszHingeLoss(BinaryLoss):
    def __init__(self, per_image: bool = False) -> None:
        super().__init__()
        self.per_image = per_image

    def compute(self, logits, target, valid):
        groups = [(logits[i], target[i], None if valid is None else valid[i]) for i in range(len(logits))] \
            if self.per_image else [(logits, target, valid)]
        losses = []
        for x, t, v in groups:
            keep = slice(None) if v is None else v.reshape(-1) > 0
            losses.append(lovasz_hinge_flat(x.reshape(-1)[keep], t.reshape(-1)[keep]))
        return torch.stack(losses).mean()
