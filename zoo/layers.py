"""Building blocks shared by built-in and third-party architectures (public API)."""

from __future__ import annotations

import torch
from torch import nn


class DoubleConv(nn.Sequential):
    """The report's Block: (3x3 conv, BatchNorm, ReLU) twice. Convs have no bias: BN cancels it."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class LogitsBlock(nn.Sequential):
    """DoubleConv whose second conv ends the network: a plain conv with bias, so it emits logits
    (the report ended on BN+ReLU+BN+sigmoid, which cannot output a negative logit)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )


def upsample(in_channels: int, out_channels: int, factor: int) -> nn.Module:
    """A learned x``factor`` upsampling (ConvTranspose, as in the report); a 1x1 conv when 1."""
    if factor == 1:
        return nn.Conv2d(in_channels, out_channels, 1)
    return nn.ConvTranspose2d(in_channels, out_channels, factor, stride=factor)


def stage_factors(reductions: tuple[int, ...]) -> list[int]:
    """Upsampling factor between consecutive stages; each stage's stride must divide the next."""
    factors = []
    for low, high in zip(reductions, reductions[1:]):
        if high % low:
            raise ValueError(f"stage reductions {reductions} are not multiples of each other")
        factors.append(high // low)
    return factors


def init_weights(module: nn.Module) -> None:
    """The report's initialisation: Kaiming-normal convs, BatchNorm at weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad H and W (bottom/right) up to a multiple of ``multiple``. Always pads (possibly by 0)
    so that the graph has no shape-dependent branch and exports with dynamic H and W."""
    h, w = x.shape[-2:]
    return nn.functional.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple) % multiple))


class ConvBNReLU(nn.Sequential):
    """Conv (no bias: BN cancels it), BatchNorm, ReLU: the unit most decoders are built of."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConv2d(nn.Sequential):
    """Depthwise (optionally atrous) 3x3 then pointwise 1x1, both without bias (DeepLabV3+)."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


def resize_to(x: torch.Tensor, size: tuple[int, int] | torch.Size, mode: str = "bilinear") -> torch.Tensor:
    """Resize feature maps to ``size`` (H, W); bilinear without corner alignment unless ``mode`` says."""
    if mode == "nearest":
        return nn.functional.interpolate(x, size=size, mode="nearest")
    return nn.functional.interpolate(x, size=size, mode=mode, align_corners=False)


def _pooling_matrix(n: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, n): row i averages positions [floor(i n / b), ceil((i + 1) n / b)), as adaptive pooling does."""
    i = torch.arange(bins, device=like.device)[:, None]
    y = torch.arange(n, device=like.device)[None, :]
    inside = (y >= (i * n) // bins) & (y < -((-(i + 1) * n) // bins))
    weights = inside.to(like.dtype)
    return weights / weights.sum(1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)``, in a form whose bins follow the input's size when the graph
    is traced (torch.export, ONNX, torch.compile): two small pooling matrices built from the size.
    A traced adaptive pooling would fix its bins at the example's size."""
    if not torch.compiler.is_compiling():
        return nn.functional.adaptive_avg_pool2d(x, bins)
    rows, cols = _pooling_matrix(x.shape[-2], bins, x), _pooling_matrix(x.shape[-1], bins, x)
    return torch.einsum("ih,nchw,jw->ncij", rows, x, cols)


class AdaptiveAvgPool(nn.Module):
    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool(x, self.bins)
