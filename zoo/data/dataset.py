"""``zoo.create_dataset``: a map-style torch dataset over a cached split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.cache import CachedSplit, build_or_open
from zoo.errors import DataError, UnknownNameError, UsageError
from zoo.registry import Entry


class SegmentationDataset(torch.utils.data.Dataset):
    """``dataset[i]`` -> ``{"image": uint8[3, H, W], "mask": uint8[1, H, W]}`` (+ ``"valid"``); H and W
    are the image's own in a split cached at native size."""

    def __init__(self, cached: CachedSplit, name: str, split: str, options: dict[str, Any]) -> None:
        self.cached, self.name, self.split, self.options = cached, name, split, options

    def __len__(self) -> int:
        return len(self.cached)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        item = {
            "image": torch.from_numpy(np.array(self.cached.images[index])).permute(2, 0, 1),
            "mask": torch.from_numpy(np.array(self.cached.masks[index]))[None],
        }
        if self.cached.valid is not None:
            item["valid"] = torch.from_numpy(np.array(self.cached.valid[index]))[None]
        return item

    @property
    def names(self) -> list[str]:
        return self.cached.names


def open_source(entry: Entry, split: str, data_dir: str | Path | None, options: dict[str, Any]):
    """The dataset plugin's :class:`SampleSource` for ``split``: samples at their own size."""
    source, _ = _source(entry, split, data_dir, options)
    return source


def _source(entry: Entry, split: str, data_dir: str | Path | None, options: dict[str, Any]):
    spec = entry.spec
    if split not in spec.splits:
        raise UnknownNameError("split", split, spec.splits)
    resolved = spec.resolve_options(options)
    if data_dir is not None and not Path(data_dir).exists() and not resolved.get("download"):
        raise UsageError(f"--data-dir {data_dir}: no such directory")
    source = spec.build(split, data_dir, **resolved)
    if len(source) == 0:
        raise DataError(f"{entry.name} {split}: the split is empty")
    return source, resolved


def open_dataset(entry: Entry, split: str, data_dir: str | Path | None, *, image_size: int | None, keep_aspect: bool,
                 cache_dir: str | Path | None, options: dict[str, Any], max_side: int | None = None) -> SegmentationDataset:
    source, resolved = _source(entry, split, data_dir, options)
    cache_options = {k: v for k, v in resolved.items() if k != "download"}
    cached = build_or_open(source, entry.name, split, cache_options, image_size, keep_aspect,
                           Path(cache_dir) if cache_dir else None,
                           data_dir=str(Path(data_dir).resolve()) if data_dir is not None else None,
                           max_side=max_side)
    return SegmentationDataset(cached, entry.name, split, resolved)
