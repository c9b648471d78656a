"""Images/s delivered as normalized training batches (256x256, batch 8): zoo's first (decoding) epoch and
cached epochs, against a loader written as the report describes it (PIL + float64 numpy per sample,
dataset rebuilt every epoch), on the same real Oxford-IIIT Pet files, in the same process.

    python -m benchmarks.data_pipeline [--epochs 3] [--data-dir ../shared/data/oxford-pet-sample]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import run_cli, table

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-pet-sample"


def report_epoch(root: Path, names: list[str], size: int, batch: int) -> int:
    from benchmarks.report_models import ReportDataset

    dataset = ReportDataset([(root / "images" / f"{n}.jpg", root / "annotations" / "trimaps" / f"{n}.png")
                             for n in names], size)  # rebuilt every epoch, as the report did
    images = 0
    for sample in torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True):
        sample["image"].float()
        images += len(sample["image"])
    return images


def zoo_epoch(loader, epoch: int) -> int:
    return sum(len(b.indices) for b in loader.epoch(epoch))


def measure(data_dir: Path = DEFAULT_DATA, epochs: int = 5, size: int = 256, batch: int = 8,
            train_step_img_s: float | None = None) -> list[dict[str, Any]]:
    """The first zoo epoch is timed once (it decodes into a fresh cache); the cached and the report's
    epochs are interleaved ``epochs`` times and their median rates compared."""
    import zoo
    from zoo.data.pipeline import Augment, BatchLoader
    from zoo_plugins.datasets.oxford import split_names

    names = split_names(data_dir, "train")
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        split = zoo.create_dataset("oxford-pet", "train", data_dir, image_size=size, cache_dir=cache)
        plain, augmented = (BatchLoader(split.cached, batch, torch.device("cpu"), train=True, channels_last=True,
                                        augment=Augment.parse(aug)) for aug in ("none", "flip,affine,color"))
        first = zoo_epoch(plain, 0) / (time.perf_counter() - start)
        rates: dict[str, list[float]] = {"report": [], "cached": [], "augmented": []}
        runs = {"report": lambda e: report_epoch(data_dir, names, size, batch),
                "cached": lambda e: zoo_epoch(plain, e), "augmented": lambda e: zoo_epoch(augmented, e)}
        for epoch in range(epochs):
            for name, run in runs.items():
                begin = time.perf_counter()
                images = run(epoch)
                rates[name].append(images / (time.perf_counter() - begin))
    reference, cached, augment_rate = (statistics.median(rates[k]) for k in ("report", "cached", "augmented"))
    rows = [
        {"what": "report loader (rebuilt each epoch)", "img_s": reference, "ratio": 1.0},
        {"what": "zoo first epoch (decode + cache + batches)", "img_s": first, "ratio": first / reference},
        {"what": "zoo cached epochs", "img_s": cached, "ratio": cached / reference},
        {"what": "zoo cached epochs + flip/affine/color on CPU", "img_s": augment_rate, "ratio": augment_rate / reference},
    ]
    if train_step_img_s:
        rows.append({"what": "zoo cached epochs vs unet train step", "img_s": cached, "ratio": cached / train_step_img_s})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return table(["pipeline", "images/s", "ratio"], [[r["what"], f"{r['img_s']:.1f}", f"{r['ratio']:.1f}x"] for r in rows])


def main() -> None:
    run_cli(__doc__, {"--epochs": (int, 5), "--data-dir": (Path, DEFAULT_DATA), "--train-step-img-s": (float, None)},
            lambda a: measure(a.data_dir, a.epochs, train_step_img_s=a.train_step_img_s), render)


if __name__ == "__main__":
    main()
