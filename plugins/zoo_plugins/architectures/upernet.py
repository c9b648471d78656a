"""UPerNet (Xiao et al., ECCV 2018): a pyramid pooling module on the deepest stage feeds a top-down FPN
over the others; every level's 3x3 conv output is brought to the finest level, concatenated and fused."""

from __future__ import annotations

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo
from zoo_plugins.architectures.pspnet import PyramidPooling


class UPerNetDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int) -> None:
        super().__init__()
        require_stages("upernet", info, 2)
        chans = info.channels[-4:]
        self.ppm = PyramidPooling(chans[-1], branch=channels)
        self.ppm_out = ConvBNReLU(self.ppm.out_channels, channels, 3)
        self.lateral = nn.ModuleList(ConvBNReLU(c, channels, 1) for c in chans[:-1])
        self.smooth = nn.ModuleList(ConvBNReLU(channels, channels, 3) for _ in chans[:-1])
        self.fuse = ConvBNReLU(channels * len(chans), channels, 3)
        self.head = nn.Conv2d(channels, classes, 1)
        self.finest = info.reductions[-len(chans)]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        feats = features[-len(self.lateral) - 1:]
        top = self.ppm_out(self.ppm(feats[-1]))
        levels = [top]
        for lateral, skip in zip(reversed(self.lateral), reversed(feats[:-1])):
            top = resize_to(top, skip.shape[-2:]) + lateral(skip)
            levels.append(top)
        levels = [levels[0]] + [smooth(x) for smooth, x in zip(reversed(self.smooth), levels[1:])]
        size = levels[-1].shape[-2:]
        x = self.head(self.fuse(torch.cat([resize_to(x, size) for x in levels], 1)))
        return resize_to(x, (size[0] * self.finest, size[1] * self.finest))


def build_upernet(encoder: nn.Module, classes: int = 1, decoder_channels: int = 256) -> SegmentationModel:
    decoder = UPerNetDecoder(encoder.feature_info, classes, decoder_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
