"""PAN, the Pyramid Attention Network (Li et al., BMVC 2018): a feature pyramid attention (FPA) module
on the deepest stage (a U-shaped 7/5/3 conv pyramid over max-pooled maps, multiplied into a 1x1
projection, plus global context), then global attention upsample (GAU) blocks that weight each
shallower stage by the deeper one's pooled context, up to stride 4.

Pooled (1x1) branches use a biased conv instead of conv+BatchNorm so that training at batch size 1
works; the pyramid pools keeping odd rows and columns and resizes to each level's own size, so the decoder runs
on any feature size without needing the input padded to 8x the encoder's stride."""

from __future__ import annotations

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.layers import AdaptiveAvgPool, ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


def _pooled_projection(cin: int, cout: int, activation: nn.Module) -> nn.Sequential:
    """Global average pooling, then a 1x1 conv: one context vector per image."""
    return nn.Sequential(AdaptiveAvgPool(1), nn.Conv2d(cin, cout, 1), activation)


class HalvingMaxPool(nn.Module):
    """2x2 max pooling that keeps a last odd row/column (``ceil_mode``), written as a -inf pad so that
    it exports with dynamic sizes (a traced ``ceil_mode`` pool pins the size)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return nn.functional.max_pool2d(nn.functional.pad(x, (0, w % 2, 0, h % 2), value=float("-inf")), 2)


class FeaturePyramidAttention(nn.Module):
    """``project(x) * pyramid(x) + context(x)``: the pyramid is a one-channel attention map built at
    1/2, 1/4 and 1/8 of the input with 7x7, 5x5 and 3x3 convs and merged back up."""

    def __init__(self, cin: int, channels: int) -> None:
        super().__init__()
        self.context = _pooled_projection(cin, channels, nn.ReLU(inplace=True))
        self.project = ConvBNReLU(cin, channels, 1)
        self.down1 = nn.Sequential(HalvingMaxPool(), ConvBNReLU(cin, 1, 7))
        self.down2 = nn.Sequential(HalvingMaxPool(), ConvBNReLU(1, 1, 5))
        self.down3 = nn.Sequential(HalvingMaxPool(), ConvBNReLU(1, 1, 3), ConvBNReLU(1, 1, 3))
        self.lateral2 = ConvBNReLU(1, 1, 5)
        self.lateral1 = ConvBNReLU(1, 1, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.down1(x)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        attention = resize_to(x3, x2.shape[-2:]) + self.lateral2(x2)
        attention = resize_to(attention, x1.shape[-2:]) + self.lateral1(x1)
        attention = resize_to(attention, x.shape[-2:])
        return self.project(x) * attention + self.context(x)  # context broadcasts over H and W


class GlobalAttentionUpsample(nn.Module):
    """``upsampled(deep) + conv(skip) * sigmoid(pooled(deep))``: the deeper map chooses which of the
    shallower map's channels to pass."""

    def __init__(self, skip_channels: int, channels: int) -> None:
        super().__init__()
        self.skip = ConvBNReLU(skip_channels, channels, 3)
        self.gate = _pooled_projection(channels, channels, nn.Sigmoid())

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        return resize_to(deep, skip.shape[-2:]) + self.skip(skip) * self.gate(deep)


class PANDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int) -> None:
        super().__init__()
        require_stages("pan", info, 4)
        chans = info.channels[-4:]
        self.fpa = FeaturePyramidAttention(chans[-1], channels)
        self.gaus = nn.ModuleList(GlobalAttentionUpsample(c, channels) for c in reversed(chans[:-1]))
        self.head = nn.Conv2d(channels, classes, 3, padding=1)
        self.finest = info.reductions[-4]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.fpa(features[-1])
        for gau, skip in zip(self.gaus, reversed(features[-4:-1])):
            x = gau(skip, x)
        x = self.head(x)
        return resize_to(x, (x.shape[-2] * self.finest, x.shape[-1] * self.finest))


def build_pan(encoder: nn.Module, classes: int = 1, decoder_channels: int = 32,
              output_stride: int = 16) -> SegmentationModel:
    decoder = PANDecoder(encoder.feature_info, classes, decoder_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
