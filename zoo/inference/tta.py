"""Test-time augmentation: the model sees flipped/rotated copies, its outputs are mapped back and
averaged in probability space (the mean of sigmoids or softmaxes, not of logits)."""

from __future__ import annotations

from typing import Callable

import torch

from zoo.metrics import probabilities
from zoo.tasks import Task

TTA = ("none", "flip", "d4")

# (rotations by 90 degrees, horizontal flip first): the eight symmetries of the square
_TRANSFORMS = {"none": ((0, False),), "flip": ((0, False), (0, True)),
               "d4": tuple((k, f) for f in (False, True) for k in range(4))}


def _forward(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, (-2, -1)) if k else x


def _inverse(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if k:
        y = torch.rot90(y, -k, (-2, -1))
    return y.flip(-1) if flip else y


def to_logits(task: Task, probs: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Logits whose probabilities are ``probs``: log-odds for sigmoid tasks, log-probabilities for
    softmax (equal to the logits up to a per-pixel constant, which softmax ignores)."""
    p = probs.clamp(eps, 1 - eps)
    return p.log() if task.kind == "multiclass" else p.log() - (-p).log1p()


def augmented(model: Callable[[torch.Tensor], torch.Tensor], task: Task, tta: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> logits`` through ``model`` under ``tta``: the model itself for "none"; else the logits
    of the averaged probabilities of every transformed copy."""
    transforms = _TRANSFORMS[tta]
    if len(transforms) == 1:
        return lambda x: model(x).float()

    def run(x: torch.Tensor) -> torch.Tensor:
        total = None
        for k, flip in transforms:
            p = probabilities(task, _inverse(model(_forward(x, k, flip)).float(), k, flip))
            total = p if total is None else total + p
        return to_logits(task, total / len(transforms))

    return run
