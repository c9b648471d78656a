"""Sliding windows: where they go, how much each pixel of a window counts, and a blender that
hands on finished rows as soon as no later window can touch them.

Peak memory follows the tile, not the image: the blender holds one band of ``tile height`` rows of
the (C, ·, W) accumulator, so a 20000 x 20000 image needs a few 256-row bands, not 20000 rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

BLENDS = ("gaussian", "linear", "constant")


def window_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis: evenly spaced, at most ``stride`` apart, the first at 0 and the
    last ending on the image's edge, so every pixel is covered without padding (a tile larger than
    the image is clipped to it)."""
    if size <= tile:
        return [0]
    count = math.ceil((size - tile) / stride) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


@dataclass(frozen=True)
class WindowGrid:
    """The windows over an (height, width) image, in row-major order."""

    height: int
    width: int
    tile: tuple[int, int]  # clipped to the image
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @classmethod
    def plan(cls, height: int, width: int, tile: tuple[int, int] | None, overlap: float = 0.25,
             stride: tuple[int, int] | None = None) -> "WindowGrid":
        """One window covering the image when ``tile`` is None; else tiles of ``tile`` (clipped to the
        image) ``stride`` apart, or ``tile * (1 - overlap)`` when no stride is given."""
        if tile is None:
            return cls(height, width, (height, width), (0,), (0,))
        th, tw = min(tile[0], height), min(tile[1], width)
        if stride is None:
            stride = (max(1, math.floor(tile[0] * (1 - overlap))), max(1, math.floor(tile[1] * (1 - overlap))))
        return cls(height, width, (th, tw), tuple(window_starts(height, th, stride[0])),
                   tuple(window_starts(width, tw, stride[1])))

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((y, x) for y in self.ys for x in self.xs)


def importance_map(height: int, width: int, blend: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """(height, width) weights of a window's pixels, largest at the centre: a Gaussian with sigma =
    1/8 of the tile (as nnU-Net), a linear tent, or constant. Never zero, so a pixel that only a
    window's corner covers still gets that window's prediction."""
    def axis(n: int) -> torch.Tensor:
        centre = torch.arange(n, dtype=torch.float64, device=device) + 0.5 - n / 2
        if blend == "gaussian":
            return torch.exp(-0.5 * (centre / (n / 8)) ** 2)
        if blend == "linear":
            return 1 - centre.abs() / (n / 2)
        return torch.ones(n, dtype=torch.float64, device=device)

    if blend not in BLENDS:
        raise ValueError(f"blend {blend!r}: choose one of {', '.join(BLENDS)}")
    weights = axis(height)[:, None] * axis(width)[None, :]
    return (weights / weights.max()).clamp_min(1e-6).float()


class Blender:
    """Accumulates ``weight * logits`` of a grid's windows, given in the grid's order, and yields
    each band of rows, divided by the summed weights, once the windows of the next grid row start
    below it. A grid of one window passes its logits through untouched."""

    def __init__(self, grid: WindowGrid, channels: int, weight: torch.Tensor, device: torch.device | str) -> None:
        self.grid, self.channels = grid, channels
        th, _ = grid.tile
        self.single = len(grid) == 1
        self.weight = weight
        self.acc = torch.zeros(channels, th, grid.width, device=device)
        self.norm = torch.zeros(th, grid.width, device=device)
        self.top = 0  # image row of acc[:, 0]
        self.row, self.done_in_row = 0, 0

    def add(self, y: int, x: int, logits: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """Add window (y, x)'s (C, th, tw) logits; returns the bands (first row, (C, rows, W)) finished by it."""
        if self.single:
            return [(0, logits.float())]
        th, tw = self.grid.tile
        r = y - self.top
        self.acc[:, r:r + th, x:x + tw].addcmul_(logits.float(), self.weight)
        self.norm[r:r + th, x:x + tw] += self.weight
        self.done_in_row += 1
        if self.done_in_row < len(self.grid.xs):
            return []
        self.row, self.done_in_row = self.row + 1, 0
        last = self.row == len(self.grid.ys)
        end = self.grid.height if last else self.grid.ys[self.row]
        return [self._emit(end)]

    def _emit(self, end: int) -> tuple[int, torch.Tensor]:
        k = end - self.top
        band = self.acc[:, :k] / self.norm[:k]
        top = self.top
        # shift the rows still open to the top of the buffer
        self.acc = torch.cat((self.acc[:, k:], torch.zeros_like(self.acc[:, :k])), 1)
        self.norm = torch.cat((self.norm[k:], torch.zeros_like(self.norm[:k])), 0)
        self.top = end
        return top, band
