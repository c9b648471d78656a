"""What a dataset plugin implements, and robust decoding helpers. numpy + PIL only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from zoo.errors import DataError
from zoo.tasks import Task

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class DataWarning(UserWarning):
    """A sample was skipped; the message names its file."""


class SkipSample(Exception):
    """Raised by :meth:`SampleSource.load` for a sample that cannot be read (missing, undecodable)."""


@dataclass
class Sample:
    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # (H, W) class indices (binary: 0/1), or (H, W, C) 0/1 planes for multilabel
    valid: np.ndarray | None = None  # uint8 (H, W), 1 where the pixel counts


class SampleSource:
    """One split of a dataset. ``names`` identify samples; ``load(i)`` returns the i-th at its own
    size; ``fingerprint()`` changes whenever the underlying data do (it keys the cache). ``task``
    declares what the masks hold (binary unless the dataset says otherwise)."""

    names: list[str]
    has_valid: bool = False
    task: Task = Task()

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def fingerprint(self) -> str:
        return ""


def files_fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    """Names, sizes and modification times of ``paths``: cheap, and changes when a file does."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        try:
            stat = path.stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}|missing\n".encode())
    return digest.hexdigest()


_PIL_LIMIT = object()  # PIL's own decompression-bomb limit (about 179M pixels)


def decode_rgb(path: Path, max_pixels: int | None | object = _PIL_LIMIT) -> np.ndarray:
    """Any image PIL can read, whatever its suffix says (PNG or GIF named .jpg, CMYK, grayscale,
    palette, RGBA, 16-bit), as uint8 RGB. A missing or undecodable file raises :class:`SkipSample`.
    ``max_pixels=None`` lifts PIL's size limit (prediction of 20000 x 20000 tiles)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    saved = Image.MAX_IMAGE_PIXELS
    try:
        if max_pixels is not _PIL_LIMIT:
            Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return _to_rgb(img)
    except FileNotFoundError:
        raise SkipSample(f"{path}: file is missing") from None
    except Image.DecompressionBombError as exc:
        raise SkipSample(f"{path}: too large ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SkipSample(f"{path}: cannot decode ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _to_rgb(img, rows: int = 1024) -> np.ndarray:
    """The image as a new uint8 (H, W, 3) array, converted ``rows`` at a time: PIL's whole-image
    convert and array copies would hold three more copies of a 20000 x 20000 photo at once."""
    from PIL import Image

    w, h = img.size
    grey = img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
    # 16-bit and 32-bit grey: PIL's convert("RGB") clips at 255 (a 16-bit photo turns white)
    wide = grey and (img.mode.startswith("I;16") or (img.getextrema()[1] or 0) > 255)
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    out = np.empty((h, w, 3), np.uint8)
    for top in range(0, h, rows):
        band = img.crop((0, top, w, min(h, top + rows)))
        if grey:
            values = np.asarray(band, dtype=np.float64)
            out[top:top + rows] = np.clip(np.rint(values / 257 if wide else values), 0, 255).astype(np.uint8)[..., None]
            continue
        if alpha:
            band = Image.alpha_composite(Image.new("RGBA", band.size, (0, 0, 0, 255)), band.convert("RGBA"))
        out[top:top + rows] = np.asarray(band if band.mode == "RGB" else band.convert("RGB"))
    return out


def read_mask(path: Path) -> np.ndarray:
    """A mask's values as written, never wrapped: palette indices for palette PNGs, 0/1 for 1-bit,
    uint16 for 16-bit files, luminance for colour files. A missing or undecodable file raises
    :class:`SkipSample`; the dataset's rule then maps (or refuses) the values."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "1":
                return np.asarray(img, dtype=np.uint8)
            if img.mode in ("L", "P"):
                return np.asarray(img)
            if img.mode.startswith("I"):  # "I;16", "I;16B", "I": 16/32-bit integers
                arr = np.asarray(img)
                if arr.min() < 0 or arr.max() > 65535:
                    raise DataError(f"{path}: mask values {int(arr.min())}..{int(arr.max())} do not fit 16 bits")
                return arr.astype(np.uint16)
            return np.asarray(img.convert("L"))
    except FileNotFoundError:
        raise SkipSample(f"{path}: mask is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SkipSample(f"{path}: cannot decode mask ({exc})") from None


def binary_mask(values: np.ndarray, path: Path, threshold: int | None = None) -> np.ndarray:
    """Raw mask values -> {0, 1}: ``> threshold`` when given, else values must be {0, 1}, {0, 255}
    or, in a 16-bit file, {0, 65535}. Anything else is an error naming the file and the values: a
    mask is never silently relabelled."""
    if threshold is not None:
        return (values > threshold).astype(np.uint8)
    present = set(np.unique(values).tolist())
    if present <= {0, 1}:
        return values.astype(np.uint8)
    full = 65535 if values.dtype == np.uint16 else 255
    if present <= {0, full}:
        return (values == full).astype(np.uint8)
    shown = sorted(present)[:8]
    allowed = "0/1, 0/255 or 0/65535 in 16-bit files"
    raise DataError(f"{path}: mask values {shown} are not binary ({allowed}); pass -o mask_threshold=N to binarize")


def check_same_size(image: np.ndarray, mask: np.ndarray, path: Path) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                        f"{image.shape[1]}x{image.shape[0]}")


def index_mask(values: np.ndarray, path: Path, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Class indices as written (an index or palette PNG) -> (mask, valid): ``task.ignore_index``
    pixels become invalid; any other value outside the classes is an error naming file and values."""
    valid = values != task.ignore_index
    unexpected = np.unique(values[valid & (values >= len(task.classes))])
    if unexpected.size:
        raise DataError(f"{path}: mask values {unexpected[:8].tolist()} are not classes of this dataset "
                        f"(0..{len(task.classes) - 1}, or {task.ignore_index} to ignore a pixel)")
    dtype = np.uint8 if len(task.classes) <= 255 else np.uint16
    return np.where(valid, values, 0).astype(dtype), valid.astype(np.uint8)


def color_mask(path: Path, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """An RGB colour mask -> (mask, valid) by the task's class colours; white (255, 255, 255) marks
    ignored pixels unless it is a class's colour; any other colour is an error naming file and colours."""
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(task.colors)}
    mask = np.zeros(codes.shape, np.uint8 if len(task.classes) <= 255 else np.uint16)
    valid = np.zeros(codes.shape, np.uint8)
    found = np.unique(codes)
    unknown = [c for c in found.tolist() if c not in lookup and c != 0xFFFFFF]
    if unknown:
        shown = ", ".join(f"#{c:06x}" for c in unknown[:4])
        raise DataError(f"{path}: colours {shown} are not class colours of this dataset "
                        f"({', '.join(f'{n}=#{(r << 16) | (g << 8) | b:06x}' for n, (r, g, b) in zip(task.classes, task.colors))})")
    for code, index in lookup.items():
        where = codes == code
        mask[where], valid[where] = index, 1
    return mask, valid
