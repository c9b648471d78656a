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


class PointwiseEncoder(SequentialEncoder):
    """1x1 convs only: each output pixel sees its own input pixel, so the model commutes with every
    flip and rotation (test-time augmentation must change nothing) and with any tiling."""

    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.feature_info = FeatureInfo((width,), (1,))
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.Tanh())])


def build_pointwise(encoder: nn.Module, classes: int = 1) -> SegmentationModel:
    return SegmentationModel(encoder, PointwiseHead(encoder.feature_info, classes))


class PointwiseHead(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(info.channels[0], classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.head(features[0])


class Broken(Callback):
    def on_step_end(self, state) -> None:
        raise RuntimeError("boom")


@zoo.hookimpl
def zoo_register_encoders():
    return [EncoderSpec("plain_enc", "two strided convs, no normalization", PlainEncoder, feature_info=plain_info,
                        options=(Option("in_channels", 3), Option("width", 8, minimum=1))),
            EncoderSpec("pointwise_enc", "one 1x1 conv", PointwiseEncoder,
                        feature_info=lambda in_channels=3, width=8: FeatureInfo((width,), (1,)),
                        options=(Option("in_channels", 3), Option("width", 8, minimum=1)))]


@zoo.hookimpl
def zoo_register_architectures():
    return [ArchitectureSpec("plain", "1x1 heads summed, no normalization", build_plain,
                             options=(Option("classes", 1, minimum=1),), default_encoder="plain_enc"),
            ArchitectureSpec("pointwise", "a 1x1 head on a 1x1 encoder", build_pointwise,
                             options=(Option("classes", 1, minimum=1),), default_encoder="pointwise_enc")]


@zoo.hookimpl
def zoo_register_callbacks():
    return [CallbackSpec("broken", "raises at every step", Broken)]
