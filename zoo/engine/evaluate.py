"""Scoring a model on a split, and `zoo eval`: rebuild a run's model from its files and score it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.api import create_dataset, load_model, weights_path
from zoo.atomic import read_json, save_atomic, write_json
from zoo.data.pipeline import BatchLoader
from zoo.engine.config import check_flag
from zoo.engine.device import autocast, pick_device
from zoo.engine.plots import plot_confusion
from zoo.errors import UsageError
from zoo.metrics import SegmentationMeter
from zoo import registry_or_default
from zoo.data.dataset import open_source
from zoo.registry import Registry
from zoo.tasks import Task


def update_with_labels(meter: SegmentationMeter, labels: np.ndarray, mask: np.ndarray, valid: np.ndarray | None) -> None:
    """One image's predicted labels against its mask, as :class:`zoo.Predictor` and the datasets give them:
    (H, W) class indices (binary 0/1), or (H, W, C) planes for multilabel."""
    pred = torch.from_numpy(np.asarray(labels).astype(np.int64))
    truth = torch.from_numpy(np.asarray(mask).astype(np.int64))
    if meter.task.kind == "multilabel":
        pred, truth = pred.permute(2, 0, 1).bool(), truth.permute(2, 0, 1) > 0
    keep = None if valid is None else torch.from_numpy(np.asarray(valid) > 0)[None]
    meter.update_labels(pred[None].to(meter.confusion.device), truth[None].to(meter.confusion.device),
                        None if keep is None else keep.to(meter.confusion.device))


class NativeValidation:
    """Validation of a model trained on crops: each image of a split cached at native size
    predicted whole (or in ``tile`` windows) by the inference engine, scored at that size. Each DDP
    rank takes every ``world``-th image; :func:`score` sums the counts over ranks."""

    def __init__(self, split, device: torch.device, *, tile: int | None = None, batch_size: int = 8,
                 rank: int = 0, world: int = 1, channels_last: bool = True) -> None:
        self.split, self.device, self.tile, self.batch_size = split, device, tile, batch_size
        self.rank, self.world, self.channels_last = rank, world, channels_last

    def __len__(self) -> int:
        return len(range(self.rank, len(self.split), self.world))

    def predictor(self, model: torch.nn.Module, dtype: torch.dtype | None, threshold: float = 0.5):
        from zoo.inference import Predictor

        return Predictor.for_model(model, self.device, dtype, channels_last=self.channels_last, resolution="native",
                                   tile=self.tile, batch_size=self.batch_size, threshold=threshold)

    def score(self, model: torch.nn.Module, task: Task, dtype: torch.dtype | None, threshold: float) -> SegmentationMeter:
        predictor = self.predictor(model, dtype, threshold)
        meter = SegmentationMeter(task, self.device, threshold)
        valid = self.split.valid
        for i in range(self.rank, len(self.split), self.world):
            mask = np.asarray(self.split.masks[i])
            update_with_labels(meter, predictor(np.asarray(self.split.images[i])).mask, mask,
                               None if valid is None else np.asarray(valid[i]))
        return meter


@torch.no_grad()
def score(model: torch.nn.Module, loader: "BatchLoader | NativeValidation", task: Task,
          dtype: torch.dtype | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Every metric of :class:`SegmentationMeter` for ``model`` on every batch of ``loader``,
    summed over all DDP ranks."""
    was_training = model.training
    if isinstance(loader, NativeValidation):
        model.eval()
        meter = loader.score(model, task, dtype, threshold)
        meter.all_reduce()
        model.train(was_training)
        return meter.compute()
    model.eval()
    meter = SegmentationMeter(task, loader.device, threshold)
    for batch in loader.epoch(0):
        with autocast(loader.device, dtype):
            logits = model(batch.images)
        meter.update(logits, batch.masks, batch.valid)
    meter.all_reduce()
    model.train(was_training)
    return meter.compute()


def run_config(path: Path) -> dict[str, Any]:
    """The run's config.json when ``path`` is (or sits in) a run directory; {} for a bare weights file."""
    folder = path if path.is_dir() else path.parent
    config_file = folder / "config.json"
    if not config_file.is_file():
        return {}
    config = read_json(config_file, "run config")
    return config if isinstance(config, dict) else {}


def evaluate(
    path: str | Path,
    *,
    split: str = "test",
    dataset: str | None = None,
    data_dir: str | None = None,
    options: dict[str, str] | None = None,
    which: str = "model",
    image_size: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    threshold: float = 0.5,
    cache_dir: str | None = None,
    registry: Registry | None = None,
    output: str | Path | None = None,
    full_res: bool = False,
    inference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rebuild the model from the files alone and score it on ``split``. Dataset, its options, image
    size and normalization default to the run's (the model's config); a bare ``.safetensors`` needs
    ``dataset``. Writes the result as JSON to ``output`` (default: ``eval-<split>.json`` beside the
    weights) and the confusion matrix as ``confusion-<split>.png``.

    ``full_res`` predicts every image at its own size through :class:`zoo.Predictor` (``inference``:
    its tile, overlap, stride, blend, resolution, scale and tta) and scores against the original
    masks; otherwise the split is scored at the training size, exactly as validation did."""
    check_flag("--batch-size", batch_size, 8, minimum=1)
    check_flag("--threshold", threshold, 0.5, minimum=0, exclusive_minimum=True, maximum=1)
    if image_size is not None:
        check_flag("--image-size", image_size, 256, minimum=8)
    weights = weights_path(path, which, registry)
    saved = run_config(weights)
    run, data = saved.get("run", {}), saved.get("dataset", {})
    dev = pick_device(device)
    model = load_model(weights, registry=registry, map_location="cpu").to(dev)
    config = model.config
    prep = config.preprocessing
    same_dataset = dataset is None or dataset == data.get("name")
    name = dataset or data.get("name") or "synthetic"
    ds_options = {**(data.get("options", {}) if same_dataset else {}), **(options or {})}
    if prep.resolution == "native" and not full_res:  # trained on crops: score as its validation did
        full_res = True
        inference = {**(inference or {}), "tile": (inference or {}).get("tile") or run.get("val_tile")}
    if full_res:
        from zoo.inference import Predictor

        predictor = Predictor.for_model(model.eval(), dev, run_dtype(run, dev),
                                        channels_last=run.get("channels_last", None) is not False,
                                        preprocessing=replace(prep, image_size=image_size or prep.image_size),
                                        threshold=threshold, batch_size=batch_size, **(inference or {}))
        metrics, protocol, size = _score_full_res(predictor, registry, name, split,
                                                  data_dir or (run.get("data_dir") if same_dataset else None),
                                                  ds_options)
    else:
        if any(v not in (None, 0.25, "gaussian", 1.0, "none") for v in (inference or {}).values()):
            flags = ", ".join(f"--{k}" for k, v in (inference or {}).items() if v not in (None, 0.25, "gaussian", 1.0, "none"))
            raise UsageError(f"{flags}: need --full-res (the training-size score is the one validation computed)")
        split_data = create_dataset(name, split, data_dir or (run.get("data_dir") if same_dataset else None),
                                    image_size=image_size or prep.image_size, keep_aspect=prep.keep_aspect,
                                    cache_dir=cache_dir or run.get("cache_dir"), registry=registry, **ds_options)
        _check_task(split_data.cached.task, config.task, name, split)
        loader = BatchLoader(split_data.cached, batch_size, dev, train=False, mean=prep.mean, std=prep.std)
        metrics = score(model, loader, config.task, run_dtype(run, dev), threshold=threshold)
        protocol, size = {"name": "train-size", "description": "resized to the training size, as in validation"}, \
            image_size or prep.image_size
    metrics["classes"] = list(config.task.metric_classes)
    result = {"weights": str(weights), "architecture": config.architecture, "encoder": config.encoder,
              "task": config.task.kind, "dataset": name, "split": split, "image_size": size,
              "protocol": protocol["name"], "protocol_detail": protocol, "threshold": threshold, **metrics}
    target = Path(output) if output else default_output(weights, f"eval-{split}.json")
    write_json(target, result)
    picture = target.with_name(f"confusion-{split}.png")
    save_atomic(picture, lambda tmp: plot_confusion(metrics, config.task, tmp))
    result["output"], result["confusion_png"] = str(target), str(picture)
    if target.parent.absolute() == weights.parent.absolute() and (weights.parent / "config.json").is_file():
        from zoo.card import write_card

        result["card"] = str(write_card(weights.parent))  # the card's results table now has this split
    return result


def default_output(weights: Path, name: str) -> Path:
    """Beside the weights, unless they are a download in the Hugging Face cache: then here, named
    after the hub repo (``ORG--NAME-eval-test.json``)."""
    from zoo import hub

    cache = hub.cache_dir().absolute()
    if cache in weights.absolute().parents:
        repo = next((p.name.removeprefix("models--") for p in weights.absolute().parents
                     if p.name.startswith("models--")), "hub")
        return Path(f"{repo}-{name}")
    return weights.parent / name


def _check_task(data_task: Task, model_task: Task, name: str, split: str) -> None:
    if data_task.channels != model_task.channels or data_task.kind != model_task.kind:
        raise UsageError(f"{name} {split} is a {data_task.kind} dataset with {len(data_task.classes)} "
                         f"classes; the model predicts {model_task.kind} with {len(model_task.classes)}")


def _score_full_res(predictor, registry: Registry | None, name: str, split: str, data_dir: str | None,
                    ds_options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Every image of the split, read at its own size from the dataset's files, predicted at that
    size and scored against its own mask: the protocol MMSegmentation and nnU-Net report."""
    from zoo.data.source import SkipSample

    source = open_source(registry_or_default(registry).get("dataset", name), split, data_dir, ds_options)
    _check_task(source.task, predictor.task, name, split)
    meter = SegmentationMeter(predictor.task, "cpu", predictor.settings.threshold)
    skipped = 0
    for i in range(len(source)):
        try:
            sample = source.load(i)
        except SkipSample:
            skipped += 1
            continue
        update_with_labels(meter, predictor(sample.image).mask, sample.mask, sample.valid)
    metrics = meter.compute()
    metrics["images_skipped"] = skipped
    protocol = {"name": "full-res", "description": "each image predicted and scored at its own size",
                **predictor.settings.describe()}
    return metrics, protocol, predictor.preprocessing.image_size


def run_dtype(run: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """The autocast a run validated with, so eval reproduces its validation figures."""
    from zoo.engine.device import amp_dtype

    amp = run.get("amp")
    if amp is None:  # recorded before precision was resolved at start-up: autocast was CUDA-only then
        amp = device.type == "cuda"
    return amp_dtype(device, amp)
