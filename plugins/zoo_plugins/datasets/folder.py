"""Users' own data: images/ and masks/ with matching stems."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.source import (IMAGE_SUFFIXES, Sample, SampleSource, binary_mask, check_same_size, decode_rgb,
                             files_fingerprint, read_mask)
from zoo.errors import DataError

SPLITS = ("train", "valid", "test")


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def seeded_split(stems: list[str], split: str, valid_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Deterministic: sorted stems permuted by ``seed``; test first, then valid, the rest is train."""
    order = [stems[i] for i in np.random.default_rng(seed).permutation(len(stems))]
    n_test, n_valid = round(len(stems) * test_fraction), round(len(stems) * valid_fraction)
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    return sorted(parts[split])


class FolderDataset(SampleSource):
    def __init__(self, split: str, data_dir: str | Path | None, mask_threshold: int | None = None,
                 valid_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0):
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
        images, masks = _by_stem(base / "images"), _by_stem(base / "masks")
        unmatched = sorted(set(images) - set(masks))
        if unmatched:
            raise DataError(f"{base / 'images' / images[unmatched[0]].name}: no mask with the same stem in "
                            f"{base / 'masks'} ({len(unmatched)} image(s) without a mask)")
        stems = sorted(images)
        if not stems:
            raise DataError(f"{base / 'images'}: no images")
        if not has_split_dirs:
            stems = seeded_split(stems, split, valid_fraction, test_fraction, split_seed)
            if not stems:
                raise DataError(f"{root}: the seeded {split} split is empty; adjust valid_fraction/test_fraction")
        self.names = stems
        self._pairs = [(images[s], masks[s]) for s in stems]
        self.threshold = mask_threshold

    def load(self, index: int) -> Sample:
        image_path, mask_path = self._pairs[index]
        image = decode_rgb(image_path)
        mask = binary_mask(read_mask(mask_path), mask_path, self.threshold)
        check_same_size(image, mask, mask_path)
        return Sample(image, mask)

    def fingerprint(self) -> str:
        return files_fingerprint([p for pair in self._pairs for p in pair])
