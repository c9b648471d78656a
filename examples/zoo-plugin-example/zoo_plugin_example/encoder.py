from torch import nn

from zoo.encoders import SequentialEncoder
from zoo_plugin_example import tiny_feature_info


class TinyEncoder(SequentialEncoder):
    def __init__(self, in_channels: int = 3, width: int = 8):
        super().__init__()
        self.feature_info = tiny_feature_info(in_channels, width)
        chans = (in_channels,) + self.feature_info.channels
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in zip(chans, chans[1:])
        )
