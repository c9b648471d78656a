"""The run configuration: defaults, overlaid by a TOML file, overlaid by command-line flags."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.pipeline import IMAGENET_MEAN, IMAGENET_STD
from zoo.errors import OptionError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "none")


@dataclass
class RunConfig:
    """Everything a training run depends on. Defaults follow the report where sensible."""

    architecture: str = "unet"
    encoder: str | None = None  # the architecture's default encoder
    loss: str = "mse"
    dataset: str = "synthetic"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 8  # global: split across DDP processes
    eval_batch_size: int | None = None
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    image_size: int = 256
    keep_aspect: bool = False
    augment: str = "flip,affine,color"
    mean: tuple[float, float, float] = IMAGENET_MEAN  # as the report
    std: tuple[float, float, float] = IMAGENET_STD
    device: str = "auto"
    amp: bool | None = None  # None: bf16/fp16 autocast on CUDA, off elsewhere
    channels_last: bool | None = None  # None: on for CUDA and CPU convnets
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False
    seed: int = 0
    samples: int = 4  # validation images drawn in samples.png
    cache_dir: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def validate(self) -> "RunConfig":
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise OptionError(f"--scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise OptionError(f"--lr must be positive, got {self.lr}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "RunConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise OptionError(f"{source}: unknown key {unknown[0]!r} (valid: {', '.join(known)})")
        data = dict(data)
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        if "options" in data:
            data["options"] = {k: str(v) for k, v in data["options"].items()}
        return cls(**data)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Defaults <- TOML file (same keys as the flags, options in an [options] table) <- flags."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise OptionError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise OptionError(f"{path}: invalid TOML ({exc})") from None
    options = {**{k: str(v) for k, v in data.pop("options", {}).items()}, **overrides.pop("options", {})}
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["options"] = options
    return RunConfig.from_dict(data, str(path or "flags")).validate()
