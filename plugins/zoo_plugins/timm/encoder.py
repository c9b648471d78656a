from __future__ import annotations

from functools import lru_cache

import timm
import torch

from zoo.encoders import Encoder, load_encoder_weights
from zoo.errors import IncompatibleEncoder, OptionError
from zoo.specs import FeatureInfo


@lru_cache(maxsize=1)
def model_names() -> tuple[str, ...]:
    return tuple(timm.list_models())


def _features_model(name: str, **kwargs) -> torch.nn.Module:
    """``timm.create_model(..., features_only=True)``. Transformers are asked for dynamic input sizes
    (position embeddings interpolated to the image), an option convnets do not take."""
    try:
        return timm.create_model(name, pretrained=False, features_only=True, dynamic_img_size=True, **kwargs)
    except TypeError as exc:
        if "dynamic_img_size" not in str(exc):
            raise
        return timm.create_model(name, pretrained=False, features_only=True, **kwargs)


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
            depth: int = 0) -> torch.nn.Module:
    kwargs: dict = {"output_stride": output_stride} if output_stride != 32 else {}
    try:
        indices = out_indices or default_out_indices(name)
        if depth and not out_indices:  # the first `depth` default stages; timm prunes the rest
            indices = indices[:depth]
        return _prune(_features_model(name, in_chans=in_channels, out_indices=tuple(indices), **kwargs))
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        if output_stride != 32:
            raise IncompatibleEncoder(f"timm model {name!r} cannot dilate to output stride {output_stride} "
                                      f"({' '.join(str(exc).split()) or type(exc).__name__})") from None
        raise OptionError(f"timm model {name!r} cannot serve as an encoder: {exc}") from None


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
        self.model = _create(name, in_channels, out_indices, output_stride, depth)
        self.feature_info = FeatureInfo(
            tuple(self.model.feature_info.channels()), tuple(self.model.feature_info.reduction())
        )
        # Swin-like models return NHWC maps; zoo's decoders take NCHW
        self.nhwc = getattr(self.model, "output_fmt", "NCHW") == "NHWC"
        if weights:
            load_encoder_weights(self.model, weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(x)
        return [f.permute(0, 3, 1, 2) for f in features] if self.nhwc else list(features)
