"""The encoder contract (public API for plugin authors).

An encoder is an ``nn.Module`` with a ``feature_info`` (:class:`zoo.specs.FeatureInfo`) whose
``forward(x)`` returns one feature map per declared stage, from high to low resolution. Its spec
declares the same feature info without building the module, so decoders can be planned cheaply.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.errors import WeightsError
from zoo.specs import FeatureInfo


class Encoder(nn.Module):
    feature_info: FeatureInfo

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class SequentialEncoder(Encoder):
    """An encoder that is a list of stages run in order, each one's output being a feature map:
    subclasses set ``self.stages`` (an ``nn.ModuleList``) and ``self.feature_info``."""

    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def check_features(info: FeatureInfo, features: list[torch.Tensor], height: int, width: int) -> None:
    """Raise if ``features`` do not match what ``info`` declares for an input of ``height x width``."""
    if len(features) != len(info.channels):
        raise ValueError(f"encoder returned {len(features)} feature maps, declared {len(info.channels)}")
    for f, c, r in zip(features, info.channels, info.reductions):
        expected = (c, -(-height // r), -(-width // r))
        if tuple(f.shape[1:]) != expected and tuple(f.shape[1:]) != (c, height // r, width // r):
            raise ValueError(f"feature of shape {tuple(f.shape)} does not match declared {c}@{r}")


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first convolution's RGB kernel (``out, 3, k, k``) for ``in_channels`` inputs, as timm adapts
    it: summed over the colours for one channel; otherwise repeated over the channels and scaled by
    ``3 / in_channels``, so an image of equal channels gives the same response."""
    source = weight.shape[1]
    if in_channels == source:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_channels // source)
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (source / in_channels)


def load_encoder_weights(module: nn.Module, path: str | Path, prefix: str = "", first_conv: str = "") -> None:
    """Load a local ``.safetensors`` state dict into ``module``, ignoring keys it has no use for
    (a classifier head); ``first_conv`` (e.g. ``"conv1"``) is adapted to the module's input channels.
    Pickled checkpoints are refused: zoo never unpickles user files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from zoo.pretrained import check_safetensors

    path = check_safetensors(Path(path), "encoder weights")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    key = f"{first_conv}.weight"
    if first_conv and key in state and key in own and state[key].ndim == 4 and state[key].shape[1] != own[key].shape[1]:
        state[key] = adapt_input_conv(state[key], own[key].shape[1])
    usable = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    if not usable or missing:
        raise WeightsError(f"{path}: {len(missing)} of the encoder's tensors are missing "
                           f"(e.g. {missing[:3]}); is it a checkpoint of this backbone?")
    wrong = [k for k, v in usable.items() if v.shape != own[k].shape]
    if wrong:
        raise WeightsError(f"{path}: shape mismatch for {wrong[:3]} (in_channels or width differ?)")
    module.load_state_dict(usable, strict=False)


def plan_encoder(architecture: str, encoder: str, spec, member: str | None, model_options: dict,
                 encoder_options: dict) -> dict:
    """Encoder options an architecture's own options ask for, by convention of their names:
    ``output_stride`` (8/16: a dilated encoder, for DeepLab) needs an encoder declaring the same
    option with that choice; ``encoder_depth`` (smp's name: the encoder's stages up to stride
    ``2**encoder_depth``) sets an encoder's ``depth`` so the unused stages are never built. An encoder
    that cannot serve raises :class:`zoo.errors.IncompatibleEncoder` naming both and what is missing."""
    from zoo.errors import IncompatibleEncoder
    from zoo.specs import resolve

    def declared(options: dict) -> FeatureInfo:
        given = spec.resolve_options(options)  # typed: lists -> tuples
        return resolve(spec.feature_info)(member, **given) if member else resolve(spec.feature_info)(**given)

    planned = dict(encoder_options)
    stride = model_options.get("output_stride")
    if stride is not None:
        option = spec.option("output_stride")
        hint = "(use a dilatable encoder such as resnet34 or a timm resnet)"
        if option is None or option.choices is not None and stride not in option.choices:
            can = f"supports {', '.join(map(str, option.choices))}" if option is not None else "cannot dilate"
            raise IncompatibleEncoder(f"{architecture} needs encoder output stride {stride}, but encoder {encoder!r} "
                                      f"{can} {hint}")
        if declared(planned).total_stride != stride:  # a ViT is at stride 16 without dilating anything
            planned["output_stride"] = stride
            try:
                declared(planned)
            except IncompatibleEncoder as exc:
                raise IncompatibleEncoder(f"{architecture} needs encoder output stride {stride}, but {exc} "
                                          f"{hint}") from None
    depth = model_options.get("encoder_depth")
    if depth is not None and spec.option("depth") is not None:
        full = declared({k: v for k, v in planned.items() if k != "depth"})
        planned["depth"] = sum(r <= 2 ** depth for r in full.reductions) or 1
    return planned


def require_stages(architecture: str, info: FeatureInfo, count: int) -> None:
    """Raise :class:`zoo.errors.IncompatibleEncoder` unless the encoder has ``count`` stages."""
    from zoo.errors import IncompatibleEncoder

    if len(info.channels) < count:
        raise IncompatibleEncoder(f"{architecture} needs an encoder with at least {count} stages; this one has "
                                  f"{len(info.channels)} (reductions {list(info.reductions)})")
