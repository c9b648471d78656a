"""A decoder planned from the encoder's declared stages: each stage projected to ``width`` channels,
brought to the finest stage's size, summed, then a 3x3 conv to the classes and an upsampling."""

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import IncompatibleEncoder
from zoo.models import SegmentationModel


class SumDecoder(nn.Module):
    def __init__(self, feature_info, classes: int, width: int):
        super().__init__()
        if len(feature_info.channels) < 2:
            raise IncompatibleEncoder(f"sumseg needs an encoder with at least 2 stages; this one has "
                                      f"{len(feature_info.channels)}")
        self.project = nn.ModuleList(nn.Conv2d(c, width, 1) for c in feature_info.channels)
        self.head = nn.Conv2d(width, classes, 3, padding=1)
        self.finest = feature_info.reductions[0]

    def forward(self, features):
        size = features[0].shape[-2:]
        x = sum(F.interpolate(p(f), size=size, mode="bilinear", align_corners=False)
                for p, f in zip(self.project, features))
        x = self.head(torch.relu(x))
        return F.interpolate(x, scale_factor=self.finest, mode="bilinear", align_corners=False)


def build_sumseg(encoder, classes: int = 1, width: int = 16):
    # zoo pads inputs to the encoder's total stride and crops the logits back; the config is zoo's
    return SegmentationModel(encoder, SumDecoder(encoder.feature_info, classes, width))
