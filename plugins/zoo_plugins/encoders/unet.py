from __future__ import annotations

from torch import nn

from zoo.encoders import SequentialEncoder, load_encoder_weights
from zoo.layers import DoubleConv, init_weights
from zoo_plugins.encoders import unet_feature_info


class UNetEncoder(SequentialEncoder):
    """Stage 0 is DoubleConv at full resolution; each next one max-pools then DoubleConvs."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, depth: int = 5, weights: str = "") -> None:
        super().__init__()
        self.feature_info = unet_feature_info(in_channels, base_channels, depth)
        widths = self.feature_info.channels
        self.stages = nn.ModuleList([DoubleConv(in_channels, widths[0])])
        for cin, cout in zip(widths, widths[1:]):
            self.stages.append(nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout)))
        init_weights(self)
        if weights:
            load_encoder_weights(self, weights)
