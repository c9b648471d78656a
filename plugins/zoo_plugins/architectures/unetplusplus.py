"""UNet++ (Zhou et al., DLMIA 2018): nested, dense skip pathways. With E_0 the deepest encoder stage and
E_1..E_L the shallower ones, node N(d, l) (0 <= d <= l < L) sits at the resolution of E_{l+1}: it
upsamples E_d (when d == l) or N(d, l-1), concatenates every N(k, l) with k > d and E_{l+1}, and applies
two 3x3 conv-BN-ReLU. N(0, l) carry ``decoder_channels[l]`` channels, the others their level's encoder
width; a last block upsamples N(0, L-1) without a skip."""

from __future__ import annotations

import torch
from torch import nn

from zoo.errors import OptionError
from zoo.layers import ConvBNReLU, init_weights, resize_to
from zoo.models import SegmentationModel
from zoo.specs import FeatureInfo


class NestedBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(ConvBNReLU(cin + cskip, cout), ConvBNReLU(cout, cout))

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], size: torch.Size) -> torch.Tensor:
        x = resize_to(x, size, "nearest")
        return self.convs(torch.cat([x, *skips], 1) if skips else x)


class UNetPlusPlusDecoder(nn.Module):
    def __init__(self, info: FeatureInfo, classes: int, decoder_channels: tuple[int, ...]) -> None:
        super().__init__()
        widths = list(reversed(info.channels))  # E_0 (deepest) .. E_L
        levels = len(widths) - 1
        if len(decoder_channels) < levels + 1:
            raise OptionError(f"-o decoder_channels={','.join(map(str, decoder_channels))}: unetplusplus needs "
                              f"{levels + 1} widths for an encoder with {levels + 1} stages")
        self.levels = levels
        out = {}
        self.nodes = nn.ModuleDict()
        for l in range(levels):  # noqa: E741 - the paper's index
            for d in range(l, -1, -1):
                cin = widths[d] if d == l else out[(d, l - 1)]
                out[(d, l)] = decoder_channels[l] if d == 0 else widths[l + 1]
                self.nodes[f"{d}_{l}"] = NestedBlock(cin, widths[l + 1] * (l - d + 1), out[(d, l)])
        self.last = NestedBlock(out[(0, levels - 1)], 0, decoder_channels[levels])
        self.head = nn.Conv2d(decoder_channels[levels], classes, 3, padding=1)
        self.first_reduction = info.reductions[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        enc = list(reversed(features))
        nodes: dict[tuple[int, int], torch.Tensor] = {}
        for l in range(self.levels):  # noqa: E741
            size = enc[l + 1].shape[-2:]
            for d in range(l, -1, -1):  # deeper nodes of this column first: shallower ones concatenate them
                below = enc[d] if d == l else nodes[(d, l - 1)]
                skips = [nodes[(k, l)] for k in range(d + 1, l + 1)] + [enc[l + 1]]
                nodes[(d, l)] = self.nodes[f"{d}_{l}"](below, skips, size)
        top = nodes[(0, self.levels - 1)]
        x = self.head(self.last(top, [], torch.Size((top.shape[-2] * 2, top.shape[-1] * 2))))
        full = (x.shape[-2] * self.first_reduction // 2, x.shape[-1] * self.first_reduction // 2)
        return x if x.shape[-2:] == full else resize_to(x, full)


def build_unetplusplus(encoder: nn.Module, classes: int = 1,
                       decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)) -> SegmentationModel:
    decoder = UNetPlusPlusDecoder(encoder.feature_info, classes, decoder_channels)
    init_weights(decoder)
    return SegmentationModel(encoder, decoder)
