"""`zoo predict`: masks at the original resolution, and overlays, for image files or folders."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
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
from zoo.engine.plots import overlay, with_legend
from zoo.metrics import probabilities as probs_of
from zoo.models import Preprocessing
from zoo.tasks import Task
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
def predict_logits(model: torch.nn.Module, image: np.ndarray, prep: Preprocessing, normalize: Normalize,
                   device: torch.device, tta: str = "none") -> torch.Tensor:
    """Logits (C, H, W) at the image's own resolution. The model sees the image as in training
    (resized to the training size, or padded to it keeping the aspect) and its logits are mapped back
    bilinearly; ``tta="flip"`` averages with the mirrored image's."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    h, w = x.shape[-2:]
    size = prep.image_size
    if prep.keep_aspect:  # as the cache did: long side to size, padding below and right
        th, tw = max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w)))
        x = F.pad(F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True),
                  (0, size - tw, 0, size - th))
    else:
        th, tw = size, size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = normalize(x)
    logits = model(x).float()
    if tta == "flip":
        logits = (logits + model(x.flip(-1)).float().flip(-1)) / 2
    logits = logits[..., :th, :tw]
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]


def probabilities(model: torch.nn.Module, image: np.ndarray, prep: Preprocessing, normalize: Normalize,
                  device: torch.device, tta: str = "none") -> np.ndarray:
    """Per-class probabilities (C, H, W) at the image's own resolution (binary: the foreground's)."""
    return probs_of(model.config.task, predict_logits(model, image, prep, normalize, device, tta)[None])[0].cpu().numpy()


def write_outputs(item: "PlannedInput", out: Path, image: np.ndarray, logits: torch.Tensor, task: Task,
                  threshold: float, probs: bool) -> dict[str, Any]:
    """The mask (binary 0/255; multiclass an index PNG in palette mode with the task's colours;
    multilabel one 0/255 mask per label), the overlay with a legend, and optionally probabilities."""
    from PIL import Image

    p = probs_of(task, logits[None])[0]
    written: dict[str, Any] = {"input": str(item.source)}
    mask_path = item.output(out, "mask")
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    if task.kind == "multiclass":
        labels = p.argmax(0).cpu().numpy().astype(np.uint8)
        indexed = Image.fromarray(labels, mode="L").convert("P")
        indexed.putpalette([v for colour in task.colors for v in colour])
        save_atomic(mask_path, lambda tmp: indexed.save(tmp, format="PNG"))
        written["classes_present"] = sorted({task.classes[i] for i in np.unique(labels).tolist()})
    elif task.kind == "binary":
        labels = (p[0] > threshold).cpu().numpy().astype(np.uint8)
        save_atomic(mask_path, lambda tmp: Image.fromarray(labels * 255).save(tmp, format="PNG"))
        written["foreground"] = float(labels.mean())
    else:
        labels = (p > threshold).permute(1, 2, 0).cpu().numpy().astype(np.uint8)
        for c, name in enumerate(task.classes):
            plane = item.output(out, f"{name}.mask")
            save_atomic(plane, lambda tmp: Image.fromarray(labels[..., c] * 255).save(tmp, format="PNG"))
            written[f"mask_{name}"] = str(plane)
        mask_path = None
    if mask_path is not None:
        written["mask"] = str(mask_path)
    overlay_path = item.output(out, "overlay")
    picture = with_legend(overlay(image, labels, task), task)
    save_atomic(overlay_path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
    written["overlay"] = str(overlay_path)
    if probs:
        probs_path = overlay_path.with_name(f"{item.relative.name}.probs.npy")
        values = p.cpu().numpy().astype(np.float16)

        def save_probs(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, values)

        save_atomic(probs_path, save_probs)
        written["probs"] = str(probs_path)
    return written


@dataclass
class PredictResult:
    written: list[dict[str, Any]]
    failed: list[dict[str, str]]  # input and the reason it could not be predicted


def predict(
    path: str | Path, inputs: Iterable[str | Path], out: str | Path, *, threshold: float = 0.5,
    tta: str = "none", which: str = "model", image_size: int | None = None, device: str = "auto",
    probs: bool = False, registry: Registry | None = None,
) -> PredictResult:
    """Write ``NAME.mask.png`` (at the input's resolution) and ``NAME.overlay.png`` per input image
    (and ``NAME.probs.npy``, float16 (C, H, W), with ``probs``). A file that cannot be decoded is
    recorded in ``failed`` and the others go on."""
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
    dev = pick_device(device)
    model = load_model(weights, registry=registry).to(dev)
    prep = model.config.preprocessing
    if image_size is not None:
        prep = replace(prep, image_size=image_size)
    normalize = Normalize(prep.mean, prep.std, dev)
    written, failed = [], []
    for item in planned:
        try:
            image = decode_rgb(item.source)
        except SkipSample as exc:
            failed.append({"input": str(item.source), "reason": str(exc).removeprefix(f"{item.source}: ")})
            continue
        logits = predict_logits(model, image, prep, normalize, dev, tta)
        written.append(write_outputs(item, out, image, logits, model.config.task, threshold, probs))
    return PredictResult(written, failed)
