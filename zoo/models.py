"""What a model is (:class:`ModelConfig`) and the encoder -> decoder composition that carries it.

A model's config is set in its constructor: :func:`zoo.create_model` builds a plugin's network
inside :func:`building`, and every :class:`SegmentationModel` made there takes that config. eval,
predict, export and ``save_model`` read it from ``model.config``, so they cannot drift apart.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import torch
from torch import nn

from zoo.layers import pad_to_multiple
from zoo.tasks import Task


@dataclass(frozen=True)
class Preprocessing:
    """How images are fed to the model, then normalized with ``mean``/``std`` on the 0..1 scale:
    ``resolution="train"``: resized to ``image_size`` (or padded to it keeping the aspect), as the
    model was trained; ``"native"`` (trained on crops): at the image's own pixels, the long side
    shrunk to ``max_side`` when the training data was."""

    image_size: int = 256
    keep_aspect: bool = False
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resolution: str = "train"
    max_side: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"image_size": self.image_size, "keep_aspect": self.keep_aspect, "mean": list(self.mean),
                "std": list(self.std)}
        if self.resolution != "train":  # files written before native training stay as they were
            data.update(resolution=self.resolution, max_side=self.max_side)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Preprocessing":
        data = data or {}
        default = cls()
        max_side = data.get("max_side")
        return cls(int(data.get("image_size", default.image_size)), bool(data.get("keep_aspect", default.keep_aspect)),
                   tuple(data.get("mean", default.mean)), tuple(data.get("std", default.std)),
                   str(data.get("resolution", "train")), int(max_side) if max_side else None)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that rebuilds a model and says how to use it; saved in every weights file's header."""

    architecture: str
    encoder: str
    architecture_plugin: str = ""
    encoder_plugin: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # model options, encoder ones as "encoder.x"
    task: Task = field(default_factory=Task)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    plugins: dict[str, dict[str, str]] = field(default_factory=dict)  # plugin -> distribution, version

    def with_data(self, task: Task, preprocessing: Preprocessing) -> "ModelConfig":
        return replace(self, task=task, preprocessing=preprocessing)

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "architecture_plugin": self.architecture_plugin,
                "encoder": self.encoder, "encoder_plugin": self.encoder_plugin, "options": dict(self.options),
                "task": self.task.to_dict(), "preprocessing": self.preprocessing.to_dict(), "plugins": self.plugins}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """From a weights header or config.json; round-1 files (no task, no preprocessing) were binary."""
        return cls(data["architecture"], data["encoder"], data.get("architecture_plugin", ""),
                   data.get("encoder_plugin", ""), dict(data.get("options", {})), Task.from_dict(data.get("task")),
                   Preprocessing.from_dict(data.get("preprocessing")), dict(data.get("plugins") or {}))


_BUILDING: contextvars.ContextVar[ModelConfig | None] = contextvars.ContextVar("zoo_building", default=None)


@contextmanager
def building(config: ModelConfig) -> Iterator[None]:
    """Models constructed inside take ``config`` (how :func:`zoo.create_model` hands it to a
    plugin's factory without the factory having to pass it on)."""
    token = _BUILDING.set(config)
    try:
        yield
    finally:
        _BUILDING.reset(token)


class SegmentationModel(nn.Module):
    """Runs ``decoder(encoder(x))`` on ``x`` padded to the encoder's total stride, and crops the
    logits back, so the output is ``(N, channels, H, W)`` for any H and W."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.stride = encoder.feature_info.total_stride
        self.config: ModelConfig | None = config or _BUILDING.get()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        logits = self.decoder(self.encoder(pad_to_multiple(x, self.stride)))
        return logits[..., :h, :w]


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel and torch.compile wrappers (by type)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(model, torch._dynamo.eval_frame.OptimizedModule):
            model = model._orig_mod
        else:
            return model
