"""Exponential moving average of a model's weights (``--ema DECAY``): after every optimizer step,
``ema = decay * ema + (1 - decay) * weights`` for parameters; buffers (BatchNorm statistics) are
copied. The average is a second model of the same class, evaluated beside the trained one."""

from __future__ import annotations

import copy

import torch


class ModelEMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs()

    def _pairs(self) -> None:
        self.params = [p for p in self.model.parameters()]
        self.buffers = [b for b in self.model.buffers()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One update on the device, without any host synchronization."""
        source = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self.params, source, 1.0 - self.decay)
        for mine, theirs in zip(self.buffers, model.buffers()):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
