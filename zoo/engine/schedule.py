"""Learning-rate schedules as pure functions of progress.

The learning rate of an epoch depends only on the current config and the epoch, never on a
saved scheduler object: a resumed run with more ``--epochs`` gets the schedule of that length.
Cosine follows ``torch.optim.lr_scheduler.CosineAnnealingLR`` step by step (its recursive form,
the same float operations), so a run's learning rates are bit-identical to round 1's.
"""

from __future__ import annotations

import math

import torch


def epoch_lr(base_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    lr = base_lr
    if schedule == "cosine":
        for e in range(1, epoch + 1):
            lr = (1 + math.cos(math.pi * e / epochs)) / (1 + math.cos(math.pi * (e - 1) / epochs)) * lr
    return lr


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    lr = epoch_lr(base_lr, schedule, epoch, epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
