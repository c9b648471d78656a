"""What a prediction becomes: labels and probabilities filled a band at a time, and the files
written from them (mask PNG, overlay, probabilities as .npy or 16-bit PNG), every one atomically."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.atomic import save_atomic
from zoo.inference.inputs import PlannedInput
from zoo.metrics import probabilities
from zoo.tasks import Task

PROBS_FORMATS = ("npy", "png16")


class PredictionSink:
    """Labels (H, W) uint8 class indices (binary 0/1), or (H, W, C) 0/1 planes for multilabel, and
    optionally per-class probabilities (C, H, W): float32 in memory (``"array"``), float16 in a
    memory-mapped .npy file (``"npy"``, so a 20000 x 20000 map never sits in RAM), or uint16 in
    units of 1/65535 (``"png16"``)."""

    def __init__(self, task: Task, height: int, width: int, threshold: float = 0.5,
                 probs: str | None = None, scratch: Path | None = None) -> None:
        self.task, self.threshold, self.height, self.width = task, threshold, height, width
        shape = (height, width, task.channels) if task.kind == "multilabel" else (height, width)
        self.labels = np.zeros(shape, np.uint8 if len(task.classes) < 256 else np.uint16)
        self.probs_kind, self.scratch = probs, scratch
        c = task.channels
        if probs == "npy":
            self.probs = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float16, shape=(c, height, width))
        elif probs == "png16":
            self.probs = np.zeros((c, height, width), np.uint16)
        elif probs == "array":
            self.probs = np.zeros((c, height, width), np.float32)
        else:
            self.probs = None

    def write(self, top: int, logits: torch.Tensor) -> None:
        """Rows ``top .. top + k`` from (C, k, W) logits."""
        p = probabilities(self.task, logits[None].float())[0]
        rows = slice(top, top + p.shape[1])
        if self.task.kind == "multiclass":
            labels = p.argmax(0)
        elif self.task.kind == "binary":
            labels = p[0] > self.threshold
        else:
            labels = (p > self.threshold).permute(1, 2, 0)
        self.labels[rows] = labels.cpu().numpy()
        if self.probs is None:
            return
        if self.probs_kind == "png16":
            self.probs[:, rows] = (p * 65535).round().to(torch.int32).cpu().numpy()
        else:
            self.probs[:, rows] = p.cpu().numpy()

    def discard(self) -> None:
        if self.scratch is not None:
            self.probs = None
            self.scratch.unlink(missing_ok=True)


def scratch_path(target: Path) -> Path:
    """A hidden file beside ``target`` to fill before it is moved onto ``target``."""
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"


@dataclass(frozen=True)
class OutputOptions:
    overlay: bool = True
    probs: str | None = None  # None, "npy" or "png16"


def write_prediction(item: PlannedInput, out: Path, image: np.ndarray, sink: PredictionSink,
                     options: OutputOptions) -> dict[str, Any]:
    """The mask (binary 0/255; multiclass an index PNG in palette mode with the task's colours;
    multilabel one 0/255 mask per label), the overlay with a legend, and the probabilities."""
    from PIL import Image

    from zoo.engine.plots import overlay, with_legend

    task, labels = sink.task, sink.labels
    written: dict[str, Any] = {"input": str(item.source)}
    item.output(out, "mask").parent.mkdir(parents=True, exist_ok=True)
    if task.kind == "multiclass":
        path = item.output(out, "mask")
        indexed = Image.fromarray(labels.astype(np.uint8), mode="L").convert("P")
        indexed.putpalette([v for colour in task.colors for v in colour])
        save_atomic(path, lambda tmp: indexed.save(tmp, format="PNG"))
        written["mask"] = str(path)
        written["classes_present"] = sorted({task.classes[i] for i in np.unique(labels).tolist()})
    elif task.kind == "binary":
        path = item.output(out, "mask")
        save_atomic(path, lambda tmp: Image.fromarray(labels * 255).save(tmp, format="PNG"))
        written["mask"] = str(path)
        written["foreground"] = float(labels.mean())
    else:
        for c, name in enumerate(task.classes):
            plane = item.output(out, f"{name}.mask")
            save_atomic(plane, lambda tmp: Image.fromarray(labels[..., c] * 255).save(tmp, format="PNG"))
            written[f"mask_{name}"] = str(plane)
    if options.overlay:
        path = item.output(out, "overlay")
        picture = with_legend(overlay(image, labels, task), task)
        save_atomic(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
        written["overlay"] = str(path)
    if options.probs == "npy":
        path = item.output(out, "probs", ".npy")
        sink.probs.flush()
        sink.probs = None  # close the memory map before the file moves
        save_atomic(path, lambda tmp: os.replace(sink.scratch, tmp))
        written["probs"] = str(path)
    elif options.probs == "png16":
        names = [""] if task.kind == "binary" else [f".{name}" for name in task.classes]
        for c, name in enumerate(names):
            path = item.output(out, f"probs{name}")
            plane = np.ascontiguousarray(sink.probs[c])
            save_atomic(path, lambda tmp: Image.fromarray(plane).save(tmp, format="PNG"))
            written[f"probs{name.replace('.', '_')}"] = str(path)
    return written
