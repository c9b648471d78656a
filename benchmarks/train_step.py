"""Images/s of one SGD training step (batch 8, 256x256; fp32 on CPU, bf16 on CUDA) of zoo's `unet` and
`resnet34_unet` against the report's networks written plainly, and smp's Unet("resnet34") if installed.

    python -m benchmarks.train_step [--steps 3] [--image-size 256] [--batch-size 8]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import run_cli, interleaved_seconds, table
from zoo.engine.device import retained_heap


def _step_fn(model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(steps: int = 3, image_size: int = 256, batch_size: int = 8, device: str | None = None,
            compile: bool = False) -> list[dict[str, Any]]:
    """Per network: zoo and the report's code interleaved, once with the default allocator and once
    with the retained heap zoo's engine uses on CPU; the headline ratio is zoo as its engine runs
    against the report's code as it was written."""
    import zoo
    from benchmarks.report_models import ReportResNet34UNet, ReportUNet

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    zoo_dtype = torch.bfloat16 if dev.type == "cuda" else None
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    x = torch.randn(batch_size, 3, image_size, image_size, device=dev)
    xl = x.contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch_size, 1, image_size, image_size, device=dev) > 0.5).float()
    mse = zoo.create_loss("mse")
    report_loss = lambda out, target: F.mse_loss(out, target)  # noqa: E731  (report: MSE on its sigmoid)
    cpu = dev.type == "cpu"
    results = []
    for name, reference in (("unet", ReportUNet), ("resnet34_unet", ReportResNet34UNet)):
        model = zoo.create_model(name).to(dev, memory_format=torch.channels_last).train()
        steps_by = {"report": _step_fn(reference().to(dev).train(), report_loss, x, y, None),
                    "zoo": _step_fn(torch.compile(model) if compile else model, mse, xl, y, zoo_dtype)}
        plain = interleaved_seconds(steps_by, steps, warmup=2 if compile else 1, sync=sync)
        with retained_heap(cpu) as retained:
            kept = interleaved_seconds(steps_by, steps, sync=sync) if retained else plain
        del steps_by, model

        def row(against: str, ref: float, ours: float) -> dict[str, Any]:
            return {"network": name, "reference": against, "zoo_img_s": batch_size / ours,
                    "ref_img_s": batch_size / ref, "ratio": ref / ours}

        results.append(row("report code as written (fp32, NCHW, default allocator)", plain["report"], kept["zoo"]))
        if cpu:
            results.append(row("  same, both on the default allocator", plain["report"], plain["zoo"]))
            results.append(row("  same, both on zoo's retained heap", kept["report"], kept["zoo"]))
    try:
        import segmentation_models_pytorch as smp
    except ImportError:  # a dev dependency: the smp rows need it
        return results
    with retained_heap(cpu):  # both under zoo's settings: same precision, layout and allocator
        smp_model = smp.Unet("resnet34", encoder_weights=None, classes=1).to(dev, memory_format=torch.channels_last)
        model = zoo.create_model("resnet34_unet").to(dev, memory_format=torch.channels_last).train()
        times = interleaved_seconds({"smp": _step_fn(smp_model.train(), torch.nn.BCEWithLogitsLoss(), xl, y, zoo_dtype),
                                     "zoo": _step_fn(model, mse, xl, y, zoo_dtype)}, steps, sync=sync)
    results.append({"network": "resnet34_unet", "reference": "smp Unet(resnet34), same precision, layout, allocator",
                    "zoo_img_s": batch_size / times["zoo"], "ref_img_s": batch_size / times["smp"],
                    "ratio": times["smp"] / times["zoo"]})
    if cpu:
        results += _cpu_bf16_rows(smp, xl, x, y, mse, report_loss, steps, batch_size)
    return results


def _cpu_bf16_rows(smp, xl, x, y, mse, report_loss, steps: int, batch_size: int) -> list[dict[str, Any]]:
    """zoo's CPU default where the CPU computes bf16 natively (AVX512-BF16/AMX): bf16 autocast,
    against zoo in fp32, the report's code as written, and smp's Unet in bf16."""
    import zoo
    from benchmarks.report_models import ReportResNet34UNet
    from zoo.engine.device import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        return []
    bf16 = torch.bfloat16
    with retained_heap(True):
        ours = zoo.create_model("resnet34_unet").to(memory_format=torch.channels_last).train()
        fp32 = zoo.create_model("resnet34_unet").to(memory_format=torch.channels_last).train()
        theirs = smp.Unet("resnet34", encoder_weights=None, classes=1).to(memory_format=torch.channels_last).train()
        times = interleaved_seconds({"zoo": _step_fn(ours, mse, xl, y, bf16), "fp32": _step_fn(fp32, mse, xl, y, None),
                                     "report": _step_fn(ReportResNet34UNet().train(), report_loss, x, y, None),
                                     "smp": _step_fn(theirs, torch.nn.BCEWithLogitsLoss(), xl, y, bf16)}, steps)
    labels = {"fp32": "zoo in fp32 (--no-amp), same layout and allocator", "report": "report code as written (fp32)",
              "smp": "smp Unet(resnet34) in bf16, same layout and allocator"}
    return [{"network": "resnet34_unet bf16", "reference": labels[k], "zoo_img_s": batch_size / times["zoo"],
             "ref_img_s": batch_size / times[k], "ratio": times[k] / times["zoo"]} for k in labels]


def render(results: list[dict[str, Any]]) -> str:
    return table(["network", "against", "zoo img/s", "reference img/s", "ratio"],
                 [[r["network"], r["reference"], f"{r['zoo_img_s']:.2f}", f"{r['ref_img_s']:.2f}", f"{r['ratio']:.2f}x"]
                  for r in results])


def main() -> None:
    run_cli(__doc__, {"--steps": (int, 3), "--image-size": (int, 256), "--batch-size": (int, 8), "--device": (str, None),
             "--compile": (bool, False)},
            lambda a: measure(a.steps, a.image_size, a.batch_size, a.device, a.compile), render)


if __name__ == "__main__":
    main()
