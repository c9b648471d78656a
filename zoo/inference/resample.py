"""Resizing images to what the model sees, and logits back, a band of rows at a time.

:class:`BandResizer` equals ``F.interpolate(mode="bilinear", align_corners=False)`` of the whole map
(bilinear is separable: columns by ``F.interpolate`` on each band, rows by the same source
coordinates PyTorch computes), so a 20000-row output never exists as one float tensor.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (H, W, 3) resized as the training cache resizes (PIL bilinear, antialiased when shrinking)."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))  # writable


class BandResizer:
    """Takes consecutive bands of a (C, in_h, in_w) map, top to bottom, and returns the finished
    bands of its bilinear resize to (out_h, out_w)."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        self.in_h, self.in_w = in_size
        self.out_h, self.out_w = out_size
        self.identity = in_size == out_size
        scale = self.in_h / self.out_h
        src = ((torch.arange(self.out_h, dtype=torch.float64) + 0.5) * scale - 0.5).clamp_min(0)
        self.h0 = src.floor().long().clamp_max(self.in_h - 1)
        self.h1 = (self.h0 + 1).clamp_max(self.in_h - 1)
        self.lam = (src - self.h0).float()
        self.kept: torch.Tensor | None = None  # input rows still needed, width already resized
        self.kept_top = 0  # input row of kept[:, 0]
        self.received = 0  # input rows seen
        self.emitted = 0  # output rows done

    def add(self, band: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """``band``: the next (C, rows, in_w) input rows; returns (first output row, (C, rows, out_w))."""
        if self.identity:
            top = self.received
            self.received += band.shape[1]
            return [(top, band)]
        rows = band.shape[1]
        if self.out_w != self.in_w:
            band = F.interpolate(band[None], size=(rows, self.out_w), mode="bilinear", align_corners=False)[0]
        self.kept = band if self.kept is None else torch.cat((self.kept, band), 1)
        self.received += rows
        # output rows whose two source rows have both arrived
        end = self.emitted
        while end < self.out_h and int(self.h1[end]) < self.received:
            end += 1
        if end == self.emitted:
            return []
        sel = slice(self.emitted, end)
        lam = self.lam[sel].to(band.device)[None, :, None]
        upper = self.kept[:, self.h0[sel].to(band.device) - self.kept_top]
        lower = self.kept[:, self.h1[sel].to(band.device) - self.kept_top]
        out = torch.lerp(upper, lower, lam)
        top, self.emitted = self.emitted, end
        if end < self.out_h:  # drop input rows no later output row reads
            first = int(self.h0[end])
            self.kept, self.kept_top = self.kept[:, first - self.kept_top:], first
        return [(top, out)]
