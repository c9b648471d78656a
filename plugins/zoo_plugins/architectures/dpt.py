"""DPT, the Dense Prediction Transformer (Ranftl et al., ICCV 2021): four encoder stages are
*reassembled* into a pyramid at strides 4, 8, 16 and 32 (a 1x1 projection, then a transposed conv, a
strided conv or nothing, then a 3x3 conv to the fusion width), and *fused* from deep to shallow by
residual conv units, each step upsampling to the next level.

Made for plain ViTs, whose blocks all sit at stride 16 (timm encoders tap four blocks evenly spaced
through the depth), it also takes hierarchical encoders (Swin, ConvNeXt, ResNet): a stage already at
its pyramid stride is used as it is. Readout tokens are ignored (the paper's "ignore" readout): zoo's
encoder contract returns spatial maps only."""

from __future__ import annotations

import torch
from torch import nn

from zoo.encoders import require_stages
from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


def _resample(channels: int, factor: float) -> nn.Module:
    """Bring a map from its stride to ``factor`` times finer (a learned upsampling) or coarser."""
    if factor > 1:
        return nn.ConvTranspose2d(channels, channels, round(factor), stride=round(factor))
    if factor < 1:
        return nn.Conv2d(channels, channels, 3, stride=round(1 / factor), padding=1)
    return nn.Identity()


class Reassemble(nn.Sequential):
    def __init__(self, cin: int, mid: int, cout: int, factor: float) -> None:
        super().__init__(nn.Conv2d(cin, mid, 1), _resample(mid, factor), nn.Conv2d(mid, cout, 3, padding=1, bias=False))


class ResidualConvUnit(nn.Module):
    """``x + (ReLU, conv, BN) twice``: pre-activation, so the sum is not clipped."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Fusion(nn.Module):
    """``project(resize(unit2(unit1(level) + deeper)))``: adds the deeper result, then moves one level up."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.unit1 = ResidualConvUnit(channels)
        self.unit2 = ResidualConvUnit(channels)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, level: torch.Tensor, deeper: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        x = self.unit1(level)
        if deeper is not None:
            x = x + deeper
        return self.project(resize_to(self.unit2(x), size))


class DPTDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, intermediate_channels: tuple[int, ...], fusion_channels: int,
                 dropout: float) -> None:
        super().__init__()
        require_stages("dpt", info, 4)
        if len(intermediate_channels) != 4:
            from zoo.errors import OptionError

            raise OptionError(f"intermediate_channels needs 4 widths, one per reassembled level; got "
                              f"{len(intermediate_channels)}")
        chans, reds = info.channels[-4:], info.reductions[-4:]
        self.reassemble = nn.ModuleList(Reassemble(c, m, fusion_channels, r / 2 ** (i + 2))
                                        for i, (c, m, r) in enumerate(zip(chans, intermediate_channels, reds)))
        self.fusions = nn.ModuleList(Fusion(fusion_channels) for _ in range(4))
        self.head = nn.Sequential(ConvBNReLU(fusion_channels, fusion_channels, 3), nn.Dropout(dropout),
                                  nn.Conv2d(fusion_channels, classes, 1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        levels = [block(f) for block, f in zip(self.reassemble, features[-4:])]
        sizes = [tuple(f.shape[-2:]) for f in levels]
        first = (sizes[0][0] * 2, sizes[0][1] * 2)  # the last fusion lands at stride 2, as in the paper
        x = None
        for i in reversed(range(4)):
            x = self.fusions[i](levels[i], x, sizes[i - 1] if i else first)
        x = self.head(x)
        return resize_to(x, (sizes[0][0] * 4, sizes[0][1] * 4))  # level 0 is at stride 4 by construction


def build_dpt(encoder: nn.Module, classes: int = 1, intermediate_channels: tuple[int, ...] = (256, 512, 1024, 1024),
              fusion_channels: int = 256, dropout: float = 0.1) -> SegmentationModel:
    decoder = DPTDecoder(encoder.feature_info, classes, tuple(intermediate_channels), fusion_channels, dropout)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
