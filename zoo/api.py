"""The Python API that builds things: models, losses, datasets, weights files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.atomic import read_json, write_bytes
from zoo.encoders import plan_encoder
from zoo.errors import PluginError, UsageError, WeightsError, ZooError
from zoo.layers import count_parameters
from zoo.options import route_options
from zoo import registry_or_default
from zoo.models import ModelConfig, Preprocessing, SegmentationModel, building, unwrap
from zoo.registry import Registry
from zoo.tasks import Task

__all__ = ["create_model", "create_loss", "create_dataset", "save_model", "load_model", "count_parameters", "unwrap"]


def create_model(
    name: str | None = None, encoder: str | None = None, *, registry: Registry | None = None,
    task: Task | None = None, preprocessing: Preprocessing | None = None,
    encoder_weights: "str | EncoderWeights | None" = None, **options: Any
) -> SegmentationModel:
    """Build architecture ``name`` on ``encoder`` (its default when None). ``options`` go to whichever
    of the two declares them (``model.x`` / ``encoder.x`` to pick one). The head has ``task.channels``
    outputs (a binary task by default; ``classes=N`` alone means N unnamed classes). Returns logits
    ``(N, channels, H, W)`` for any input size; ``model.config`` says what the model is.

    ``encoder_weights``: ``"imagenet"``, a published tag, ``"hf://ORG/NAME"`` or a local
    ``.safetensors`` file (see :mod:`zoo.pretrained`); without ``preprocessing``, the model then
    normalizes images as those weights were trained."""
    from zoo.pretrained import EncoderWeights, resolve_encoder_weights

    registry = registry_or_default(registry)
    arch = registry.get("architecture", name or registry.default("architecture"))
    enc = registry.get("encoder", encoder or arch.spec.default_encoder)
    routed = route_options(options, {"model": arch.spec, "encoder": enc.spec})
    weights = encoder_weights if isinstance(encoder_weights, EncoderWeights) else \
        resolve_encoder_weights(enc, encoder_weights)
    if weights is not None:
        if routed["encoder"].get("weights"):
            raise UsageError("--encoder-weights and -o weights=: give one of them")
        routed["encoder"]["weights"] = str(weights.file)
        if preprocessing is None:
            preprocessing = Preprocessing(mean=tuple(weights.mean), std=tuple(weights.std))
    model_options = arch.spec.resolve_options(routed["model"])
    enc_options = enc.spec.resolve_options(plan_encoder(arch.name, enc.name, enc.spec, enc.member, model_options,
                                                        routed["encoder"]))
    if task is None:
        task = task_for_channels(model_options.get("classes", 1))
    if arch.spec.option("classes") is not None:
        model_options["classes"] = task.channels
    config = ModelConfig(arch.name, enc.name, arch.plugin, enc.plugin,
                         {**model_options, **{f"encoder.{k}": v for k, v in enc_options.items() if k != "weights"}},
                         task, preprocessing or Preprocessing(),
                         {e.plugin: registry.provenance(e.plugin) for e in (arch, enc)})
    encoder_module = enc.spec.build(enc.member, **enc_options) if enc.member else enc.spec.build(**enc_options)
    with building(config):
        model = arch.spec.build(encoder_module, **model_options)
    if not isinstance(model, SegmentationModel):
        raise PluginError(f"architecture {arch.qualified!r} built a {type(model).__name__}; its factory must return "
                          "a zoo.models.SegmentationModel")
    return model


def task_for_channels(channels: int) -> Task:
    """The task of a model asked for by its channel count alone: 1 is binary, N unnamed classes."""
    return Task() if channels == 1 else Task("multiclass", tuple(f"class_{i}" for i in range(channels)))


def model_from_config(config: ModelConfig, registry: Registry | None = None) -> SegmentationModel:
    """Rebuild an untrained model from the config saved with its weights."""
    registry = registry_or_default(registry)
    qualify = lambda name, plugin: f"{plugin}:{name}" if plugin else name  # noqa: E731
    arch = registry.require("architecture", qualify(config.architecture, config.architecture_plugin), config.plugins)
    enc = registry.require("encoder", qualify(config.encoder, config.encoder_plugin), config.plugins)
    options = {k: v for k, v in config.options.items() if k != "classes"}
    return create_model(arch.qualified, enc.qualified, registry=registry, task=config.task,
                        preprocessing=config.preprocessing, **options)


def create_loss(spec: str | None = None, *, task: Task | None = None, registry: Registry | None = None) -> nn.Module:
    """A loss from a spec such as ``"mse"``, ``"0.3*bce+0.7*dice"`` or ``"focal(gamma=3)+dice"``, for
    ``task`` (binary by default)."""
    from zoo.losses import build_loss

    registry = registry_or_default(registry)
    return build_loss(spec or registry.default("loss"), registry, task=task)


def create_dataset(
    name: str | None = None,
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    image_size: int = 256,
    keep_aspect: bool = False,
    cache_dir: str | Path | None = None,
    registry: Registry | None = None,
    native: bool = False,
    max_side: int | None = None,
    **options: Any,
):
    """Split ``split`` of dataset ``name``, decoded and resized once into the cache; items are
    ``{"image": uint8[3, H, W], "mask": uint8[1, H, W]}`` (plus ``"valid"`` where pixels are ignored).
    ``native=True`` caches the images at their own size instead (the long side shrunk to ``max_side``)."""
    from zoo.data.dataset import open_dataset

    registry = registry_or_default(registry)
    entry = registry.get("dataset", name or registry.default("dataset"))
    return open_dataset(entry, split, data_dir, image_size=None if native else image_size, keep_aspect=keep_aspect,
                        cache_dir=cache_dir, options=options, max_side=max_side)


def save_model(model: nn.Module, path: str | Path, **metadata: Any) -> Path:
    """Write ``model``'s weights to a ``.safetensors`` file whose header carries the config that
    rebuilds it (plus ``metadata``), so the file alone is enough for :func:`load_model`."""
    from safetensors.torch import save

    model = unwrap(model)
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise WeightsError("this model was not built by zoo.create_model, so it has no config to save")
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    header = {"zoo": json.dumps(config.to_dict()), **{k: json.dumps(v, default=str) for k, v in metadata.items()}}
    return write_bytes(path, save(state, metadata=header))  # a full disk is an OSError naming the file


def model_header(path: str | Path) -> dict[str, str]:
    """The string metadata of a weights file's header; {} when the file is missing or unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return {}


WHICH = ("model", "last")


def weights_path(path: str | Path, which: str = "model", registry: Registry | None = None) -> Path:
    """The local weights file of a run directory (``which``: model = best, last), a ``.safetensors``
    file, a hub model (``hf://ORG/NAME[@REV]``, fetched into the Hugging Face cache) or a published
    model's name (``zoo list-models --pretrained``; its checksum is checked)."""
    from zoo import hub

    if which not in WHICH:
        raise UsageError(f"--weights {which}: choose one of {', '.join(WHICH)}")
    if hub.is_hub_url(str(path)):
        return hub.download_model(str(path), which)
    given = path
    path = Path(path)
    if not path.exists() and isinstance(given, str) and "/" not in given and not given.endswith(".safetensors"):
        from zoo.errors import UnknownNameError

        registry = registry_or_default(registry)
        try:
            entry = registry.get("pretrained", given)
        except UnknownNameError:
            raise WeightsError(f"{given}: no such run directory, weights file or pretrained model (see zoo "
                               "list-models --pretrained)") from None
        found = weights_path(entry.spec.location, which, registry)
        if which == "model":
            hub.verify(found, entry.spec.sha256, f"pretrained model {entry.name!r}")
        return found
    if path.is_dir():
        path = path / f"{which}.safetensors"
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    return path


def read_model_config(path: Path) -> ModelConfig:
    """The model config of a weights file: from its header, else from ``config.json`` beside it.
    Round-1 files recorded no task (binary) and kept the preprocessing in the run's config.json."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({' '.join(str(exc).split())})") from None
    sidecar = path.parent / "config.json"
    run = read_json(sidecar, "run config") if sidecar.is_file() else {}
    run = run if isinstance(run, dict) else {}
    if "zoo" in meta:
        try:
            data = json.loads(meta["zoo"])
        except json.JSONDecodeError:
            raise WeightsError(f"{path}: the zoo config in its header is not valid JSON") from None
    elif run:
        data = run.get("model", run)
    else:
        raise WeightsError(f"{path}: no zoo config in its header and no config.json beside it")
    if "preprocessing" not in data and isinstance(run.get("dataset"), dict):
        data = {**data, "preprocessing": run["dataset"]}
    try:
        return ModelConfig.from_dict(data)
    except (KeyError, TypeError, ValueError, ZooError) as exc:
        raise WeightsError(f"{path}: the model config lacks or garbles {exc}") from None


def load_model(path: str | Path, *, which: str = "model", registry: Registry | None = None,
               map_location: str | torch.device = "cpu") -> SegmentationModel:
    """Rebuild a model from a run directory (``which``: ``model`` = best, ``last``), a ``.safetensors``
    file, ``hf://ORG/NAME[@REV]`` or a published model's name, and load its weights. Never unpickles
    anything."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = weights_path(path, which, registry)
    config = read_model_config(path)
    model = model_from_config(config, registry)
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: cannot read weights ({' '.join(str(exc).split())})") from None
    target = f"{config.architecture} on {config.encoder}"
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of the right names but other shapes
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), "shape mismatch")
        raise WeightsError(f"{path}: weights do not fit {target} ({detail})") from None
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{path}: weights do not fit {target} ({len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected tensors, e.g. "
            f"{(result.missing_keys or result.unexpected_keys)[0]!r})"
        )
    return model.eval()
