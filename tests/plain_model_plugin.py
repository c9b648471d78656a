"""A plugin the tests register themselves: a model without normalization layers (so batch
composition cannot change its result: accumulation tests), and a callback that raises."""

from __future__ import annotations

import torch
from torch import nn

import zoo
from zoo.engine.callbacks import Callback
from zoo.encoders import SequentialEncoder
from zoo.layers import resize_to
from zoo.models import SegmentationModel
from zoo.specs import ArchitectureSpec, CallbackSpec, EncoderSpec, FeatureInfo, Option


def plain_info(in_channels: int = 3, width: int = 8) -> FeatureInfo:
    return FeatureInfo((width, 2 * width), (2, 4))


class PlainEncoder(SequentialEncoder):
    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.feature_info = plain_info(in_channels, width)
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1), nn.ReLU()),
                                     nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU())])


class PlainDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(c, classes, 1) for c in info.channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = sum(resize_to(h(f), size) for h, f in zip(self.heads, features))
        return resize_to(x, (size[0] * 2, size[1] * 2))


def build_plain(encoder: nn.Module, classes: int = 1) -> SegmentationModel:
    return SegmentationModel(encoder, PlainDecoder(encoder.feature_info, classes))


class Broken(Callback):
    def on_step_end(self, state) -> None:
        raise RuntimeError("boom")


@zoo.hookimpl
def zoo_register_encoders():
    return [EncoderSpec("plain_enc", "two strided convs, no normalization", PlainEncoder, feature_info=plain_info,
                        options=(Option("in_channels", 3), Option("width", 8, minimum=1)))]


@zoo.hookimpl
def zoo_register_architectures():
    return [ArchitectureSpec("plain", "1x1 heads summed, no normalization", build_plain,
                             options=(Option("classes", 1, minimum=1),), default_encoder="plain_enc")]


@zoo.hookimpl
def zoo_register_callbacks():
    return [CallbackSpec("broken", "raises at every step", Broken)]
