"""Scoring a model on a split, and `zoo eval`: rebuild a run's model from its files and score it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.api import create_dataset, load_model, weights_path
from zoo.atomic import read_json, write_json
from zoo.data.pipeline import IMAGENET_MEAN, IMAGENET_STD, BatchLoader
from zoo.engine.config import RunConfig, check_flag
from zoo.engine.device import autocast, pick_device
from zoo.metrics import SegmentationMeter
from zoo.registry import Registry


@torch.no_grad()
def score(model: torch.nn.Module, loader: BatchLoader, dtype: torch.dtype | None = None,
          threshold: float = 0.5) -> dict[str, float]:
    """Dice and IoU (per image and over the split) of ``model`` on every batch of ``loader``,
    summed over all DDP ranks."""
    was_training = model.training
    model.eval()
    meter = SegmentationMeter(loader.device, threshold)
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


@dataclass(frozen=True)
class Preprocessing:
    """How a run fed images to its model; a bare weights file gets zoo's training defaults."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    keep_aspect: bool


def run_preprocessing(saved: dict[str, Any], image_size: int | None = None) -> Preprocessing:
    data, run = saved.get("dataset", {}), saved.get("run", {})
    pick = lambda key, default: data.get(key, run.get(key, default))  # noqa: E731
    return Preprocessing(image_size or pick("image_size", RunConfig.image_size),
                         tuple(pick("mean", IMAGENET_MEAN)), tuple(pick("std", IMAGENET_STD)),
                         pick("keep_aspect", RunConfig.keep_aspect))


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
    size and normalization default to the run's; a bare ``.safetensors`` needs ``dataset``.
    Writes the result as JSON to ``output`` (default: ``eval-<split>.json`` in the run directory)."""
    check_flag("--batch-size", batch_size, 8, minimum=1)
    check_flag("--threshold", threshold, 0.5, minimum=0, exclusive_minimum=True, maximum=1)
    if image_size is not None:
        check_flag("--image-size", image_size, 256, minimum=8)
    path = Path(path)
    weights = weights_path(path, which)
    saved = run_config(path)
    run = saved.get("run", {})
    data = saved.get("dataset", {})
    prep = run_preprocessing(saved, image_size)
    same_dataset = dataset is None or dataset == data.get("name")
    name = dataset or data.get("name") or "synthetic"
    ds_options = {**(data.get("options", {}) if same_dataset else {}), **(options or {})}
    dev = pick_device(device)
    model = load_model(weights, registry=registry, map_location="cpu").to(dev)
    split_data = create_dataset(name, split, data_dir or (run.get("data_dir") if same_dataset else None),
                                image_size=prep.image_size, keep_aspect=prep.keep_aspect,
                                cache_dir=cache_dir or run.get("cache_dir"), registry=registry, **ds_options)
    loader = BatchLoader(split_data.cached, batch_size, dev, train=False, mean=prep.mean, std=prep.std)
    metrics = score(model, loader, threshold=threshold)
    result = {"weights": str(weights), "architecture": model.zoo_config["architecture"],
              "encoder": model.zoo_config["encoder"],
              "dataset": name, "split": split, "image_size": prep.image_size, "threshold": threshold, **metrics}
    target = Path(output) if output else (weights.parent / f"eval-{split}.json")
    write_json(target, result)
    result["output"] = str(target)
    return result
