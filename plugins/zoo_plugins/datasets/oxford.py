"""The Oxford-IIIT Pet dataset in its official layout."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from zoo.data.source import Sample, SampleSource, check_same_size, decode_rgb, files_fingerprint, read_mask
from zoo.errors import DataError
from zoo.tasks import Task

HOME = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
ARCHIVES = (
    (HOME + "data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    (HOME + "data/annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f"),
)
PET, BACKGROUND, BORDER = 1, 2, 3


def read_split_list(path: Path) -> list[str]:
    """Image names of a split list (``NAME CLASS SPECIES BREED`` per line; '#' lines are comments)."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def split_names(root: Path, split: str) -> list[str]:
    """train/valid: trainval.txt lines with index i % 10 != 0 / == 0; test: test.txt."""
    if split == "test":
        return read_split_list(root / "annotations" / "test.txt")
    names = read_split_list(root / "annotations" / "trainval.txt")
    return [n for i, n in enumerate(names) if (i % 10 == 0) == (split == "valid")]


def _fetch(url: str, dest: Path, md5: str) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    try:
        response = urllib.request.urlopen(url, timeout=30)
    except OSError as exc:
        raise DataError(f"cannot download {url} ({getattr(exc, 'reason', exc)}); without a network, put "
                        f"images/ and annotations/ from {HOME} under {dest.parent}") from None
    digest = hashlib.md5()
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, open(dest.with_suffix(".part"), "wb") as out, Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(dest.name, total=total)
        while chunk := response.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            progress.advance(task, len(chunk))
    if digest.hexdigest() != md5:
        dest.with_suffix(".part").unlink()
        raise DataError(f"{url}: checksum {digest.hexdigest()} does not match {md5}; download again")
    dest.with_suffix(".part").replace(dest)


def download_archives(root: Path, archives: tuple[tuple[str, str], ...] = ARCHIVES) -> None:
    """Fetch and unpack the official archives into ``root`` unless already there."""
    if (root / "images").is_dir() and (root / "annotations" / "trainval.txt").is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    for url, md5 in archives:
        archive = root / url.rsplit("/", 1)[-1]
        if not archive.is_file():
            _fetch(url, archive, md5)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        archive.unlink()
    leftovers = root / "__MACOSX"
    if leftovers.is_dir():
        shutil.rmtree(leftovers)


TRIMAP = Task("multiclass", ("pet", "background", "border"), ((200, 60, 60), (0, 0, 0), (240, 200, 40)))
TRIMAP_NO_BORDER = Task("multiclass", ("pet", "background"), ((200, 60, 60), (0, 0, 0)))


class OxfordPet(SampleSource):
    """``mode=binary``: trimap 1 (pet) and 3 (border) -> 1, 2 (background) -> 0. ``mode=trimap``: the
    trimap's three classes pet, background, border (indices 0, 1, 2). With ``border="ignore"`` the
    border is left out of losses and metrics instead (a valid-pixel mask); in trimap mode two classes
    remain."""

    def __init__(self, split: str, data_dir: str | Path | None, border: str = "foreground", download: bool = False,
                 mode: str = "binary"):
        if data_dir is None:
            raise DataError("oxford-pet needs --data-dir (the folder holding images/ and annotations/)")
        self.root = Path(data_dir)
        if download:
            download_archives(self.root)
        needed = [self.root / "images", self.root / "annotations" / "trimaps",
                  self.root / "annotations" / "trainval.txt", self.root / "annotations" / "test.txt"]
        missing = [str(p.relative_to(self.root)) for p in needed if not p.exists()]
        if missing:
            raise DataError(f"{self.root}: not the Oxford-IIIT Pet layout (missing {', '.join(missing)}); "
                            f"pass -o download=true or unpack images.tar.gz and annotations.tar.gz from {HOME} there")
        self.names = split_names(self.root, split)
        if not self.names:
            raise DataError(f"{self.root}: the {split} split is empty")
        self.border, self.mode = border, mode
        self.has_valid = border == "ignore"
        if mode == "trimap":
            self.task = TRIMAP_NO_BORDER if self.has_valid else TRIMAP

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.root / "images" / f"{name}.jpg", self.root / "annotations" / "trimaps" / f"{name}.png"

    def load(self, index: int) -> Sample:
        image_path, trimap_path = self._paths(self.names[index])
        image = decode_rgb(image_path)
        trimap = read_mask(trimap_path)
        check_same_size(image, trimap, trimap_path)
        unknown = set(np.unique(trimap).tolist()) - {PET, BACKGROUND, BORDER}
        if unknown:
            raise DataError(f"{trimap_path}: trimap values {sorted(unknown)[:8]} are not 1 (pet), 2 (background) "
                            "or 3 (border)")
        if self.mode == "trimap":
            mask = (trimap.astype(np.int32) - 1).astype(np.uint8)  # 1, 2, 3 -> 0, 1, 2
            if self.has_valid:
                mask[trimap == BORDER] = 0
        else:
            mask = (trimap != BACKGROUND).astype(np.uint8)
        valid = (trimap != BORDER).astype(np.uint8) if self.has_valid else None
        return Sample(image, mask, valid)

    def fingerprint(self) -> str:
        lists = (self.root / "annotations" / "trainval.txt", self.root / "annotations" / "test.txt")
        return files_fingerprint([p for n in self.names for p in self._paths(n)] + list(lists))
