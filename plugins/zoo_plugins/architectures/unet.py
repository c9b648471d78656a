"""The report's UNet decoder, generalised to any encoder's declared stages."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import DoubleConv, init_weights, stage_factors, upsample
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class UNetDecoder(nn.Module):
    """Per stage, deep to shallow: upsample to the skip's width, concatenate (skip, up), DoubleConv.
    With the report's encoder this is exactly the report's decoder; an encoder whose first stage is
    already downsampled gets one more upsample + DoubleConv to full resolution."""

    def __init__(self, info: FeatureInfo, classes: int) -> None:
        super().__init__()
        chans, factors = info.channels, stage_factors(info.reductions)
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(chans) - 1)):
            self.ups.append(upsample(chans[i + 1], chans[i], factors[i]))
            self.blocks.append(DoubleConv(2 * chans[i], chans[i]))
        first, stride = chans[0], info.reductions[0]
        self.to_full = (
            nn.Sequential(upsample(first, first, stride), DoubleConv(first, first)) if stride > 1 else nn.Identity()
        )
        self.head = nn.Conv2d(first, classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for up, block, skip in zip(self.ups, self.blocks, reversed(features[:-1])):
            x = block(torch.cat((skip, up(x)), dim=1))
        return self.head(self.to_full(x))


def build_unet(encoder: nn.Module, classes: int = 1) -> SegmentationModel:
    decoder = UNetDecoder(encoder.feature_info, classes)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
