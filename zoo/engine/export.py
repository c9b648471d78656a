"""`zoo export`: ONNX with dynamic batch, height and width."""

from __future__ import annotations

from pathlib import Path

import torch

from zoo.api import load_model, weights_path
from zoo.atomic import save_atomic
from zoo.errors import UsageError
from zoo.registry import Registry

FORMATS = ("onnx",)


def export(path: str | Path, out: str | Path | None = None, *, fmt: str = "onnx", which: str = "model",
           image_size: int = 64, opset: int = 18, registry: Registry | None = None) -> Path:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise UsageError("ONNX export needs the onnx extra: pip install 'zoo[onnx]'") from None
    weights = weights_path(path, which)
    model = load_model(weights, registry=registry).eval()
    target = Path(out) if out else weights.with_suffix(".onnx")
    channels = model.config.options.get("encoder.in_channels") or _first_conv_channels(model)
    example = torch.randn(2, channels, image_size, image_size)
    batch, height, width = (torch.export.Dim(n, min=1, max=4096) for n in ("batch", "height", "width"))
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=opset, input_names=["image"], output_names=["logits"],
        dynamic_shapes={"x": {0: batch, 2: height, 3: width}}, verbose=False,
    )
    save_atomic(target, lambda tmp: program.save(str(tmp)))
    return target


def _first_conv_channels(model: torch.nn.Module) -> int:
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels
