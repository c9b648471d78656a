from __future__ import annotations

from functools import lru_cache

import timm
import torch

from zoo.encoders import Encoder, load_encoder_weights
from zoo.errors import OptionError
from zoo.specs import FeatureInfo


@lru_cache(maxsize=1)
def model_names() -> tuple[str, ...]:
    return tuple(timm.list_models())


def _create(name: str, in_channels: int, out_indices: tuple[int, ...]) -> torch.nn.Module:
    kwargs = {"out_indices": out_indices} if out_indices else {}
    try:
        return timm.create_model(name, pretrained=False, features_only=True, in_chans=in_channels, **kwargs)
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        raise OptionError(f"timm model {name!r} cannot serve as an encoder: {exc}") from None


@lru_cache(maxsize=256)
def feature_info(name: str, in_channels: int = 3, weights: str = "", out_indices: tuple[int, ...] = ()) -> FeatureInfo:
    """Read channels and strides off a model built on the meta device: no memory, no weights."""
    with torch.device("meta"):
        model = _create(name, in_channels, out_indices)
    return FeatureInfo(tuple(model.feature_info.channels()), tuple(model.feature_info.reduction()))


class TimmEncoder(Encoder):
    def __init__(self, name: str, in_channels: int = 3, weights: str = "", out_indices: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.model = _create(name, in_channels, out_indices)
        self.feature_info = FeatureInfo(
            tuple(self.model.feature_info.channels()), tuple(self.model.feature_info.reduction())
        )
        if weights:
            load_encoder_weights(self.model, weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(x))
