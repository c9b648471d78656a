"""What to predict: files, folders (recursive), globs and list files, each with the output path
that mirrors its place under the inputs' common folder; and their decoding ahead of the model."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from zoo.data.source import IMAGE_SUFFIXES, SkipSample, decode_rgb
from zoo.errors import DataError

LIST_SUFFIXES = (".txt", ".lst")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class PlannedInput:
    source: Path
    relative: Path  # where its outputs go under --out: the input tree mirrored, the file name kept whole

    def output(self, out: Path, kind: str, suffix: str = ".png") -> Path:
        return out / self.relative.parent / f"{self.relative.name}.{kind}{suffix}"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _expand(item: str) -> list[tuple[Path, Path]]:
    """(file, root its output path is taken relative to) for one input argument."""
    path = Path(item)
    if path.is_dir():
        return [(f, path) for f in _images_in(path)]
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        # a list file: one path per line, relative ones to the list's folder; '#' starts a comment
        lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        found = []
        for line in filter(None, lines):
            entry = Path(line) if Path(line).is_absolute() else path.parent / line
            found.extend(_expand(str(entry)) if entry.is_dir() else [(entry, path.parent)])
        return found
    if path.is_file():
        return [(path, path.parent)]
    if GLOB_CHARS & set(item):
        matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
        fixed = []
        for part in path.parts:  # the folders before the first wildcard
            if GLOB_CHARS & set(part):
                break
            fixed.append(part)
        root = Path(*fixed) if fixed else Path(".")
        return [(m, root) for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
    raise DataError(f"{item}: no such file or directory")


def plan_inputs(inputs: Iterable[str | Path]) -> list[PlannedInput]:
    """Image files of ``inputs`` (files, folders searched recursively, globs such as
    ``'tiles/**/*.tif'``, or ``.txt`` lists of paths), each with an output path relative to the
    inputs' common folder. Keeping the whole file name (``a.jpg`` -> ``a.jpg.mask.png``) and the
    tree means two inputs never write the same output; a file named twice is predicted once.
    A listed file that does not exist is kept: it fails like an undecodable one, by name."""
    found: dict[str, tuple[Path, Path]] = {}
    for item in inputs:
        for file, root in _expand(str(item)):
            found.setdefault(os.path.abspath(file), (file, Path(os.path.abspath(root))))
    if not found:
        raise DataError("no images among the inputs (looked for " + ", ".join(IMAGE_SUFFIXES) + ")")
    base = Path(os.path.commonpath([str(root) for _, root in found.values()]))
    return [PlannedInput(file, Path(absolute).relative_to(base)) for absolute, (file, _) in found.items()]


class DecodedInputs(torch.utils.data.Dataset):
    """``[i]`` -> the i-th input decoded and prepared (``prepare(image)``), or the reason it could
    not be: run in DataLoader workers, so decoding overlaps the model."""

    def __init__(self, planned: list[PlannedInput], prepare: Callable[[np.ndarray], Any]) -> None:
        self.planned, self.prepare = planned, prepare

    def __len__(self) -> int:
        return len(self.planned)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.planned[index]
        try:
            image = decode_rgb(item.source, max_pixels=None)
        except SkipSample as exc:
            return {"index": index, "error": str(exc).removeprefix(f"{item.source}: ")}
        return {"index": index, "image": image, "prepared": self.prepare(image)}


def _as_is(sample: dict[str, Any]) -> dict[str, Any]:
    return sample


def decoded(planned: list[PlannedInput], prepare: Callable[[np.ndarray], Any],
            workers: int) -> Iterable[dict[str, Any]]:
    """The inputs decoded in order, ``workers`` processes ahead of the caller (0: in this process)."""
    dataset = DecodedInputs(planned, prepare)
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=_as_is,
                                       prefetch_factor=2, persistent_workers=False, pin_memory=False)
