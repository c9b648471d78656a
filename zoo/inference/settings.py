"""How an image is shown to the model: at the training size or at its own pixels, whole or in
tiles, rescaled, with test-time augmentation. Checked once, named by the flags users type."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from zoo.engine.config import check_flag
from zoo.errors import UsageError
from zoo.inference.resample import resize_image
from zoo.inference.tta import TTA
from zoo.inference.windows import BLENDS
from zoo.models import Preprocessing

RESOLUTIONS = ("native", "train")
MAX_TILE = 16384


def parse_size(flag: str, value: str | int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``256`` or ``"256x384"`` (height x width) as (h, w)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        parts = list(value)
    else:
        text = str(value).strip().lower()
        try:
            parts = [int(p) for p in text.split("x")] if text else []
        except ValueError:
            parts = []
        if len(parts) == 1:
            parts *= 2
    if len(parts) != 2 or not all(8 <= p <= MAX_TILE for p in parts):
        raise UsageError(f"{flag} {value}: give H or HxW, each an integer from 8 to {MAX_TILE}")
    return parts[0], parts[1]


@dataclass(frozen=True)
class InferenceSettings:
    resolution: str | None = None  # None: native with a tile, train without
    tile: tuple[int, int] | None = None
    overlap: float = 0.25
    stride: tuple[int, int] | None = None
    blend: str = "gaussian"
    scale: float = 1.0
    tta: str = "none"
    batch_size: int = 8
    threshold: float = 0.5

    @classmethod
    def checked(cls, *, resolution: str | None = None, tile: Any = None, overlap: float = 0.25, stride: Any = None,
                blend: str = "gaussian", scale: float = 1.0, tta: str = "none", batch_size: int = 8,
                threshold: float = 0.5) -> "InferenceSettings":
        """Settings from user input; bad values raise one-line :class:`UsageError` naming the flag."""
        if resolution is not None and resolution not in RESOLUTIONS:
            raise UsageError(f"--resolution {resolution!r}: choose one of {', '.join(RESOLUTIONS)}")
        if tta not in TTA:
            raise UsageError(f"--tta {tta!r}: choose one of {', '.join(TTA)}")
        if blend not in BLENDS:
            raise UsageError(f"--blend {blend!r}: choose one of {', '.join(BLENDS)}")
        tile_hw, stride_hw = parse_size("--tile", tile), parse_size("--stride", stride)
        if not isinstance(overlap, (int, float)) or not math.isfinite(overlap) or not 0 <= overlap < 1:
            raise UsageError(f"--overlap {overlap}: overlap must be a fraction of the tile in [0, 1)")
        if stride_hw is not None and tile_hw is None:
            raise UsageError(f"--stride {stride}: needs --tile")
        if stride_hw is not None and (stride_hw[0] > tile_hw[0] or stride_hw[1] > tile_hw[1]):
            raise UsageError(f"--stride {stride}: must not exceed the tile {tile_hw[0]}x{tile_hw[1]} "
                             "(pixels between windows would get no prediction)")
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or not 0.01 <= scale <= 16:
            raise UsageError(f"--scale {scale}: scale must be a number from 0.01 to 16")
        check_flag("--batch-size", batch_size, 8, minimum=1)
        check_flag("--threshold", threshold, 0.5, minimum=0, exclusive_minimum=True, maximum=1)
        return cls(resolution, tile_hw, float(overlap), stride_hw, blend, float(scale), tta, int(batch_size),
                   float(threshold))

    def for_model(self, prep: Preprocessing) -> "InferenceSettings":
        """With the resolution resolved: as asked, else native with a tile or for a model trained
        on native-size crops, else the training size."""
        resolution = self.resolution or ("native" if self.tile or prep.resolution == "native" else "train")
        if self.scale != 1 and resolution != "native":
            raise UsageError(f"--scale {self.scale}: applies to --resolution native (or with --tile); "
                             "--resolution train already resizes to the training size")
        return replace(self, resolution=resolution)

    def describe(self) -> dict[str, Any]:
        """For eval's JSON and the model card: how the prediction was made."""
        data = asdict(self)
        data["tile"] = list(self.tile) if self.tile else None
        data["stride"] = list(self.stride) if self.stride else None
        return data


@dataclass(frozen=True)
class Prepared:
    """What the model sees of one image, and the part of it that maps back onto the image."""

    array: np.ndarray  # uint8 (h, w, 3)
    content: tuple[int, int]  # rows and columns that hold the image (the rest is keep-aspect padding)
    size: tuple[int, int]  # the original image's (H, W)


def prepare(settings: InferenceSettings, prep: Preprocessing, image: np.ndarray) -> Prepared:
    """``train``: resized as the training cache did (square, or long side to the size and padded
    below and right with ``keep_aspect``). ``native``: the image's own pixels, times ``scale`` (and
    shrunk as the training images were when the model was trained on a capped native size)."""
    h, w = image.shape[:2]
    if settings.resolution == "train":
        size = prep.image_size
        if not prep.keep_aspect:
            return Prepared(resize_image(image, size, size), (size, size), (h, w))
        th, tw = max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w)))
        padded = np.zeros((size, size, 3), np.uint8)
        padded[:th, :tw] = resize_image(image, tw, th)
        return Prepared(padded, (th, tw), (h, w))
    factor = settings.scale
    if prep.resolution == "native" and prep.max_side and max(h, w) > prep.max_side:
        factor *= prep.max_side / max(h, w)
    if factor != 1:
        th, tw = max(1, round(h * factor)), max(1, round(w * factor))
        return Prepared(resize_image(image, tw, th), (th, tw), (h, w))
    return Prepared(image, (h, w), (h, w))
