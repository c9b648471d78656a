"""torch.optim's optimizers behind zoo's optimizer factory signature."""

from __future__ import annotations

import torch


def sgd(params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = False):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov and momentum > 0)


def adam(params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def adamw(params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8):
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
