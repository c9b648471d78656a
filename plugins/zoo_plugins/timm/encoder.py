from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import timm
import torch

from zoo.encoders import Encoder
from zoo.errors import IncompatibleEncoder, OptionError, WeightsError
from zoo.pretrained import check_safetensors
from zoo.specs import FeatureInfo
from zoo_plugins.timm.names import model_names  # noqa: F401  (its home before names.py)


def _features_model(name: str, **kwargs) -> torch.nn.Module:
    """``timm.create_model(..., features_only=True)``. Transformers are asked for dynamic input sizes
    (position embeddings interpolated to the image), an option convnets do not take."""
    kwargs.setdefault("pretrained", False)
    try:
        return timm.create_model(name, features_only=True, dynamic_img_size=True, **kwargs)
    except TypeError as exc:
        if "dynamic_img_size" not in str(exc):
            raise
        return timm.create_model(name, features_only=True, **kwargs)


@lru_cache(maxsize=256)
def default_out_indices(name: str) -> tuple[int, ...]:
    """timm's default stages; for a plain (non-hierarchical) transformer such as ViT, whose every block
    is at one stride, four blocks evenly spaced through its depth, as DPT taps them (2, 5, 8, 11 of 12)."""
    with torch.device("meta"):
        features = _features_model(name)
        if len(set(features.feature_info.reduction())) > 1:
            return tuple(features.feature_info.out_indices)
        blocks = len(timm.create_model(name, pretrained=False).feature_info)
    return tuple(sorted({max(0, round(blocks * (i + 1) / 4) - 1) for i in range(4)}))


def _create(name: str, in_channels: int, out_indices: tuple[int, ...], output_stride: int = 32,
            depth: int = 0, weights: str = "") -> torch.nn.Module:
    """The feature model; with ``weights`` (a local .safetensors), timm loads them into the full model
    before wrapping it, so its checkpoint filter remaps keys and adapts the stem to ``in_channels``."""
    kwargs: dict = {"output_stride": output_stride} if output_stride != 32 else {}
    if weights:
        path = check_safetensors(Path(weights), f"timm model {name!r} weights")
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    try:
        indices = out_indices or default_out_indices(name)
        if depth and not out_indices:  # the first `depth` default stages; timm prunes the rest
            indices = indices[:depth]
        with _load_report() as report:
            model = _features_model(name, in_chans=in_channels, out_indices=tuple(indices), **kwargs)
        if weights:
            _check_loaded(name, weights, report)
        return _prune(model)
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = next((line for line in lines if "size mismatch" in line), lines[0] if lines else type(exc).__name__)
        if weights and ("state_dict" in str(exc) or "size mismatch" in str(exc) or "safetensor" in str(exc).lower()):
            raise WeightsError(f"{weights}: does not fit timm model {name!r} ({first[:200]}); is it a checkpoint "
                               "of this model?") from None
        if output_stride != 32:
            raise IncompatibleEncoder(f"timm model {name!r} cannot dilate to output stride {output_stride} "
                                      f"({' '.join(str(exc).split()) or type(exc).__name__})") from None
        raise OptionError(f"timm model {name!r} cannot serve as an encoder: {exc}") from None


@contextmanager
def _load_report() -> Iterator[list[str]]:
    """What timm says of a checkpoint load. A feature model drops the classifier, so timm loads
    non-strictly and only logs the keys a checkpoint lacked; those lines are collected here (and
    kept off the console) so a checkpoint of another model is an error, not a random encoder."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("timm.models._builder"), Collect(logging.INFO)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _check_loaded(name: str, weights: str, report: list[str]) -> None:
    cfg = timm.models.get_pretrained_cfg(name)
    classifier = cfg.classifier if cfg else None
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    missing = [key.strip() for line in report if line.startswith("Missing keys (")
               for key in line[len("Missing keys ("):line.index(") discovered")].split(",")]
    missing = [k for k in missing if k and not any(k.startswith(f"{h}.") for h in heads)]
    if missing:
        raise WeightsError(f"{weights}: {len(missing)} of timm model {name!r}'s tensors are not in it (e.g. "
                           f"{missing[:3]}); is it a checkpoint of this model?")


def _prune(model: torch.nn.Module) -> torch.nn.Module:
    """Drop the stages after the last one whose features are used. timm's generic feature wrapper does
    that itself; its EfficientNet/MobileNet feature classes build every block, which would leave
    parameters no forward pass reaches (DDP refuses those)."""
    stages = getattr(model, "_stage_out_idx", None)
    if stages and getattr(model, "feature_hooks", None) is None and isinstance(getattr(model, "blocks", None),
                                                                             torch.nn.Sequential):
        model.blocks = model.blocks[: max(stages)]
    return model


@lru_cache(maxsize=256)
def feature_info(name: str, in_channels: int = 3, weights: str = "", out_indices: tuple[int, ...] = (),
                 output_stride: int = 32, depth: int = 0) -> FeatureInfo:
    """Read channels and strides off a model built on the meta device: no memory, no weights."""
    with torch.device("meta"):
        model = _create(name, in_channels, out_indices, output_stride, depth)
    return FeatureInfo(tuple(model.feature_info.channels()), tuple(model.feature_info.reduction()))


class TimmEncoder(Encoder):
    def __init__(self, name: str, in_channels: int = 3, weights: str = "", out_indices: tuple[int, ...] = (),
                 output_stride: int = 32, depth: int = 0) -> None:
        super().__init__()
        self.model = _create(name, in_channels, out_indices, output_stride, depth, weights)
        self.feature_info = FeatureInfo(
            tuple(self.model.feature_info.channels()), tuple(self.model.feature_info.reduction())
        )
        # Swin-like models return NHWC maps; zoo's decoders take NCHW
        self.nhwc = getattr(self.model, "output_fmt", "NCHW") == "NHWC"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(x)
        return [f.permute(0, 3, 1, 2) for f in features] if self.nhwc else list(features)
