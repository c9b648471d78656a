"""SegFormer's all-MLP decoder (Xie et al., NeurIPS 2021): every stage projected by a linear layer
(a 1x1 conv) to ``segmentation_channels``, resized to stride 4 (the paper's finest stage; a finer stem
is brought down to it), concatenated, fused by a 1x1 conv-BN-ReLU, classified, and upsampled."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class SegFormerDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, channels: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in info.channels)
        self.fuse = ConvBNReLU(channels * len(info.channels), channels, 1)
        self.head = nn.Conv2d(channels, classes, 1)
        self.target = next((i for i, r in enumerate(info.reductions) if r >= 4), len(info.reductions) - 1)
        self.stride = info.reductions[self.target]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[self.target].shape[-2:]
        x = torch.cat([resize_to(p(f), size) for p, f in zip(self.project, features)], 1)
        x = self.head(self.fuse(x))
        return resize_to(x, (size[0] * self.stride, size[1] * self.stride))


def build_segformer(encoder: nn.Module, classes: int = 1, segmentation_channels: int = 256) -> SegmentationModel:
    decoder = SegFormerDecoder(encoder.feature_info, classes, segmentation_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
