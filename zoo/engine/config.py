"""The run configuration: defaults, overlaid by a TOML file, overlaid by command-line flags.

Every field is validated before any work starts, with messages that name the flag
(``--lr nan: lr must be a positive finite number``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.pipeline import Augment
from zoo.errors import OptionError
from zoo.specs import Option



@dataclass
class RunConfig:
    """Everything a training run depends on. Defaults follow the report where sensible; an
    architecture, loss or dataset left as None is registry.toml's default (the one place for those)."""

    architecture: str | None = None
    encoder: str | None = None  # the architecture's default encoder
    encoder_weights: str | None = None  # none, imagenet, a tag, hf://ORG/NAME or a .safetensors file
    init: str | None = None  # start from this run / weights file / hf:// model / published model
    loss: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 8  # global: split across DDP processes
    eval_batch_size: int | None = None
    lr: float = 0.01
    optimizer: str | None = None  # registry.toml's default (sgd)
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str | None = None  # registry.toml's default (cosine)
    warmup_epochs: float = 0.0  # linear warmup, in epochs (fractions allowed) ...
    warmup_steps: int = 0  # ... or in optimizer steps
    lr_by_epoch: bool = False  # one learning rate per epoch (zoo 0.1's runs) instead of per step
    clip_grad: float | None = None  # max global gradient norm
    accumulate: int = 1  # batches per optimizer step
    ema: float | None = None  # decay of the weights' moving average
    encoder_lr_mult: float = 1.0
    freeze_encoder_epochs: int = 0
    patience: int | None = None  # validations without improvement before stopping
    min_delta: float = 0.0
    val_every: int = 1
    log: str = "jsonl"  # callbacks: jsonl, csv, tensorboard, or a plugin's
    log_every: int = 50  # steps between reads of the loss (a host sync on GPUs)
    image_size: int = 256
    keep_aspect: bool = False
    crop: int | None = None  # train on random crops of this side from images cached at their own size
    max_side: int | None = None  # with crop: the cache shrinks images whose long side exceeds this
    rescale: str | None = None  # with crop: "LO,HI", a random rescale factor before each crop
    val_tile: int | None = None  # with crop: validate in tiles of this side (default: whole images)
    augment: str = "flip,affine,color"
    mean: tuple[float, float, float] | None = None  # None: the encoder weights' (or --init's), else ImageNet's
    std: tuple[float, float, float] | None = None
    device: str = "auto"
    amp: bool | None = None  # None: bf16/fp16 autocast on CUDA, off elsewhere
    channels_last: bool | None = None  # None: on for CUDA and CPU convnets
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False
    seed: int = 0
    samples: int = 4  # validation images drawn in samples.png
    cache_dir: str | None = None
    classes: str | None = None  # class names overriding (or, for index masks, declaring) the dataset's
    monitor: str | None = None  # row key that picks the best epoch ("key" or "key:min"); task's default
    recipe: str | None = None  # the preset under the flags (registry.toml's default: "default")
    recipe_values: dict[str, Any] = field(default_factory=dict)  # what the recipe set (and nothing overrode)
    options: dict[str, str] = field(default_factory=dict)

    def validate(self) -> "RunConfig":
        for name, spec in FIELD_CHECKS.items():
            setattr(self, name, spec.check(getattr(self, name), _shown(getattr(self, name))))
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and (not isinstance(values, (tuple, list)) or len(values) != 3
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
                    or name == "std" and min(values) <= 0):
                raise OptionError(f"{name} = {values!r}: {name} must be three finite numbers"
                                  + (", all positive" if name == "std" else ""))
        Augment.parse(self.augment)
        if self.init and self.encoder_weights and self.encoder_weights.strip().lower() != "none":
            raise OptionError(f"--init {self.init} and --encoder-weights {self.encoder_weights}: give one (--init "
                              "starts the encoder from that model's weights)")
        for name, what in (("encoder_weights", "none, imagenet, a tag, hf://ORG/NAME or a .safetensors file"),
                           ("init", "a run directory, a .safetensors file, hf://ORG/NAME or a pretrained name")):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise OptionError(f"{_flag(name)} '': give {what}")
        for name in ("optimizer", "scheduler", "log"):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise OptionError(f"{_flag(name)} '': give a name (see zoo list-{name}s"
                                  f"{' or none' if name == 'log' else ''})".replace("list-logs", "list-callbacks"))
        if self.ema is not None and self.ema >= 1:
            raise OptionError(f"--ema {self.ema}: the decay must be below 1 (e.g. 0.999)")
        if self.warmup_epochs and self.warmup_steps:
            raise OptionError("--warmup-epochs and --warmup-steps: give one of them")
        if self.crop is None:
            for name in ("max_side", "rescale", "val_tile"):
                if getattr(self, name) is not None:
                    raise OptionError(f"{_flag(name)} {getattr(self, name)}: applies to training on crops (--crop)")
        self.rescale_range()
        check_batch_fits(self.crop or self.image_size, max(self.batch_size, self.eval_batch_size or 0))
        return self

    def rescale_range(self) -> tuple[float, float] | None:
        """``--rescale 0.5,2`` as (0.5, 2.0); a single factor F means (F, F)."""
        if self.rescale is None:
            return None
        try:
            parts = [float(v) for v in str(self.rescale).split(",")]
        except ValueError:
            parts = []
        if len(parts) == 1:
            parts *= 2
        if len(parts) != 2 or not all(math.isfinite(v) and 0.05 <= v <= 20 for v in parts) or parts[0] > parts[1]:
            raise OptionError(f"--rescale {self.rescale}: give LO,HI (or one factor), 0.05 <= LO <= HI <= 20")
        return parts[0], parts[1]

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
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        if "options" in data:
            if not isinstance(data["options"], dict):
                raise OptionError(f"{source}: options must be a table of key = value")
            data["options"] = {k: str(v) for k, v in data["options"].items()}
        return cls(**data)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value: Any) -> str | None:
    return None if value is None else str(value)


FIELD_CHECKS: dict[str, Option] = {o.name: o for o in (
    Option("epochs", 10, minimum=1),
    Option("batch_size", 8, minimum=1),
    Option("eval_batch_size", None, type=int, minimum=1),
    Option("lr", 0.01, minimum=0, exclusive_minimum=True),
    Option("optimizer", None, type=str),
    Option("encoder_weights", None, type=str),
    Option("init", None, type=str),
    Option("momentum", 0.9, minimum=0, maximum=1),
    Option("weight_decay", 0.0, minimum=0),
    Option("scheduler", None, type=str),
    Option("warmup_epochs", 0.0, minimum=0, maximum=100_000),
    Option("warmup_steps", 0, minimum=0, maximum=10**9),
    Option("lr_by_epoch", False),
    Option("clip_grad", None, type=float, minimum=0, exclusive_minimum=True),
    Option("accumulate", 1, minimum=1, maximum=4096),
    Option("ema", None, type=float, minimum=0, maximum=1, exclusive_minimum=True),
    Option("encoder_lr_mult", 1.0, minimum=0, maximum=1000),
    Option("freeze_encoder_epochs", 0, minimum=0, maximum=100_000),
    Option("patience", None, type=int, minimum=1, maximum=100_000),
    Option("min_delta", 0.0, minimum=0),
    Option("val_every", 1, minimum=1, maximum=100_000),
    Option("log", "jsonl"),
    Option("log_every", 50, minimum=1, maximum=10**9),
    Option("image_size", 256, minimum=8),
    Option("keep_aspect", False),
    Option("crop", None, type=int, minimum=8, maximum=16384),
    Option("max_side", None, type=int, minimum=8, maximum=65536),
    Option("rescale", None, type=str),
    Option("val_tile", None, type=int, minimum=8, maximum=16384),
    Option("augment", "flip,affine,color"),
    Option("device", "auto"),
    Option("amp", None, type=bool),
    Option("channels_last", None, type=bool),
    Option("compile", False),
    Option("deterministic", False),
    Option("sync_bn", False),
    Option("seed", 0, minimum=0, maximum=2**63 - 1),
    Option("samples", 4, minimum=0, maximum=64),
)}
FIELD_CHECKS = {name: dataclasses.replace(o, flag=_flag(name)) for name, o in FIELD_CHECKS.items()}


def check_flag(flag: str, value: Any, default: Any, **bounds: Any) -> Any:
    """Validate one command-line value with the same rules (and messages) as plugin options."""
    option = Option(flag.lstrip("-").replace("-", "_"), default, flag=flag, **bounds)
    return option.check(value, _shown(value))


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable), or the physical total."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_batch_fits(image_size: int, batch_size: int) -> None:
    """Refuse an image size whose batches cannot fit in memory before the model even runs (the
    float input plus the augmentation's copies: 16 bytes per pixel and channel)."""
    need = batch_size * 3 * image_size**2 * 16
    have = available_memory()
    if need > have:
        raise OptionError(f"--image-size {image_size}: a batch of {batch_size} images needs {human_bytes(need)} of "
                          f"memory before the model runs; this machine has {human_bytes(have)} available")


def load_config(path: str | Path | None, overrides: dict[str, Any], registry=None) -> RunConfig:
    """Defaults <- recipe <- TOML file (same keys as the flags, options in an [options] table) <- flags."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise OptionError(f"--config {path}: no such config file") from None
        except IsADirectoryError:
            raise OptionError(f"--config {path}: a directory, not a TOML file") from None
        except UnicodeDecodeError:
            raise OptionError(f"--config {path}: not a UTF-8 text file") from None
        except tomllib.TOMLDecodeError as exc:
            raise OptionError(f"--config {path}: invalid TOML ({exc})") from None
    flags = {k: v for k, v in overrides.items() if v is not None}
    name = flags.get("recipe") or data.get("recipe")
    recipe, recipe_options = _recipe(name, registry)
    options = {**recipe_options, **{k: str(v) for k, v in _table(data.pop("options", {}), path).items()},
               **overrides.pop("options", {})}
    merged = {**recipe["values"], **data, **{k: v for k, v in flags.items() if k != "options"}}
    merged["options"] = options
    merged["recipe"] = recipe["name"]
    merged["recipe_values"] = {k: v for k, v in recipe["values"].items() if merged.get(k) == v}
    merged["recipe_values"].update({f"options.{k}": v for k, v in recipe_options.items() if options.get(k) == v})
    return RunConfig.from_dict(merged, str(path or "flags")).validate()


def _recipe(name: str | None, registry) -> tuple[dict[str, Any], dict[str, str]]:
    """The recipe's name and the run settings it sets, checked against the flags zoo knows."""
    from zoo import registry_or_default

    registry = registry_or_default(registry)
    entry = registry.get("recipe", name or registry.default("recipe"))
    values = dict(entry.spec.build())
    options = {k: str(v) for k, v in _table(values.pop("options", {}), f"recipe {entry.name}").items()}
    known = {f.name for f in dataclasses.fields(RunConfig)} - {"recipe", "recipe_values", "options"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise OptionError(f"recipe {entry.name!r} ({entry.plugin}) sets unknown key {unknown[0]!r} "
                          f"(valid: {', '.join(sorted(known))})")
    return {"name": entry.qualified if len(registry.entries("recipe", entry.name)) > 1 else entry.name,
            "values": values}, options


def _table(value: Any, path: str | Path | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        where = path if str(path).startswith("recipe ") else f"--config {path}"
        raise OptionError(f"{where}: options must be a table ([options])")
    return value
