from __future__ import annotations

import torch
from torch import nn

from zoo.encoders import Encoder, load_encoder_weights
from zoo.layers import init_weights
from zoo_plugins.encoders import resnet34_feature_info


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual. One BatchNorm per conv (the report shared one between both:
    its running statistics then average two different layers' activations, so eval-mode outputs
    drift from training-mode ones). ``dilation`` replaces striding in dilated (atrous) stages."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int = 1, first_dilation: int | None = None) -> None:
        super().__init__()
        first = first_dilation or dilation
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, first, dilation=first, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.relu(x + shortcut)


class ResNet34Encoder(Encoder):
    """Features of the stem (stride 2) and after layer1..layer4 (strides 4, 8, 16, 32), as smp's and
    timm's resnets give them. Module names follow torchvision/timm, so their resnet34 .safetensors
    weights load as they are.
    ``output_stride`` 16 or 8 dilates layer4 (and layer3) instead of striding them, as DeepLab does;
    ``depth`` builds only the first stages."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, weights: str = "", output_stride: int = 32,
                 depth: int = 5) -> None:
        super().__init__()
        self.feature_info = resnet34_feature_info(in_channels, base_channels, weights, output_stride, depth)
        self.conv1 = nn.Conv2d(in_channels, base_channels, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, dilation = base_channels, 1
        self.layers: list[str] = []
        for index, blocks in enumerate((3, 4, 6, 3)[: depth - 1], start=1):
            cout, reduction = base_channels * 2 ** (index - 1), 4 * 2 ** (index - 1)
            stride = 1 if index == 1 or reduction > output_stride else 2
            previous = dilation
            if index > 1 and reduction > output_stride:
                dilation *= 2
            layer = [BasicBlock(cin, cout, stride, dilation, previous)] + [BasicBlock(cout, cout, 1, dilation)
                                                                         for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layer))
            self.layers.append(f"layer{index}")
            cin = cout
        init_weights(self)
        if weights:
            load_encoder_weights(self, weights, first_conv="conv1")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        features = [x]
        x = self.maxpool(x)
        for name in self.layers:
            x = getattr(self, name)(x)
            features.append(x)
        return features
