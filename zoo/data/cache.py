"""Decode and resize a split once into contiguous uint8 arrays (``.npy`` memmaps, no pickle),
keyed by dataset, options, size and the source files' fingerprint; rebuilt when any changes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.source import DataWarning, Sample, SampleSource, SkipSample
from zoo.errors import DataError

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo"


@dataclass
class CachedSplit:
    """One split in memory-mapped arrays: images (N, H, W, 3), masks (N, H, W), valid or None."""

    images: np.ndarray
    masks: np.ndarray
    valid: np.ndarray | None
    names: list[str]
    path: Path

    def __len__(self) -> int:
        return len(self.names)


def resize_sample(sample: Sample, size: int, keep_aspect: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Bilinear image, nearest mask (as the report). ``keep_aspect`` scales the long side to ``size``
    and pads; padded pixels are marked invalid so they count for nothing."""
    from PIL import Image

    h, w = sample.mask.shape
    target = (size, size) if not keep_aspect else (max(1, round(w * size / max(h, w))), max(1, round(h * size / max(h, w))))
    image = np.asarray(Image.fromarray(sample.image).resize(target, Image.BILINEAR))
    mask = np.asarray(Image.fromarray(sample.mask).resize(target, Image.NEAREST))
    valid = None if sample.valid is None else np.asarray(Image.fromarray(sample.valid).resize(target, Image.NEAREST))
    if keep_aspect:
        canvas = lambda arr, c: np.zeros((size, size, c) if c else (size, size), np.uint8)  # noqa: E731
        out_i, out_m, out_v = canvas(image, 3), canvas(mask, 0), canvas(mask, 0)
        out_i[: target[1], : target[0]], out_m[: target[1], : target[0]] = image, mask
        out_v[: target[1], : target[0]] = 1 if valid is None else valid
        return out_i, out_m, out_v
    return image, mask, valid


def cache_key(dataset: str, split: str, options: dict[str, Any], size: int, keep_aspect: bool, fingerprint: str) -> str:
    blob = json.dumps([FORMAT_VERSION, dataset, split, options, size, keep_aspect, fingerprint], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _open(folder: Path) -> CachedSplit:
    meta = json.loads((folder / "meta.json").read_text())
    load = lambda name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)  # noqa: E731
    return CachedSplit(load("images"), load("masks"), load("valid") if meta["has_valid"] else None, meta["names"], folder)


def build_or_open(
    source: SampleSource, dataset: str, split: str, options: dict[str, Any], size: int, keep_aspect: bool,
    cache_dir: Path | None = None, workers: int | None = None,
) -> CachedSplit:
    root = (cache_dir or default_cache_dir()) / dataset
    key = cache_key(dataset, split, options, size, keep_aspect, source.fingerprint())
    folder = root / f"{split}-{key}"
    if (folder / "meta.json").is_file():
        return _open(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{split}-{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    has_valid = source.has_valid or keep_aspect
    n = len(source)
    images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, size, size, 3))
    masks = np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, size, size))
    valid = np.lib.format.open_memmap(tmp / "valid.npy", "w+", np.uint8, (n, size, size)) if has_valid else None

    def work(i: int) -> str | None:
        try:
            image, mask, vmask = resize_sample(source.load(i), size, keep_aspect)
        except SkipSample as exc:
            return str(exc)
        images[i], masks[i] = image, mask
        if valid is not None:
            valid[i] = 1 if vmask is None else vmask
        return None

    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        problems = list(pool.map(work, range(n)))
    kept = [i for i, p in enumerate(problems) if p is None]
    for problem in filter(None, problems):
        warnings.warn(f"{problem}; skipped", DataWarning, stacklevel=2)
    if not kept:
        shutil.rmtree(tmp)
        raise DataError(f"{dataset} {split}: no readable samples")
    arrays = {"images": images, "masks": masks, **({"valid": valid} if valid is not None else {})}
    for name, arr in arrays.items():
        arr.flush()
        if len(kept) < n:  # compact: rewrite without the skipped rows
            np.save(tmp / f"{name}.compact.npy", arr[kept])
            os.replace(tmp / f"{name}.compact.npy", tmp / f"{name}.npy")
    del images, masks, valid, arrays
    meta = {"dataset": dataset, "split": split, "options": options, "size": size, "keep_aspect": keep_aspect,
            "names": [source.names[i] for i in kept], "skipped": [p for p in problems if p], "has_valid": has_valid}
    (tmp / "meta.json").write_text(json.dumps(meta, default=str))
    for stale in root.glob(f"{split}-*"):  # earlier caches of this split whose inputs changed
        if stale.is_dir() and stale.name != folder.name and (stale / "meta.json").is_file():
            if json.loads((stale / "meta.json").read_text()).get("options") == meta["options"]:
                shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process built it at the same time
        shutil.rmtree(tmp, ignore_errors=True)
    return _open(folder)
