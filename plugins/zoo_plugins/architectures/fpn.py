"""FPN (Lin et al., CVPR 2017) as a segmentation decoder, the panoptic-FPN head of Kirillov et al.
(CVPR 2019): a top-down pathway with lateral 1x1 convs over the last four stages, each level brought to
the finest one by 3x3 conv-GroupNorm-ReLU blocks with x2 upsampling, summed (or concatenated)."""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.layers import init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class ConvGNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(math.gcd(32, cout), cout),
                         nn.ReLU(inplace=True))


class FPNDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, pyramid_channels: int, segmentation_channels: int,
                 dropout: float, merge: str) -> None:
        super().__init__()
        require_stages("fpn", info, 4)
        chans, reds = info.channels[-4:], info.reductions[-4:]
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid_channels, 1) for c in chans)
        self.levels = nn.ModuleList()
        for r in reds:  # deep levels need more x2 steps to reach the finest level's resolution
            steps = max(1, round(math.log2(r / reds[0]))) if r > reds[0] else 1
            blocks = [ConvGNReLU(pyramid_channels if i == 0 else segmentation_channels, segmentation_channels)
                      for i in range(steps)]
            self.levels.append(nn.Sequential(*blocks))
        self.merge = merge
        out = segmentation_channels * (4 if merge == "cat" else 1)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(out, classes, 1)
        self.finest = reds[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        feats = features[-4:]
        pyramid = [self.lateral[-1](feats[-1])]
        for lateral, skip in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            pyramid.insert(0, resize_to(pyramid[0], skip.shape[-2:], "nearest") + lateral(skip))
        size = pyramid[0].shape[-2:]
        levels = []
        for level, x in zip(self.levels, pyramid):
            for block in level:
                x = block(x)
                if x.shape[-2:] != size:
                    x = resize_to(x, (min(x.shape[-2] * 2, size[0]), min(x.shape[-1] * 2, size[1])))
            levels.append(x)
        x = torch.cat(levels, 1) if self.merge == "cat" else torch.stack(levels).sum(0)
        x = self.head(self.dropout(x))
        return resize_to(x, (size[0] * self.finest, size[1] * self.finest))


def build_fpn(encoder: nn.Module, classes: int = 1, pyramid_channels: int = 256, segmentation_channels: int = 128,
              dropout: float = 0.2, merge: str = "add") -> SegmentationModel:
    decoder = FPNDecoder(encoder.feature_info, classes, pyramid_channels, segmentation_channels, dropout, merge)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
