"""The optimizer and the learning rate of every step, resolved by name through the registry.

The learning rate is a pure function of (epoch, step, config): linear warmup, then the scheduler
plugin's factor over the remaining optimizer steps, times each parameter group's multiplier. No
scheduler object is saved, so a resumed run (even with a new ``--epochs``) follows the schedule
of its current length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from zoo.engine.config import RunConfig
from zoo.errors import UsageError


def param_groups(model: torch.nn.Module, config: RunConfig) -> list[dict[str, Any]]:
    """One group, or (with ``--encoder-lr-mult`` or ``--freeze-encoder-epochs``) the decoder's and the
    encoder's, the encoder's learning rate multiplied by ``encoder_lr_mult``."""
    if config.encoder_lr_mult == 1.0 and not config.freeze_encoder_epochs:
        return [{"params": list(model.parameters()), "lr_mult": 1.0}]
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        raise UsageError("--encoder-lr-mult and --freeze-encoder-epochs need a model with an .encoder "
                         "(zoo.models.SegmentationModel)")
    inside = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in inside]
    return [{"params": rest, "lr_mult": 1.0},
            {"params": list(encoder.parameters()), "lr_mult": config.encoder_lr_mult}]


def build_optimizer(entry, model: torch.nn.Module, config: RunConfig, options: dict[str, Any]):
    from zoo.specs import resolve

    groups = param_groups(model, config)
    return resolve(entry.spec.factory)(groups, lr=config.lr, momentum=config.momentum,
                                       weight_decay=config.weight_decay, **entry.spec.resolve_options(options))


@dataclass(frozen=True)
class Schedule:
    """The learning rate at a given optimizer step of a run."""

    factor: Callable[[int, int, int], float]
    base_lr: float
    epochs: int
    steps_per_epoch: int  # optimizer steps (batches / accumulate, rounded up)
    warmup: int  # optimizer steps (or epochs when by_epoch)
    by_epoch: bool

    @classmethod
    def build(cls, entry, config: RunConfig, batches_per_epoch: int, options: dict[str, Any]) -> "Schedule":
        per_epoch = max(1, math.ceil(batches_per_epoch / config.accumulate))
        if config.lr_by_epoch:
            warmup = math.ceil(config.warmup_epochs) if config.warmup_epochs else 0
        else:
            warmup = config.warmup_steps or round(config.warmup_epochs * per_epoch)
        return cls(entry.spec.build(**options), config.lr, config.epochs, per_epoch, warmup, config.lr_by_epoch)

    def lr(self, epoch: int, step_in_epoch: int) -> float:
        """``step_in_epoch`` counts optimizer steps done in ``epoch`` (0-based)."""
        if self.by_epoch:
            step, total, per_epoch = epoch, self.epochs, 1
        else:
            step, total, per_epoch = epoch * self.steps_per_epoch + step_in_epoch, self.epochs * self.steps_per_epoch, \
                self.steps_per_epoch
        if step < self.warmup:
            return self.base_lr * (step + 1) / (self.warmup + 1)
        return self.base_lr * self.factor(step - self.warmup, max(total - self.warmup, 1), per_epoch)

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, step_in_epoch: int) -> float:
        lr = self.lr(epoch, step_in_epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        return lr
