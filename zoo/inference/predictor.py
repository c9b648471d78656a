"""``zoo.Predictor``: a trained run (or weights file) as a callable, at any image size.

Images stream through in order: decoded ahead (DataLoader workers), cut into windows, windows of
the same size batched across images, logits blended back band by band, outputs written by a
background thread. The CLI's ``zoo predict`` and ``zoo eval --full-res`` are thin wrappers.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from zoo.data.pipeline import Normalize
from zoo.data.source import SkipSample, decode_rgb
from zoo.errors import UsageError
from zoo.inference.inputs import decoded, plan_inputs
from zoo.inference.outputs import PROBS_FORMATS, OutputOptions, PredictionSink, scratch_path, write_prediction
from zoo.inference.resample import BandResizer
from zoo.inference.stream import Progress, Writer
from zoo.inference.settings import InferenceSettings, Prepared, prepare
from zoo.inference.tta import augmented
from zoo.inference.windows import Blender, WindowGrid, importance_map


@dataclass
class Prediction:
    mask: np.ndarray  # (H, W) class indices (binary 0/1), or (H, W, C) 0/1 planes for multilabel
    probs: np.ndarray | None  # float32 (C, H, W) when asked for


@dataclass
class PredictResult:
    written: list[dict[str, Any]]
    failed: list[dict[str, str]]  # input and the reason it could not be predicted
    seconds: float = 0.0


class _ImageJob:
    """One image on its way through: windows in, bands of logits at the image's size out to the sink."""

    def __init__(self, prepared: Prepared, grid: WindowGrid, blender: Blender, sink: PredictionSink, tag: Any) -> None:
        self.prepared, self.grid, self.blender, self.sink, self.tag = prepared, grid, blender, sink, tag
        self.resizer = BandResizer(prepared.content, prepared.size)
        self.remaining = len(grid)

    def add(self, y: int, x: int, logits: torch.Tensor) -> None:
        rows, cols = self.prepared.content
        for top, band in self.blender.add(y, x, logits):
            band = band[:, : max(0, rows - top), :cols]  # drop keep-aspect padding
            if band.shape[1]:
                for out_top, out in self.resizer.add(band):
                    self.sink.write(out_top, out)
        self.remaining -= 1


class Predictor:
    """``Predictor("runs/r34", device="cuda", tile=512, tta="flip")``; ``predictor(image)`` takes a
    PIL image, an (H, W, 3) uint8 array or a path and returns a :class:`Prediction` at the image's
    size; :meth:`predict_folder` writes files for many inputs. Precision, normalization, image size
    and aspect handling are the run's."""

    def __init__(self, path: str | Path, *, device: str = "auto", tile: Any = None, overlap: float = 0.25,
                 stride: Any = None, blend: str = "gaussian", resolution: str | None = None, scale: float = 1.0,
                 tta: str = "none", batch_size: int = 8, threshold: float = 0.5, which: str = "model",
                 image_size: int | None = None, registry=None) -> None:
        from zoo.api import load_model, weights_path
        from zoo.engine.config import check_flag
        from zoo.engine.device import pick_device
        from zoo.engine.evaluate import run_config, run_dtype

        settings = InferenceSettings.checked(resolution=resolution, tile=tile, overlap=overlap, stride=stride,
                                             blend=blend, scale=scale, tta=tta, batch_size=batch_size,
                                             threshold=threshold)
        if image_size is not None:
            check_flag("--image-size", image_size, 256, minimum=8)
        self.weights = weights_path(path, which, registry)
        dev = pick_device(device)
        run = run_config(self.weights).get("run", {})
        model = load_model(self.weights, registry=registry, map_location="cpu").to(dev).eval()
        prep = model.config.preprocessing
        if image_size is not None:
            prep = replace(prep, image_size=image_size)
        self._setup(model, settings, prep, dev, run_dtype(run, dev), run.get("channels_last", None) is not False)

    @classmethod
    def for_model(cls, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None, *,
                  channels_last: bool = True, preprocessing=None, **settings: Any) -> "Predictor":
        """A predictor over a model in memory (validation during training uses one): the model is
        not moved or put in eval mode; the caller does that."""
        self = cls.__new__(cls)
        self.weights = None
        self._setup(model, InferenceSettings.checked(**settings), preprocessing or model.config.preprocessing,
                    device, dtype, channels_last)
        return self

    def _setup(self, model: torch.nn.Module, settings: InferenceSettings, prep, device: torch.device,
               dtype: torch.dtype | None, channels_last: bool) -> None:
        self.device, self.dtype, self.channels_last = device, dtype, channels_last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.config, self.task = model, model.config, model.config.task
        self.preprocessing = prep
        self.settings = settings.for_model(prep)
        self.normalize = Normalize(prep.mean, prep.std, device)
        self.forward = augmented(model, self.task, self.settings.tta)
        self._weights: dict[tuple[int, int], torch.Tensor] = {}

    # ---- one image --------------------------------------------------------------------------
    def __call__(self, image: Any, *, probs: bool = False) -> Prediction:
        array = _as_array(image)
        job = self._job(prepare(self.settings, self.preprocessing, array), "array" if probs else None, None)
        for _ in self._stream(iter([job])):
            pass
        return Prediction(job.sink.labels, job.sink.probs)

    # ---- many ------------------------------------------------------------------------------
    def predict_folder(self, inputs: Iterable[str | Path], out: str | Path, *, overlay: bool = True,
                       probs: str | None = None, workers: int | None = None, progress: bool = False) -> PredictResult:
        """Write ``NAME.mask.png`` (at the input's size), ``NAME.overlay.png`` and, with ``probs``
        ("npy" or "png16"), the probabilities, mirroring the inputs' folders under ``out``. An input
        that cannot be decoded is recorded in ``failed`` and the others go on."""
        if probs is not None and probs not in PROBS_FORMATS:
            raise UsageError(f"--probs-format {probs!r}: choose one of {', '.join(PROBS_FORMATS)}")
        planned = plan_inputs(inputs)
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out}: exists and is not a directory")
        workers = default_workers(self.device) if workers is None else workers
        if workers < 0:
            raise UsageError(f"--workers {workers}: give 0 (decode in this process) or more")
        options = OutputOptions(overlay, probs)
        failed: list[dict[str, str]] = []
        started = time.perf_counter()
        source = decoded(planned, functools.partial(prepare, self.settings, self.preprocessing), workers)

        scratches: list[Path] = []  # removed if the run stops early (Ctrl-C, a full disk)

        def jobs() -> Iterator[_ImageJob]:
            for sample in source:
                item = planned[sample["index"]]
                if "error" in sample:
                    failed.append({"input": str(item.source), "reason": sample["error"]})
                    continue
                scratch = None
                if probs == "npy":
                    target = item.output(out, "probs", ".npy")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    scratch = scratch_path(target)
                    scratches.append(scratch)
                yield self._job(sample["prepared"], probs, (item, sample["image"]), scratch)

        written: list[dict[str, Any]] = []
        try:
            with Writer() as writer, Progress(progress, len(planned)) as bar:
                for job in self._stream(jobs()):
                    item, image = job.tag
                    writer.submit(write_prediction, item, out, image, job.sink, options)
                    written.extend(writer.done())
                    bar.advance(len(written) + len(failed))
                written.extend(writer.finish())
        except BaseException:
            for scratch in scratches:
                scratch.unlink(missing_ok=True)
            raise
        return PredictResult(written, failed, time.perf_counter() - started)

    # ---- the engine ------------------------------------------------------------------------------
    def _job(self, prepared: Prepared, probs: str | None, tag: Any, scratch: Path | None = None) -> _ImageJob:
        s = self.settings
        h, w = prepared.array.shape[:2]
        grid = WindowGrid.plan(h, w, s.tile, s.overlap, s.stride)
        if grid.tile not in self._weights:
            self._weights[grid.tile] = importance_map(*grid.tile, s.blend, self.device)
        blender = Blender(grid, self.task.channels, self._weights[grid.tile], self.device)
        sink = PredictionSink(self.task, *prepared.size, s.threshold, probs, scratch)
        return _ImageJob(prepared, grid, blender, sink, tag)

    def _stream(self, jobs: Iterator[_ImageJob]) -> Iterator[_ImageJob]:
        """Run every window of ``jobs``, batching same-size windows across images; yields each job
        once all its windows are in, in order."""
        open_jobs: deque[_ImageJob] = deque()
        batch: list[tuple[_ImageJob, int, int]] = []
        for job in jobs:
            open_jobs.append(job)
            for y, x in job.grid:
                if batch and (len(batch) == self.settings.batch_size or batch[0][0].grid.tile != job.grid.tile):
                    self._run(batch)
                    batch = []
                    while open_jobs and open_jobs[0].remaining == 0:
                        yield open_jobs.popleft()
                batch.append((job, y, x))
        if batch:
            self._run(batch)
        while open_jobs:
            yield open_jobs.popleft()

    @torch.no_grad()
    def _run(self, batch: list[tuple[_ImageJob, int, int]]) -> None:
        from zoo.engine.device import autocast

        th, tw = batch[0][0].grid.tile
        tiles = torch.from_numpy(np.stack([job.prepared.array[y:y + th, x:x + tw] for job, y, x in batch]))
        if self.device.type == "cuda":
            tiles = tiles.pin_memory()
        x = tiles.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = self.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            logits = self.forward(x)
        logits = logits.float()
        for i, (job, y, x0) in enumerate(batch):
            job.add(y, x0, logits[i])


def default_workers(device: torch.device) -> int:
    """Decoding processes: none when the model runs on the CPU (a worker would take a core from it;
    the writer thread still overlaps encoding), else one per spare core, at most 4."""
    import os

    return 0 if device.type == "cpu" else max(0, min(4, (os.cpu_count() or 1) - 1))


def _as_array(image: Any) -> np.ndarray:
    if isinstance(image, (str, Path)):
        try:
            return decode_rgb(Path(image), max_pixels=None)
        except SkipSample as exc:
            from zoo.errors import DataError

            raise DataError(str(exc)) from None
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UsageError(f"image: expected a uint8 array (H, W, 3), got {image.dtype} {image.shape}")
        return image
    if hasattr(image, "convert"):  # a PIL image
        return np.array(image.convert("RGB"))
    raise UsageError(f"image: expected a path, a PIL image or a uint8 (H, W, 3) array, got {type(image).__name__}")
