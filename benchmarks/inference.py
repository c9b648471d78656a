"""Inference images/s (batch 8, 256x256, no grad) of zoo models loaded from their weights file, against
the report's networks in fp32 eager NCHW, same process.

    python -m benchmarks.inference [--repeats 3]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import run_cli, median_seconds, table


def measure(repeats: int = 3, image_size: int = 256, batch: int = 8) -> list[dict[str, Any]]:
    import zoo
    from benchmarks.report_models import ReportResNet34UNet, ReportUNet

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if dev.type == "cuda" else None
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x = torch.randn(batch, 3, image_size, image_size, device=dev)
    rows = []
    for name, reference in (("unet", ReportUNet), ("resnet34_unet", ReportResNet34UNet)):
        ref = reference().to(dev).eval()
        with torch.no_grad():
            ref_time = median_seconds(lambda: ref(x), repeats, sync=sync)
        with tempfile.TemporaryDirectory() as tmp:
            path = zoo.save_model(zoo.create_model(name), Path(tmp) / "m.safetensors")
            model = zoo.load_model(path).to(dev, memory_format=torch.channels_last)
        xl = x.contiguous(memory_format=torch.channels_last)

        def run():
            with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                return model(xl)

        zoo_time = median_seconds(run, repeats, sync=sync)
        rows.append({"network": name, "zoo_img_s": batch / zoo_time, "ref_img_s": batch / ref_time,
                     "ratio": ref_time / zoo_time})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return table(["network", "zoo img/s", "report code img/s", "ratio"],
                 [[r["network"], f"{r['zoo_img_s']:.2f}", f"{r['ref_img_s']:.2f}", f"{r['ratio']:.2f}x"] for r in rows])


def main() -> None:
    run_cli(__doc__, {"--repeats": (int, 3)},
            lambda a: measure(a.repeats), render)


if __name__ == "__main__":
    main()
