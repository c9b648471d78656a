"""MA-Net (Fan et al., IEEE Access 2020): a position attention block (PAB) on the deepest stage, then
multi-scale fusion attention blocks (MFAB): the upsampled high-level features are reweighted by the sum
of two squeeze-excitation gates (one from them, one from the skip) before they meet the skip. The PAB's
softmax runs over each query position's row (as in the paper and DANet)."""

from __future__ import annotations

import torch
from torch import nn

from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class PositionAttention(nn.Module):
    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, attention_channels, 1)
        self.key = nn.Conv2d(channels, attention_channels, 1)
        self.value = nn.Conv2d(channels, channels, 3, padding=1)
        self.out = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, P)
        k = self.key(x).flatten(2)  # (N, P, HW)
        v = self.value(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        attended = torch.softmax(q @ k, -1) @ v  # each position: a weighted mean of all positions' values
        return self.out(x + attended.transpose(1, 2).reshape(n, c, h, w))


def squeeze_excite(channels: int, reduction: int) -> nn.Sequential:
    hidden = max(1, channels // reduction)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, channels, 1), nn.Sigmoid())


class FusionAttentionBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, reduction: int) -> None:
        super().__init__()
        self.high = nn.Sequential(ConvBNReLU(cin, cin, 3), ConvBNReLU(cin, cskip, 1))
        self.gate_high, self.gate_skip = squeeze_excite(cskip, reduction), squeeze_excite(cskip, reduction)
        self.convs = nn.Sequential(ConvBNReLU(2 * cskip, cout), ConvBNReLU(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = resize_to(self.high(x), skip.shape[-2:], "nearest")
        x = x * (self.gate_high(x) + self.gate_skip(skip))
        return self.convs(torch.cat((x, skip), 1))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(ConvBNReLU(cin, cout), ConvBNReLU(cout, cout))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.convs(resize_to(x, size, "nearest"))


class MANetDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, decoder_channels: tuple[int, ...], attention_channels: int,
                 reduction: int) -> None:
        super().__init__()
        widths = list(reversed(info.channels))
        self.center = PositionAttention(widths[0], attention_channels)
        ins = [widths[0], *decoder_channels]
        self.fusions = nn.ModuleList(FusionAttentionBlock(ins[i], widths[i + 1], decoder_channels[i], reduction)
                                     for i in range(len(widths) - 1))
        last = len(widths) - 1
        # one more x2 step to the input's resolution when the shallowest stage is downsampled
        self.final = UpBlock(ins[last], decoder_channels[last]) if info.reductions[0] > 1 else None
        self.head = nn.Conv2d(decoder_channels[last if self.final is not None else last - 1], classes, 3, padding=1)
        self.first_reduction = info.reductions[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        enc = list(reversed(features))
        x = self.center(enc[0])
        for block, skip in zip(self.fusions, enc[1:]):
            x = block(x, skip)
        if self.final is not None:
            x = self.final(x, (x.shape[-2] * 2, x.shape[-1] * 2))
        x = self.head(x)
        full = (features[0].shape[-2] * self.first_reduction, features[0].shape[-1] * self.first_reduction)
        return x if x.shape[-2:] == full else resize_to(x, full)


def build_manet(encoder: nn.Module, classes: int = 1, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
                pab_channels: int = 64, reduction: int = 16) -> SegmentationModel:
    needed = len(encoder.feature_info.channels)
    if len(decoder_channels) < needed:
        from zoo.errors import OptionError

        raise OptionError(f"-o decoder_channels={','.join(map(str, decoder_channels))}: manet needs {needed} widths "
                          f"for an encoder with {needed} stages")
    decoder = MANetDecoder(encoder.feature_info, classes, decoder_channels, pab_channels, reduction)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
