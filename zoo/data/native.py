"""Splits cached at the images' own size (optionally shrunk to a maximum side), and the random
crops (with random rescale, as MMSegmentation's RandomResize + RandomCrop) training takes from them.

Storage is ragged: every image's pixels one after the other in one flat uint8 file per array
(``images.bin`` (P, 3), ``masks.bin`` (P[, C]), ``valid.bin`` (P,)), with each image's offset and
shape in ``meta.json``; memory-mapped, so a split of large photos is never all in RAM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from zoo.data.source import Sample
from zoo.tasks import Task


class Ragged:
    """``ragged[i]`` -> the i-th image's (H, W, ...) view of a flat memmap."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, shapes: np.ndarray) -> None:
        self.flat, self.offsets, self.shapes = flat, offsets, shapes

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> np.ndarray:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("a ragged split is indexed one image at a time")
        h, w = self.shapes[index]
        start = self.offsets[index]
        return self.flat[start:start + h * w].reshape(int(h), int(w), *self.flat.shape[1:])


@dataclass
class NativeSplit:
    """One split at native size: ``images[i]`` (H_i, W_i, 3), ``masks[i]``, ``valid[i]`` or None."""

    images: Ragged
    masks: Ragged
    valid: Ragged | None
    names: list[str]
    path: Path
    task: Task = Task()

    def __len__(self) -> int:
        return len(self.names)

    def pixel_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(masks, valid) of all pixels, flattened, in blocks: for statistics such as class frequencies."""
        step = 1 << 22
        total = len(self.masks.flat)
        for start in range(0, total, step):
            masks = np.asarray(self.masks.flat[start:start + step])
            valid = None if self.valid is None else np.asarray(self.valid.flat[start:start + step]) > 0
            yield masks, valid


def native_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """(h, w) shrunk so the long side is at most ``max_side`` (never enlarged)."""
    if not max_side or max(h, w) <= max_side:
        return h, w
    factor = max_side / max(h, w)
    return max(1, round(h * factor)), max(1, round(w * factor))


def resize_native(sample: Sample, max_side: int | None) -> Sample:
    from zoo.data.cache import resize_to

    h, w = native_size(*sample.mask.shape[:2], max_side)
    if (h, w) == sample.mask.shape[:2]:
        return sample
    image, mask, valid = resize_to(sample, (w, h))
    return Sample(image, mask, valid)


class NativeWriter:
    """Appends samples to the flat files of a split being built."""

    def __init__(self, folder: Path, has_valid: bool) -> None:
        self.folder = folder
        self.files = {name: open(folder / f"{name}.bin", "wb") for name in ("images", "masks")}
        if has_valid:
            self.files["valid"] = open(folder / "valid.bin", "wb")
        self.shapes: list[tuple[int, int]] = []
        self.mask_dtype, self.planes = "uint8", 0

    def add(self, sample: Sample) -> None:
        self.shapes.append(tuple(int(v) for v in sample.mask.shape[:2]))
        self.mask_dtype = str(sample.mask.dtype)
        self.planes = sample.mask.shape[2] if sample.mask.ndim == 3 else 0
        self.files["images"].write(np.ascontiguousarray(sample.image, np.uint8).tobytes())
        self.files["masks"].write(np.ascontiguousarray(sample.mask).tobytes())
        if "valid" in self.files:
            valid = np.ones(sample.mask.shape[:2], np.uint8) if sample.valid is None else sample.valid
            self.files["valid"].write(np.ascontiguousarray(valid, np.uint8).tobytes())

    def close(self) -> dict:
        for fh in self.files.values():
            fh.close()
        return {"layout": "native", "shapes": self.shapes, "mask_dtype": self.mask_dtype, "planes": self.planes}


def open_native(folder: Path, meta: dict) -> NativeSplit:
    shapes = np.array(meta["shapes"], np.int64).reshape(-1, 2)
    offsets = np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1])])
    total = int(offsets[-1])

    def flat(name: str, dtype: str, tail: tuple[int, ...]) -> np.ndarray:
        if total == 0:
            return np.zeros((0, *tail), dtype)
        return np.memmap(folder / f"{name}.bin", dtype=dtype, mode="r", shape=(total, *tail))

    planes = (meta["planes"],) if meta.get("planes") else ()
    images = Ragged(flat("images", "uint8", (3,)), offsets, shapes)
    masks = Ragged(flat("masks", meta["mask_dtype"], planes), offsets, shapes)
    valid = Ragged(flat("valid", "uint8", ()), offsets, shapes) if meta["has_valid"] else None
    return NativeSplit(images, masks, valid, meta["names"], folder, Task.from_dict(meta.get("task")))


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def crop_batch(split: NativeSplit, indices: np.ndarray, crop: int, rescale: tuple[float, float] | None,
               rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``crop x crop`` windows of the images at ``indices``, each rescaled by a factor drawn from
    ``rescale`` first (uniform, as mmseg's ratio range) and placed at a random position; where an
    image is smaller than the window the rest is padding, marked invalid."""
    from zoo.data.cache import resize_to

    n = len(indices)
    planes = split.masks.flat.shape[1:]
    images = np.zeros((n, crop, crop, 3), np.uint8)
    masks = np.zeros((n, crop, crop, *planes), split.masks.flat.dtype)
    valid = np.zeros((n, crop, crop), np.uint8)
    for k, i in enumerate(indices):
        h, w = (int(v) for v in split.images.shapes[i])
        factor = float(rng.uniform(*rescale)) if rescale else 1.0
        side = max(1, round(crop / factor))  # the window in the image's own pixels
        y = int(rng.integers(0, h - side + 1)) if h > side else 0
        x = int(rng.integers(0, w - side + 1)) if w > side else 0
        rows, cols = slice(y, y + side), slice(x, x + side)
        part = Sample(np.asarray(split.images[i][rows, cols]), np.asarray(split.masks[i][rows, cols]),
                      None if split.valid is None else np.asarray(split.valid[i][rows, cols]))
        ph, pw = part.mask.shape[:2]
        th, tw = min(crop, max(1, round(ph * factor))), min(crop, max(1, round(pw * factor)))
        if (th, tw) != (ph, pw):
            image, mask, vmask = resize_to(part, (tw, th))
        else:
            image, mask, vmask = part.image, part.mask, part.valid
        images[k, :th, :tw], masks[k, :th, :tw] = image, mask
        valid[k, :th, :tw] = 1 if vmask is None else vmask
    return images, masks, valid
