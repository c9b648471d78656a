"""LinkNet (Chaurasia & Culurciello, VCIP 2017): light decoder blocks (1x1 down to a quarter, x2
transposed conv, 1x1 up) whose outputs are added to the encoder's skips, deep to shallow, then one
more block to full resolution."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import ConvBNReLU, init_weights
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class LinkBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, factor: int) -> None:
        mid = max(1, cin // 4)
        up = (nn.ConvTranspose2d(mid, mid, 4, stride=2, padding=1) if factor == 2
              else nn.ConvTranspose2d(mid, mid, factor, stride=factor) if factor > 1 else nn.Conv2d(mid, mid, 3, padding=1))
        super().__init__(ConvBNReLU(cin, mid, 1), up, nn.BatchNorm2d(mid), nn.ReLU(inplace=True), ConvBNReLU(mid, cout, 1))


class LinkNetDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, prefinal_channels: int) -> None:
        super().__init__()
        chans, reds = info.channels, info.reductions
        targets = list(reversed(chans[:-1]))  # each block ends at the next shallower skip's width
        ins = list(reversed(chans))
        factors = [reds[i] // reds[i - 1] for i in range(len(reds) - 1, 0, -1)]
        self.blocks = nn.ModuleList(LinkBlock(cin, cout, f) for cin, cout, f in zip(ins, targets, factors))
        # the rest of the stride: x2 steps from the shallowest skip down to full resolution
        rest, cin, tail = reds[0], chans[0], []
        while rest > 1:
            cout = prefinal_channels if rest == 2 else cin
            tail.append(LinkBlock(cin, cout, 2))
            cin, rest = cout, rest // 2
        self.tail = nn.Sequential(*tail)
        self.head = nn.Conv2d(prefinal_channels if tail else chans[0], classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            x = block(x) + skip
        return self.head(self.tail(x))


def build_linknet(encoder: nn.Module, classes: int = 1, prefinal_channels: int = 32) -> SegmentationModel:
    decoder = LinkNetDecoder(encoder.feature_info, classes, prefinal_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
