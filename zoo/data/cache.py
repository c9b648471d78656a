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

from zoo.data.native import NativeSplit, NativeWriter, open_native, resize_native
from zoo.data.source import DataWarning, Sample, SampleSource, SkipSample
from zoo.errors import DataError
from zoo.paths import default_cache_dir
from zoo.tasks import Task

FORMAT_VERSION = 2


@dataclass
class CachedSplit:
    """One split in memory-mapped arrays: images (N, H, W, 3), masks, valid (N, H, W) or None."""

    images: np.ndarray
    masks: np.ndarray  # (N, H, W) class indices, or (N, H, W, C) planes for multilabel
    valid: np.ndarray | None
    names: list[str]
    path: Path
    task: Task = Task()

    def __len__(self) -> int:
        return len(self.names)

    def pixel_blocks(self, images: int = 64):
        """(masks, valid) of ``images`` images at a time, flattened to pixels: for statistics."""
        tail = self.masks.shape[3:]
        for start in range(0, len(self), images):
            masks = np.asarray(self.masks[start:start + images]).reshape(-1, *tail)
            valid = None if self.valid is None else np.asarray(self.valid[start:start + images]).reshape(-1) > 0
            yield masks, valid


def _resize_plane(plane: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(plane).resize(target, Image.NEAREST))


def resize_to(sample: Sample, target: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Image bilinear, masks and valid nearest (as the report), to ``target`` = (width, height)."""
    from PIL import Image

    image = np.asarray(Image.fromarray(sample.image).resize(target, Image.BILINEAR))
    if sample.mask.ndim == 3:  # multilabel planes, one at a time
        mask = np.stack([_resize_plane(np.ascontiguousarray(sample.mask[..., c]), target)
                         for c in range(sample.mask.shape[2])], -1)
    else:
        mask = _resize_plane(sample.mask, target)
    valid = None if sample.valid is None else _resize_plane(sample.valid, target)
    return image, mask, valid


def resize_sample(sample: Sample, size: int, keep_aspect: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Bilinear image, nearest mask (as the report). ``keep_aspect`` scales the long side to ``size``
    and pads; padded pixels are marked invalid so they count for nothing."""
    h, w = sample.mask.shape[:2]
    target = (size, size) if not keep_aspect else (max(1, round(w * size / max(h, w))), max(1, round(h * size / max(h, w))))
    image, mask, valid = resize_to(sample, target)
    if keep_aspect:
        out_i = np.zeros((size, size, 3), np.uint8)
        out_m = np.zeros((size, size, *mask.shape[2:]), mask.dtype)
        out_v = np.zeros((size, size), np.uint8)
        out_i[: target[1], : target[0]], out_m[: target[1], : target[0]] = image, mask
        out_v[: target[1], : target[0]] = 1 if valid is None else valid
        return out_i, out_m, out_v
    return image, mask, valid


def cache_identity(dataset: str, split: str, options: dict[str, Any], size: int, keep_aspect: bool,
                   data_dir: str | None) -> list[Any]:
    """Everything a cache depends on except the files' fingerprint: a cache with the same identity
    and another fingerprint is stale (its files changed); any other is a different cache."""
    return [FORMAT_VERSION, dataset, split, options, size, keep_aspect, data_dir]


def cache_key(identity: list[Any], fingerprint: str) -> str:
    blob = json.dumps([*identity, fingerprint], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _open(folder: Path) -> "CachedSplit | NativeSplit":
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("layout") == "native":
        return open_native(folder, meta)
    load = lambda name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)  # noqa: E731
    return CachedSplit(load("images"), load("masks"), load("valid") if meta["has_valid"] else None, meta["names"], folder,
                       Task.from_dict(meta.get("task")))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_builds(root: Path) -> None:
    """Temporary folders of builds whose process died (SIGKILL leaves them behind)."""
    for tmp in root.glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def check_space(folder: Path, need: int, what: str) -> None:
    """Refuse a cache that would not fit on its disk, before a byte is written (no sparse files)."""
    from zoo.engine.config import human_bytes

    free = shutil.disk_usage(folder).free
    if need > free * 0.95:
        raise DataError(f"{what}: the cache would take {human_bytes(need)} but {folder} has {human_bytes(free)} "
                        "free; lower --image-size or set ZOO_CACHE_DIR to a larger disk")


def build_or_open(
    source: SampleSource, dataset: str, split: str, options: dict[str, Any], size: int | None, keep_aspect: bool,
    cache_dir: Path | None = None, workers: int | None = None, data_dir: str | None = None,
    max_side: int | None = None,
) -> "CachedSplit | NativeSplit":
    """The split resized to ``size`` x ``size``, or, with ``size=None``, at its own size (the long
    side shrunk to ``max_side`` when given) in a ragged layout (:mod:`zoo.data.native`)."""
    root = (cache_dir or default_cache_dir()) / dataset
    identity = cache_identity(dataset, split, options, size if size is not None else f"native:{max_side}",
                              keep_aspect, data_dir)
    key = cache_key(identity, source.fingerprint())
    folder = root / f"{split}-{key}"
    if (folder / "meta.json").is_file():
        return _open(folder)
    root.mkdir(parents=True, exist_ok=True)
    _remove_dead_builds(root)
    has_valid = source.has_valid or keep_aspect
    n = len(source)
    task = source.task
    mask_bytes = (task.channels if task.kind == "multilabel" else 1) * (1 if len(task.classes) <= 255 else 2)
    if size is not None:
        check_space(root, n * size * size * (3 + mask_bytes + has_valid), f"{dataset} {split} at --image-size {size}")
    tmp = root / f".{split}-{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if size is None:
            _build_native(source, tmp, n, max_side, workers, dataset, split)
        else:
            _build(source, tmp, n, size, keep_aspect, has_valid, workers, dataset, split)
        meta = json.loads((tmp / "meta.json").read_text())
        meta["identity"] = identity
        (tmp / "meta.json").write_text(json.dumps(meta, default=str))
        for stale in root.glob(f"{split}-*"):  # this very cache built from files that changed since
            if stale.is_dir() and stale.name != folder.name and (stale / "meta.json").is_file():
                if json.loads((stale / "meta.json").read_text()).get("identity") == json.loads(json.dumps(identity, default=str)):
                    shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process built it at the same time
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:  # a failure, a full disk or Ctrl-C: leave nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open(folder)


def _build_native(source: SampleSource, tmp: Path, n: int, max_side: int | None, workers: int | None,
                  dataset: str, split: str) -> None:
    """Each sample at its own size (shrunk to ``max_side``), appended in order; decoding runs ahead
    on threads, at most a few images at a time in memory."""
    writer = NativeWriter(tmp, True)  # crops near the edges pad: every native split carries valid pixels

    def load(i: int) -> Sample | str:
        try:
            return resize_native(source.load(i), max_side)
        except SkipSample as exc:
            return str(exc)

    kept, problems = [], []
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        pending = [pool.submit(load, i) for i in range(min(n, 16))]
        for i in range(n):
            result = pending[i].result()
            if i + 16 < n:
                pending.append(pool.submit(load, i + 16))
            pending[i] = None
            if isinstance(result, str):
                problems.append(result)
                warnings.warn(f"{result}; skipped", DataWarning, stacklevel=3)
                continue
            writer.add(result)
            kept.append(i)
    layout = writer.close()
    if not kept:
        raise DataError(f"{dataset} {split}: no readable samples")
    meta = {"dataset": dataset, "split": split, "size": None, "max_side": max_side, "keep_aspect": False,
            "names": [source.names[i] for i in kept], "skipped": problems, "has_valid": True,
            "task": source.task.to_dict(), **layout}
    (tmp / "meta.json").write_text(json.dumps(meta, default=str))


def _build(source: SampleSource, tmp: Path, n: int, size: int, keep_aspect: bool, has_valid: bool,
           workers: int | None, dataset: str, split: str) -> None:
    images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, size, size, 3))
    task = source.task
    planes = (task.channels,) if task.kind == "multilabel" else ()
    dtype = np.uint8 if len(task.classes) <= 255 else np.uint16
    masks = np.lib.format.open_memmap(tmp / "masks.npy", "w+", dtype, (n, size, size, *planes))
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
        warnings.warn(f"{problem}; skipped", DataWarning, stacklevel=3)
    if not kept:
        raise DataError(f"{dataset} {split}: no readable samples")
    arrays = {"images": images, "masks": masks, **({"valid": valid} if valid is not None else {})}
    for name, arr in arrays.items():
        arr.flush()
        if len(kept) < n:  # compact: rewrite without the skipped rows
            np.save(tmp / f"{name}.compact.npy", arr[kept])
            os.replace(tmp / f"{name}.compact.npy", tmp / f"{name}.npy")
    del images, masks, valid, arrays
    meta = {"dataset": dataset, "split": split, "size": size, "keep_aspect": keep_aspect,
            "names": [source.names[i] for i in kept], "skipped": [p for p in problems if p], "has_valid": has_valid,
            "task": task.to_dict()}
    (tmp / "meta.json").write_text(json.dumps(meta, default=str))
