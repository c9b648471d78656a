"""PSPNet (Zhao et al., CVPR 2017): a pyramid pooling module (bins 1, 2, 3, 6) on the encoder's last
built stage. As in smp, the encoder stops at stride 8 (``encoder_depth=3``) unless told otherwise;
zoo does not build the stages it would not run."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import AdaptiveAvgPool, ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo

BINS = (1, 2, 3, 6)


class PyramidPooling(nn.Module):
    """The input beside its average-pooled versions (one bin grid each), upsampled back and concatenated;
    each branch has ``branch`` channels (a quarter of the input's by default, as PSPNet)."""

    def __init__(self, cin: int, bins: tuple[int, ...] = BINS, branch: int | None = None) -> None:
        super().__init__()
        branch = branch or max(1, cin // len(bins))
        # a 1x1 pooled map has one value per channel: BatchNorm there is undefined in training, so a plain conv
        self.stages = nn.ModuleList(
            nn.Sequential(AdaptiveAvgPool(b), nn.Conv2d(cin, branch, 1), nn.ReLU(inplace=True)) if b == 1
            else nn.Sequential(AdaptiveAvgPool(b), ConvBNReLU(cin, branch, 1)) for b in bins)
        self.out_channels = cin + branch * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return torch.cat([x] + [resize_to(stage(x), size) for stage in self.stages], 1)


class PSPDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.ppm = PyramidPooling(info.channels[-1])
        self.conv = ConvBNReLU(self.ppm.out_channels, channels, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(channels, classes, 3, padding=1)
        self.stride = info.reductions[-1]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.head(self.dropout(self.conv(self.ppm(features[-1]))))
        return resize_to(x, (x.shape[-2] * self.stride, x.shape[-1] * self.stride))


def build_pspnet(encoder: nn.Module, classes: int = 1, psp_out_channels: int = 512, dropout: float = 0.2,
                 encoder_depth: int = 3) -> SegmentationModel:
    decoder = PSPDecoder(encoder.feature_info, classes, psp_out_channels, dropout)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
