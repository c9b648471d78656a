"""Images/s of every architecture smp also has, on resnet34 (1 class), against smp's same model in the
same process: one SGD training step and one inference pass, zoo's and smp's interleaved, both under the
same precision, memory layout (channels_last) and allocator.

    python -m benchmarks.architectures [--steps 5] [--image-size 256] [--batch-size 4] [--only fpn,pan]
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks._common import interleaved_seconds, run_cli, table
from benchmarks.train_step import _step_fn
from zoo.engine.device import retained_heap

# zoo name -> (smp class, its constructor options where zoo's defaults differ in name only)
SMP = {"fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus", "pspnet": "PSPNet",
       "linknet": "Linknet", "segformer": "Segformer", "upernet": "UPerNet", "unetplusplus": "UnetPlusPlus",
       "manet": "MAnet", "pan": "PAN"}


def _infer_fn(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None):
    def infer():
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            model(x)

    return infer


def measure(steps: int = 5, image_size: int = 256, batch_size: int = 4, device: str | None = None,
            only: str = "") -> list[dict[str, Any]]:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:  # a dev dependency: without it there is nothing to compare against
        return []
    import zoo

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if dev.type == "cuda" else None
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    size = image_size + (-image_size % 128)  # PAN in smp needs multiples of 128
    x = torch.randn(batch_size, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch_size, 1, size, size, device=dev) > 0.5).float()
    loss = torch.nn.BCEWithLogitsLoss()
    names = [n for n in SMP if not only or n in only.split(",")]
    results = []
    with retained_heap(dev.type == "cpu"):
        for name in names:
            ours = zoo.create_model(name, encoder="resnet34").to(dev, memory_format=torch.channels_last)
            theirs = getattr(smp, SMP[name])("resnet34", encoder_weights=None, classes=1)
            theirs = theirs.to(dev, memory_format=torch.channels_last)
            train = interleaved_seconds({"smp": _step_fn(theirs.train(), loss, x, y, dtype),
                                         "zoo": _step_fn(ours.train(), loss, x, y, dtype)}, steps, sync=sync)
            infer = interleaved_seconds({"smp": _infer_fn(theirs.eval(), x, dtype),
                                         "zoo": _infer_fn(ours.eval(), x, dtype)}, steps, sync=sync)
            results.append({"architecture": name, "size": size, "batch": batch_size,
                            "train_zoo": batch_size / train["zoo"], "train_smp": batch_size / train["smp"],
                            "infer_zoo": batch_size / infer["zoo"], "infer_smp": batch_size / infer["smp"]})
            del ours, theirs
    return results


def render(results: list[dict[str, Any]]) -> str:
    return table(["architecture", "train zoo img/s", "train smp img/s", "train ratio", "infer zoo img/s",
                  "infer smp img/s", "infer ratio"],
                 [[r["architecture"], f"{r['train_zoo']:.2f}", f"{r['train_smp']:.2f}",
                   f"{r['train_zoo'] / r['train_smp']:.2f}x", f"{r['infer_zoo']:.2f}", f"{r['infer_smp']:.2f}",
                   f"{r['infer_zoo'] / r['infer_smp']:.2f}x"] for r in results])


def main() -> None:
    run_cli(__doc__, {"--steps": (int, 5), "--image-size": (int, 256), "--batch-size": (int, 4),
                      "--device": (str, None), "--only": (str, "")},
            lambda a: measure(a.steps, a.image_size, a.batch_size, a.device, a.only), render)


if __name__ == "__main__":
    main()
