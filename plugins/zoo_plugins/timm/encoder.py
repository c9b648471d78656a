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


def _create(name: str, in_channels: int, out_indices: tuple[int, ...], output_stride: int = 32,
            depth: int = 0) -> torch.nn.Module:
    kwargs: dict = {"out_indices": out_indices} if out_indices else {}
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    if depth and not out_indices:  # the first `depth` default stages; timm prunes the rest
        with torch.device("meta"):
            default = timm.create_model(name, pretrained=False, features_only=True).feature_info.out_indices
        kwargs["out_indices"] = tuple(default[:depth])
    try:
        return _prune(timm.create_model(name, pretrained=False, features_only=True, in_chans=in_channels, **kwargs))
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
        if weights:
            load_encoder_weights(self.model, weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(x))
