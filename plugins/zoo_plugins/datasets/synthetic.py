"""Procedural scenes: a textured background, a few shapes of varied size, colour and position,
noise, and the exact mask of the shapes. Sample i of a split depends only on (seed, split, i).

``mode=binary`` masks every shape; ``multiclass`` labels each pixel with the kind of the shape on top
(background, ellipse, rectangle, triangle); ``multilabel`` gives one plane per kind, overlaps allowed.
The three modes draw the same scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.source import Sample, SampleSource
from zoo.tasks import Task

SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}
KINDS = ("ellipse", "rectangle", "triangle")
COLORS = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))
TASKS = {"binary": Task(), "multiclass": Task("multiclass", ("background", *KINDS), COLORS),
         "multilabel": Task("multilabel", KINDS, COLORS[1:])}
# colour distance between shapes and background, noise sigma, distractor strokes
LEVELS = {"easy": (0.6, 4.0, 0), "medium": (0.35, 10.0, 2), "hard": (0.15, 18.0, 4)}


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise: a coarse random grid bilinearly upsampled to ``size`` (H, W, 3) in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1, 3))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = (t - i)[:, None, None]
    rows = grid[i] * (1 - f) + grid[i + 1] * f
    g = (t - i)[None, :, None]
    return rows[:, i] * (1 - g) + rows[:, i + 1] * g


def _shape(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> tuple[int, np.ndarray]:
    """The kind (index into KINDS) and region of one random shape."""
    cy, cx = rng.uniform(0.15, 0.85, 2) * size
    ry, rx = rng.uniform(0.08, 0.28, 2) * size
    kind = int(rng.integers(3))
    if kind == 0:  # ellipse, rotated
        a = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        return kind, (u / rx) ** 2 + (v / ry) ** 2 <= 1
    if kind == 1:  # axis-aligned rectangle
        return kind, (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
    # triangle: inside all three half-planes
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, 3)
    py, px = cy + ry * 1.3 * np.sin(angles), cx + rx * 1.3 * np.cos(angles)
    inside = np.ones_like(yy, dtype=bool)
    sign = np.sign((px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0]))
    for k in range(3):
        j = (k + 1) % 3
        inside &= sign * ((px[j] - px[k]) * (yy - py[k]) - (py[j] - py[k]) * (xx - px[k])) >= 0
    return kind, inside


def render(seed: int, split_id: int, index: int, size: int, difficulty: str, mode: str = "binary") -> Sample:
    rng = np.random.default_rng([seed, split_id, index])
    contrast, noise, distractors = LEVELS[difficulty]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.random(3)
    texture = _smooth_noise(rng, size, int(rng.integers(3, 9)))
    freq, angle = rng.uniform(0.05, 0.3), rng.uniform(0, np.pi)
    stripes = 0.5 + 0.5 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))[..., None]
    image = 0.5 * base + 0.3 * texture + 0.2 * stripes * rng.random(3)
    mask = np.zeros((size, size), dtype=bool)
    labels = np.zeros((size, size), np.uint8)  # kind + 1 of the shape on top
    planes = np.zeros((size, size, len(KINDS)), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        kind, region = _shape(rng, yy, xx, size)
        labels[region] = kind + 1
        planes[region, kind] = 1
        direction = rng.choice([-1.0, 1.0], 3)
        colour = np.clip(base + direction * contrast * rng.uniform(0.7, 1.3, 3), 0, 1)
        shade = 1 + 0.15 * (_smooth_noise(rng, size, 4)[..., :1] - 0.5)
        image = np.where(region[..., None], colour * shade, image)
        mask |= region
    for _ in range(distractors):  # thin strokes in shape colours that are not part of the mask
        y0, x0, y1, x1 = rng.uniform(0, size, 4)
        dist = abs((y1 - y0) * xx - (x1 - x0) * yy + x1 * y0 - y1 * x0) / max(np.hypot(y1 - y0, x1 - x0), 1)
        stroke = (dist < size / 64) & ~mask
        image = np.where(stroke[..., None], np.clip(base + contrast * rng.uniform(-1, 1, 3), 0, 1), image)
    pixels = image * 255 + rng.normal(0, noise, image.shape)
    target = {"binary": mask.astype(np.uint8), "multiclass": labels, "multilabel": planes}[mode]
    return Sample(np.clip(pixels, 0, 255).astype(np.uint8), target)


class Synthetic(SampleSource):
    def __init__(self, split: str, data_dir: str | Path | None = None, count: int = 256, size: int = 128,
                 difficulty: str = "medium", seed: int = 0, mode: str = "binary"):
        n = count if split == "train" else max(count // 4, 1)
        self.names = [f"{split}-{i:05d}" for i in range(n)]
        self.split_id, self.size, self.difficulty, self.seed, self.mode = SPLIT_IDS[split], size, difficulty, seed, mode
        self.task = TASKS[mode]

    def load(self, index: int) -> Sample:
        return render(self.seed, self.split_id, index, self.size, self.difficulty, self.mode)
