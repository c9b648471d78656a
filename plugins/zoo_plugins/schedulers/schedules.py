"""Learning-rate factors as pure functions of ``(step, total, steps_per_epoch)``: ``step`` counts
optimizer steps from 0 (after warmup), ``total`` is how many there are. Each matches the
``torch.optim.lr_scheduler`` class of the same idea stepped once per optimizer step (the tests
compare them step by step)."""

from __future__ import annotations

import math
from typing import Callable

Factor = Callable[[int, int, int], float]


def constant() -> Factor:
    return lambda step, total, per_epoch: 1.0


def cosine(final_lr_ratio: float = 0.0) -> Factor:
    """CosineAnnealingLR(T_max=total, eta_min=final_lr_ratio * base), in closed form."""
    def factor(step: int, total: int, per_epoch: int) -> float:
        t = min(step, total) / max(total, 1)
        return final_lr_ratio + (1 - final_lr_ratio) * (1 + math.cos(math.pi * t)) / 2
    return factor


def poly(power: float = 0.9) -> Factor:
    """PolynomialLR(total_iters=total, power)."""
    return lambda step, total, per_epoch: (1 - min(step, total) / max(total, 1)) ** power


def step(every_epochs: int = 10, factor: float = 0.1) -> Factor:
    """StepLR(step_size=every_epochs * steps_per_epoch, gamma=factor)."""
    return lambda step, total, per_epoch: factor ** (step // max(every_epochs * per_epoch, 1))


def onecycle(pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4) -> Factor:
    """OneCycleLR(max_lr=base, total_steps=total, pct_start, div_factor, final_div_factor), cosine
    annealing, three_phase off."""
    start, end = 1 / div_factor, 1 / (div_factor * final_div_factor)

    def anneal(a: float, b: float, t: float) -> float:
        return b + (a - b) / 2 * (1 + math.cos(math.pi * t))

    def factor(step: int, total: int, per_epoch: int) -> float:
        peak = float(pct_start * total) - 1
        last = total - 1
        if step <= peak:
            return anneal(start, 1.0, step / peak) if peak > 0 else 1.0
        return anneal(1.0, end, (step - peak) / max(last - peak, 1e-12))
    return factor
