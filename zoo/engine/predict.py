"""`zoo predict`: masks at the original resolution, and overlays, for image files or folders."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from zoo.api import load_model, weights_path
from zoo.data.pipeline import Normalize
from zoo.data.source import IMAGE_SUFFIXES, SkipSample, decode_rgb
from zoo.engine.device import pick_device
from zoo.engine.evaluate import run_config, run_preprocessing
from zoo.engine.plots import overlay
from zoo.errors import DataError, UsageError
from zoo.registry import Registry

TTA = ("none", "flip")


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif item.is_file():
            files.append(item)
        else:
            raise DataError(f"{item}: no such file or directory")
    if not files:
        raise DataError("no images among the inputs")
    return files


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


def predict(
    path: str | Path, inputs: Iterable[str | Path], out: str | Path, *, threshold: float = 0.5,
    tta: str = "none", which: str = "model", image_size: int | None = None, device: str = "auto",
    registry: Registry | None = None,
) -> list[dict[str, str]]:
    """Write ``<stem>_mask.png`` (0/255 at the input's resolution) and ``<stem>_overlay.png`` per input."""
    from PIL import Image

    if tta not in TTA:
        raise UsageError(f"--tta {tta!r}: choose one of {', '.join(TTA)}")
    if not 0 < threshold < 1:
        raise UsageError(f"--threshold {threshold}: must be between 0 and 1")
    weights = weights_path(path, which)
    prep = run_preprocessing(run_config(Path(path)), image_size)
    dev = pick_device(device)
    normalize = Normalize(prep.mean, prep.std, dev)
    model = load_model(weights, registry=registry).to(dev)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file in expand_inputs(inputs):
        try:
            image = decode_rgb(file)
        except SkipSample as exc:
            raise DataError(str(exc)) from None
        mask = (probabilities(model, image, prep.image_size, normalize, dev, tta) > threshold).astype(np.uint8)
        mask_path, overlay_path = out / f"{file.stem}_mask.png", out / f"{file.stem}_overlay.png"
        Image.fromarray(mask * 255).save(mask_path)
        Image.fromarray(overlay(image, mask)).save(overlay_path)
        written.append({"input": str(file), "mask": str(mask_path), "overlay": str(overlay_path),
                        "foreground": float(mask.mean())})
    return written
