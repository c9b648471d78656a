"""DeepLabV3 (Chen et al., 2017) and DeepLabV3+ (Chen et al., ECCV 2018): atrous spatial pyramid
pooling on a dilated encoder's last stage (output stride 8 or 16); V3+ adds a decoder that merges the
stride-4 features through a 48-channel projection, with depthwise-separable convolutions."""

from __future__ import annotations

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.errors import OptionError
from zoo.layers import ConvBNReLU, SeparableConv2d, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class ASPP(nn.Module):
    """A 1x1 branch, one 3x3 branch per atrous rate (separable in V3+), image pooling; concatenated and
    projected to ``channels``, with dropout."""

    def __init__(self, cin: int, channels: int, rates: tuple[int, ...], separable: bool, dropout: float) -> None:
        super().__init__()
        atrous = [nn.Sequential(SeparableConv2d(cin, channels, r), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
                  if separable else ConvBNReLU(cin, channels, 3, r) for r in rates]
        self.branches = nn.ModuleList([ConvBNReLU(cin, channels, 1), *atrous])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, channels, 1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.project = nn.Sequential(ConvBNReLU(channels * (len(rates) + 2), channels, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])  # a broadcast, not an interpolation: exports cleanly
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class DeepLabV3Decoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int, rates: tuple[int, ...], separable: bool,
                 dropout: float) -> None:
        super().__init__()
        self.aspp = ASPP(info.channels[-1], channels, rates, separable, dropout)
        self.conv = ConvBNReLU(channels, channels, 3)
        self.head = nn.Conv2d(channels, classes, 1)
        self.stride = info.reductions[-1]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.head(self.conv(self.aspp(features[-1])))
        return resize_to(x, (x.shape[-2] * self.stride, x.shape[-1] * self.stride))


class DeepLabV3PlusDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int, rates: tuple[int, ...], separable: bool,
                 dropout: float) -> None:
        super().__init__()
        require_stages("deeplabv3plus", info, 2)
        low = next(i for i, r in enumerate(info.reductions) if r >= 4)  # the stride-4 (or first deeper) stage
        self.low_index, self.low_stride = low, info.reductions[low]
        self.aspp = nn.Sequential(ASPP(info.channels[-1], channels, rates, separable, dropout),
                                  SeparableConv2d(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.reduce = ConvBNReLU(info.channels[low], 48, 1)  # 48 channels, as the paper proposes
        self.fuse = nn.Sequential(SeparableConv2d(channels + 48, channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        skip = features[self.low_index]
        x = resize_to(self.aspp(features[-1]), skip.shape[-2:])
        x = self.head(self.fuse(torch.cat((x, self.reduce(skip)), 1)))
        return resize_to(x, (x.shape[-2] * self.low_stride, x.shape[-1] * self.low_stride))


def _rates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        rates = ()
    if not rates or min(rates) < 1:
        raise OptionError(f"-o atrous_rates={text}: atrous_rates must be positive integers, e.g. 12,24,36")
    return rates


def build_deeplabv3(encoder: nn.Module, classes: int = 1, decoder_channels: int = 256, atrous_rates: str = "12,24,36",
                    output_stride: int = 8, aspp_separable: bool = False, aspp_dropout: float = 0.5) -> SegmentationModel:
    decoder = DeepLabV3Decoder(encoder.feature_info, classes, decoder_channels, _rates(atrous_rates), aspp_separable,
                               aspp_dropout)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)


def build_deeplabv3plus(encoder: nn.Module, classes: int = 1, decoder_channels: int = 256,
                        atrous_rates: str = "12,24,36", output_stride: int = 16, aspp_separable: bool = True,
                        aspp_dropout: float = 0.5) -> SegmentationModel:
    decoder = DeepLabV3PlusDecoder(encoder.feature_info, classes, decoder_channels, _rates(atrous_rates),
                                   aspp_separable, aspp_dropout)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
