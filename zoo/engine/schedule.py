"""Learning-rate schedules as closed-form functions of progress.

The learning rate of an epoch depends only on the current config and the epoch, never on a
saved scheduler object: a resumed run with more ``--epochs`` gets the schedule of that length.
"""

from __future__ import annotations

import math

import torch


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    lr = base_lr * lr_factor(schedule, epoch, epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
