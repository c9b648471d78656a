"""`zoo predict`: masks at the original resolution, and overlays, for image files or folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from zoo.api import load_model, weights_path
from zoo.atomic import save_atomic
from zoo.data.pipeline import Normalize
from zoo.data.source import IMAGE_SUFFIXES, SkipSample, decode_rgb
from zoo.engine.config import check_flag
from zoo.engine.device import pick_device
from zoo.engine.evaluate import run_config, run_preprocessing
from zoo.engine.plots import overlay
from zoo.errors import DataError, UsageError
from zoo.registry import Registry

TTA = ("none", "flip")


@dataclass(frozen=True)
class PlannedInput:
    source: Path
    relative: Path  # where its outputs go under --out: the input tree mirrored, the file name kept whole

    def output(self, out: Path, kind: str) -> Path:
        return out / self.relative.parent / f"{self.relative.name}.{kind}.png"


def plan_inputs(inputs: Iterable[str | Path]) -> list[PlannedInput]:
    """Image files of ``inputs`` (files, or folders searched recursively), each with an output
    path relative to the inputs' common folder. Keeping the whole file name (``a.jpg`` ->
    ``a.jpg.mask.png``) and the tree means two inputs never write the same output."""
    found: dict[str, tuple[Path, Path]] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            root = item
            files = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            root, files = item.parent, [item]
        else:
            raise DataError(f"{item}: no such file or directory")
        for file in files:
            found.setdefault(os.path.abspath(file), (file, Path(os.path.abspath(root))))
    if not found:
        raise DataError("no images among the inputs (looked for " + ", ".join(IMAGE_SUFFIXES) + ")")
    base = Path(os.path.commonpath([str(root) for _, root in found.values()]))
    return [PlannedInput(file, Path(absolute).relative_to(base)) for absolute, (file, _) in found.items()]


@torch.no_grad()
def probabilities(model: torch.nn.Module, image: np.ndarray, size: int, normalize: Normalize,
                  device: torch.device, tta: str = "none") -> np.ndarray:
    """Foreground probability (H, W) at the image's own resolution: the model sees the image at
    ``size`` (as in training) and its logits are resized back bilinearly."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    h, w = x.shape[-2:]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = normalize(x)
    logits = model(x)
    if tta == "flip":
        logits = (logits + model(x.flip(-1)).flip(-1)) / 2
    logits = F.interpolate(logits[:, :1].float(), size=(h, w), mode="bilinear", align_corners=False)
    return torch.sigmoid(logits)[0, 0].cpu().numpy()


@dataclass
class PredictResult:
    written: list[dict[str, Any]]
    failed: list[dict[str, str]]  # input and the reason it could not be predicted


def predict(
    path: str | Path, inputs: Iterable[str | Path], out: str | Path, *, threshold: float = 0.5,
    tta: str = "none", which: str = "model", image_size: int | None = None, device: str = "auto",
    registry: Registry | None = None,
) -> PredictResult:
    """Write ``NAME.mask.png`` (0/255 at the input's resolution) and ``NAME.overlay.png`` per input
    image. A file that cannot be decoded is recorded in ``failed`` and the others go on."""
    from PIL import Image

    if tta not in TTA:
        raise UsageError(f"--tta {tta!r}: choose one of {', '.join(TTA)}")
    check_flag("--threshold", threshold, 0.5, minimum=0, exclusive_minimum=True, maximum=1)
    if image_size is not None:
        check_flag("--image-size", image_size, 256, minimum=8)
    planned = plan_inputs(inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    weights = weights_path(path, which)
    prep = run_preprocessing(run_config(Path(path)), image_size)
    dev = pick_device(device)
    normalize = Normalize(prep.mean, prep.std, dev)
    model = load_model(weights, registry=registry).to(dev)
    written, failed = [], []
    for item in planned:
        try:
            image = decode_rgb(item.source)
        except SkipSample as exc:
            failed.append({"input": str(item.source), "reason": str(exc).removeprefix(f"{item.source}: ")})
            continue
        mask = (probabilities(model, image, prep.image_size, normalize, dev, tta) > threshold).astype(np.uint8)
        mask_path, overlay_path = item.output(out, "mask"), item.output(out, "overlay")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(mask_path, lambda tmp: Image.fromarray(mask * 255).save(tmp, format="PNG"))
        save_atomic(overlay_path, lambda tmp: Image.fromarray(overlay(image, mask)).save(tmp, format="PNG"))
        written.append({"input": str(item.source), "mask": str(mask_path), "overlay": str(overlay_path),
                        "foreground": float(mask.mean())})
    return PredictResult(written, failed)
