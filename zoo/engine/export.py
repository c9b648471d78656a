"""`zoo export`: ONNX with dynamic batch, height and width, checked in onnxruntime before it is kept."""

from __future__ import annotations

from pathlib import Path

import torch

from zoo.api import load_model, weights_path
from zoo.atomic import save_atomic
from zoo.errors import ExportError, UsageError
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
    from zoo.engine.evaluate import default_output

    weights = weights_path(path, which, registry)
    model = load_model(weights, registry=registry).eval()
    target = Path(out) if out else default_output(weights, weights.with_suffix(".onnx").name)
    channels = model.config.options.get("encoder.in_channels") or _first_conv_channels(model)
    example = torch.randn(2, channels, image_size, image_size)
    batch, height, width = (torch.export.Dim(n, min=1, max=4096) for n in ("batch", "height", "width"))
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=opset, input_names=["image"], output_names=["logits"],
        dynamic_shapes={"x": {0: batch, 2: height, 3: width}}, verbose=False,
    )
    save_atomic(target, lambda tmp: (program.save(str(tmp)), verify_onnx(tmp, model, channels)))
    return target


def verify_onnx(path: Path, model: torch.nn.Module, channels: int) -> None:
    """Run the exported graph in onnxruntime at two sizes that are not multiples of the model's stride
    and compare with PyTorch; a graph that disagrees or fails is an error, and is not kept."""
    try:
        import onnxruntime as ort
    except ImportError:  # the graph cannot be checked here: say so, keep it
        import warnings

        warnings.warn("onnxruntime is not installed, so the exported graph was not checked", stacklevel=2)
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    stride = getattr(model, "stride", 32)
    for h, w in ((stride + 3, 2 * stride + 7), (2 * stride - 5, stride + 1)):
        x = torch.randn(1, channels, h, w)
        with torch.no_grad():
            expected = model(x).numpy()
        try:
            (got,) = session.run(None, {name: x.numpy()})
        except Exception as exc:  # onnxruntime's own error types
            raise ExportError(f"the exported graph fails in onnxruntime at {h}x{w}: {' '.join(str(exc).split())[:300]}") from None
        worst = float(abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        if not worst <= 1e-3 * max(1.0, float(abs(expected).max())):  # NaN anywhere disagrees too
            raise ExportError(f"the exported graph disagrees with the model at {h}x{w} (shape {got.shape} vs "
                              f"{expected.shape}, largest difference {worst:.3g})")


def _first_conv_channels(model: torch.nn.Module) -> int:
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels
