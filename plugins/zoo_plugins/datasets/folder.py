"""Users' own data: images/ and masks/ with matching stems.

What the masks hold is read from ``classes.json`` in the data folder when there is one
(``{"task": "multiclass", "classes": [...], "colors": [[r, g, b], ...], "masks": "index"|"color",
"ignore_index": 255}``), else from ``-o palette=name:rrggbb,...`` (RGB colour masks), ``--classes``
(index masks), or a ``masks/`` made of one folder per label (multilabel); otherwise masks are binary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.source import (IMAGE_SUFFIXES, Sample, SampleSource, binary_mask, check_same_size, color_mask,
                             decode_rgb, files_fingerprint, index_mask, read_mask)
from zoo.errors import DataError
from zoo.tasks import IGNORE_INDEX, Task

SPLITS = ("train", "valid", "test")


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def seeded_split(stems: list[str], split: str, valid_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Deterministic: sorted stems permuted by ``seed``; test first, then valid, the rest is train."""
    order = [stems[i] for i in np.random.default_rng(seed).permutation(len(stems))]
    n_test, n_valid = round(len(stems) * test_fraction), round(len(stems) * valid_fraction)
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    return sorted(parts[split])


def parse_palette(text: str) -> Task:
    """``background:000000,cat:ff0000`` -> a multiclass task with those names and colours."""
    names, colors = [], []
    for item in text.split(","):
        name, _, code = item.strip().partition(":")
        code = code.strip().lstrip("#")
        if not name or len(code) != 6 or any(c not in "0123456789abcdefABCDEF" for c in code):
            raise DataError(f"-o palette={text}: expected name:rrggbb pairs separated by commas (got {item!r})")
        names.append(name.strip())
        colors.append(tuple(int(code[i:i + 2], 16) for i in (0, 2, 4)))
    return Task("multiclass", tuple(names), tuple(colors))


def _from_classes_json(path: Path) -> tuple[Task, str]:
    try:
        spec: Any = json.loads(path.read_text())
        task = Task(spec.get("task", "multiclass"), tuple(spec["classes"]), tuple(map(tuple, spec.get("colors") or ())),
                    int(spec.get("ignore_index", IGNORE_INDEX)))
        encoding = spec.get("masks", "index")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a valid classes file ({type(exc).__name__}: {exc}); expected "
                        '{"task": "multiclass", "classes": ["background", ...], "colors": [[r, g, b], ...]}') from None
    if encoding not in ("index", "color"):
        raise DataError(f"{path}: \"masks\" must be \"index\" or \"color\", got {encoding!r}")
    return task, encoding


class FolderDataset(SampleSource):
    def __init__(self, split: str, data_dir: str | Path | None, mask_threshold: int | None = None,
                 valid_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 classes: str = "", palette: str = ""):
        if data_dir is None:
            raise DataError("folder needs --data-dir (a folder with images/ and masks/)")
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"{root}: no such directory")
        has_split_dirs = any((root / s / "images").is_dir() for s in SPLITS)
        base = root / split if has_split_dirs else root
        if not (base / "images").is_dir() or not (base / "masks").is_dir():
            raise DataError(f"{base}: expected images/ and masks/ folders"
                            + (f" (split folders found, but none for {split!r})" if has_split_dirs else ""))
        self.root, self.threshold = root, mask_threshold
        self.task, self.encoding = self._task(root, base / "masks", classes, palette)
        self.has_valid = self.task.kind == "multiclass"
        images = _by_stem(base / "images")
        masks = self._masks(base / "masks", images)
        stems = sorted(images)
        if not stems:
            raise DataError(f"{base / 'images'}: no images")
        if not has_split_dirs:
            stems = seeded_split(stems, split, valid_fraction, test_fraction, split_seed)
            if not stems:
                raise DataError(f"{root}: the seeded {split} split is empty; adjust valid_fraction/test_fraction")
        self.names = stems
        self._pairs = [(images[s], masks[s]) for s in stems]
        if self.encoding == "index" and self.task.kind == "multiclass" and not classes_file(root).is_file():
            self._colors_from_palette()

    def _task(self, root: Path, masks: Path, classes: str, palette: str) -> tuple[Task, str]:
        if classes_file(root).is_file():
            return _from_classes_json(classes_file(root))
        if palette:
            return parse_palette(palette), "color"
        if classes:
            names = tuple(n.strip() for n in classes.split(","))
            return (Task("binary", names) if len(names) == 1 else Task("multiclass", names)), "index"
        labels = sorted(p.name for p in masks.iterdir() if p.is_dir())
        if labels:
            return Task("multilabel", tuple(labels)), "planes"
        return Task(), "index"

    def _masks(self, folder: Path, images: dict[str, Path]) -> dict[str, Any]:
        """Per stem: its mask file, or for multilabel its file per label (each must exist)."""
        if self.encoding == "planes":
            per_label = {label: _by_stem(folder / label) for label in self.task.classes}
            for label, files in per_label.items():
                missing = sorted(set(images) - set(files))
                if missing:
                    raise DataError(f"{folder / label}: no mask for {images[missing[0]].name} "
                                    f"({len(missing)} image(s) without a {label!r} mask)")
            return {stem: [per_label[label][stem] for label in self.task.classes] for stem in images}
        masks = _by_stem(folder)
        unmatched = sorted(set(images) - set(masks))
        if unmatched:
            raise DataError(f"{images[unmatched[0]].parent / images[unmatched[0]].name}: no mask with the same stem in "
                            f"{folder} ({len(unmatched)} image(s) without a mask)")
        return masks

    def _colors_from_palette(self) -> None:
        """Palette PNGs carry their classes' colours: use them for predictions and overlays."""
        from PIL import Image

        with Image.open(self._pairs[0][1]) as img:
            if img.mode != "P":
                return
            flat = img.getpalette() or []
        n = len(self.task.classes)
        if len(flat) >= 3 * n:
            self.task = Task("multiclass", self.task.classes, tuple(tuple(flat[3 * i:3 * i + 3]) for i in range(n)),
                             self.task.ignore_index)

    def load(self, index: int) -> Sample:
        image_path, mask_path = self._pairs[index]
        image = decode_rgb(image_path)
        if self.encoding == "planes":
            planes = [binary_mask(read_mask(p), p, self.threshold) for p in mask_path]
            for plane, path in zip(planes, mask_path):
                check_same_size(image, plane, path)
            return Sample(image, np.stack(planes, -1))
        if self.encoding == "color":
            mask, valid = color_mask(mask_path, self.task)
        elif self.task.kind == "multiclass":
            mask, valid = index_mask(read_mask(mask_path), mask_path, self.task)
        else:
            mask, valid = binary_mask(read_mask(mask_path), mask_path, self.threshold), None
        check_same_size(image, mask, mask_path)
        return Sample(image, mask, valid)

    def fingerprint(self) -> str:
        files = [p for image, mask in self._pairs for p in [image, *(mask if isinstance(mask, list) else [mask])]]
        return files_fingerprint(files + [classes_file(self.root)], extra=self.task.to_dict().__repr__())


def classes_file(root: Path) -> Path:
    return root / "classes.json"
