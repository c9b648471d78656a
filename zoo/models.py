"""Encoder -> decoder composition with the padding that lets any input size through."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.layers import pad_to_multiple


class SegmentationModel(nn.Module):
    """Runs ``decoder(encoder(x))`` on ``x`` padded to the encoder's total stride, and crops the
    logits back, so the output is ``(N, classes, H, W)`` for any H and W."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.stride = encoder.feature_info.total_stride
        self.zoo_config: dict[str, Any] = {}  # set by zoo.create_model; saved beside the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        logits = self.decoder(self.encoder(pad_to_multiple(x, self.stride)))
        return logits[..., :h, :w]
