"""Scoring a model on a split, and `zoo eval`: rebuild a run's model from its files and score it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zoo.api import create_dataset, load_model, weights_path
from zoo.atomic import read_json, save_atomic, write_json
from zoo.data.pipeline import BatchLoader
from zoo.engine.config import check_flag
from zoo.engine.device import autocast, pick_device
from zoo.engine.plots import plot_confusion
from zoo.errors import UsageError
from zoo.metrics import SegmentationMeter
from zoo.registry import Registry
from zoo.tasks import Task


@torch.no_grad()
def score(model: torch.nn.Module, loader: BatchLoader, task: Task, dtype: torch.dtype | None = None,
          threshold: float = 0.5) -> dict[str, Any]:
    """Every metric of :class:`SegmentationMeter` for ``model`` on every batch of ``loader``,
    summed over all DDP ranks."""
    was_training = model.training
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
) -> dict[str, Any]:
    """Rebuild the model from the files alone and score it on ``split``. Dataset, its options, image
    size and normalization default to the run's (the model's config); a bare ``.safetensors`` needs
    ``dataset``. Writes the result as JSON to ``output`` (default: ``eval-<split>.json`` beside the
    weights) and the confusion matrix as ``confusion-<split>.png``."""
    check_flag("--batch-size", batch_size, 8, minimum=1)
    check_flag("--threshold", threshold, 0.5, minimum=0, exclusive_minimum=True, maximum=1)
    if image_size is not None:
        check_flag("--image-size", image_size, 256, minimum=8)
    path = Path(path)
    weights = weights_path(path, which)
    saved = run_config(path)
    run, data = saved.get("run", {}), saved.get("dataset", {})
    dev = pick_device(device)
    model = load_model(weights, registry=registry, map_location="cpu").to(dev)
    config = model.config
    prep = config.preprocessing
    same_dataset = dataset is None or dataset == data.get("name")
    name = dataset or data.get("name") or "synthetic"
    ds_options = {**(data.get("options", {}) if same_dataset else {}), **(options or {})}
    split_data = create_dataset(name, split, data_dir or (run.get("data_dir") if same_dataset else None),
                                image_size=image_size or prep.image_size, keep_aspect=prep.keep_aspect,
                                cache_dir=cache_dir or run.get("cache_dir"), registry=registry, **ds_options)
    if split_data.cached.task.channels != config.task.channels or split_data.cached.task.kind != config.task.kind:
        raise UsageError(f"{name} {split} is a {split_data.cached.task.kind} dataset with {len(split_data.cached.task.classes)} "
                         f"classes; the model predicts {config.task.kind} with {len(config.task.classes)}")
    loader = BatchLoader(split_data.cached, batch_size, dev, train=False, mean=prep.mean, std=prep.std)
    dtype = _run_dtype(run, dev)
    metrics = score(model, loader, config.task, dtype, threshold=threshold)
    metrics["classes"] = list(config.task.metric_classes)
    result = {"weights": str(weights), "architecture": config.architecture, "encoder": config.encoder,
              "task": config.task.kind, "dataset": name, "split": split, "image_size": image_size or prep.image_size,
              "protocol": "resized to the training size, as in validation", "threshold": threshold, **metrics}
    target = Path(output) if output else (weights.parent / f"eval-{split}.json")
    write_json(target, result)
    picture = target.with_name(f"confusion-{split}.png")
    save_atomic(picture, lambda tmp: plot_confusion(metrics, config.task, tmp))
    result["output"], result["confusion_png"] = str(target), str(picture)
    return result


def _run_dtype(run: dict[str, Any], device: torch.device) -> torch.dtype | None:
    """The autocast a run validated with, so eval reproduces its validation figures."""
    from zoo.engine.device import amp_dtype

    amp = run.get("amp")
    if amp is None:  # recorded before precision was resolved at start-up: autocast was CUDA-only then
        amp = device.type == "cuda"
    return amp_dtype(device, amp)
