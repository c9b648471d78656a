"""The report's ResNet34-UNet decoder, generalised to any encoder's declared stages."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import DoubleConv, LogitsBlock, init_weights, stage_factors, upsample
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class LightDecoder(nn.Module):
    """Bottleneck DoubleConv(C, C/2) on the deepest features; then per stage, deep to shallow:
    concatenate (skip, x), ConvTranspose to half the channels, DoubleConv to ``width``; then a final
    ConvTranspose, a DoubleConv and a logits block. Report encoder (strides 4..32): 768->384->32,
    288->144->32, 160->80->32, 96->48->32, as in the report."""

    def __init__(self, info: FeatureInfo, classes: int, width: int = 32) -> None:
        super().__init__()
        chans, reds = info.channels, info.reductions
        # The stride left below the shallowest skip is split between its stage and the final up.
        final = 2 if reds[0] % 2 == 0 else 1
        factors = [reds[0] // final] + stage_factors(reds)
        self.bottleneck = DoubleConv(chans[-1], chans[-1] // 2)
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        prev = chans[-1] // 2
        for i in reversed(range(len(chans))):
            merged = chans[i] + prev
            self.ups.append(upsample(merged, merged // 2, factors[i]))
            self.blocks.append(DoubleConv(merged // 2, width))
            prev = width
        self.head = nn.Sequential(upsample(width, width, final), DoubleConv(width, width), LogitsBlock(width, classes))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.bottleneck(features[-1])
        for up, block, skip in zip(self.ups, self.blocks, reversed(features)):
            x = block(up(torch.cat((skip, x), dim=1)))
        return self.head(x)


def from_stride_four(info: FeatureInfo) -> tuple[FeatureInfo, int]:
    """The report's decoder starts at the stride-4 stage: the stages it uses, and how many come before."""
    skip = sum(r < 4 for r in info.reductions[:-1])
    return FeatureInfo(info.channels[skip:], info.reductions[skip:]), skip


class ReportDecoder(LightDecoder):
    """LightDecoder on the stages from stride 4 on (the report's ResNet34-UNet ignores the stem); the
    same tensor names, so round-1 weights load."""

    def __init__(self, info: FeatureInfo, classes: int, width: int) -> None:
        used, skip = from_stride_four(info)
        super().__init__(used, classes, width)
        self.skip = skip

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return super().forward(features[self.skip:])


def build_resnet34_unet(encoder: nn.Module, classes: int = 1, decoder_channels: int = 32) -> SegmentationModel:
    decoder = ReportDecoder(encoder.feature_info, classes, decoder_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
