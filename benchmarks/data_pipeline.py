"""Images/s delivered as normalized training batches (256x256, batch 8): zoo's first (decoding) epoch and
cached epochs, against a loader written as the report describes it (PIL + float64 numpy per sample,
dataset rebuilt every epoch), on the same real Oxford-IIIT Pet files, in the same process.

    python -m benchmarks.data_pipeline [--epochs 3] [--data-dir ../shared/data/oxford-pet-sample]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import table

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-pet-sample"


def report_epochs(root: Path, names: list[str], epochs: int, size: int, batch: int) -> float:
    from benchmarks.report_models import ReportDataset

    start, images = time.perf_counter(), 0
    for _ in range(epochs):
        dataset = ReportDataset([(root / "images" / f"{n}.jpg", root / "annotations" / "trimaps" / f"{n}.png")
                                 for n in names], size)  # rebuilt every epoch, as the report did
        for sample in torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True):
            sample["image"].float()
            images += len(sample["image"])
    return images / (time.perf_counter() - start)


def zoo_epochs(split, epochs: int, batch: int, augment: str) -> float:
    from zoo.data.pipeline import Augment, BatchLoader

    loader = BatchLoader(split.cached, batch, torch.device("cpu"), train=True, augment=Augment.parse(augment),
                         channels_last=True)
    start, images = time.perf_counter(), 0
    for epoch in range(epochs):
        for b in loader.epoch(epoch):
            images += len(b.indices)
    return images / (time.perf_counter() - start)


def measure(data_dir: Path = DEFAULT_DATA, epochs: int = 3, size: int = 256, batch: int = 8,
            train_step_img_s: float | None = None) -> list[dict[str, Any]]:
    import zoo
    from zoo_plugins.datasets.oxford import split_names

    names = split_names(data_dir, "train")
    reference = report_epochs(data_dir, names, epochs, size, batch)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        split = zoo.create_dataset("oxford-pet", "train", data_dir, image_size=size, cache_dir=cache)
        first_decode = len(split) / (time.perf_counter() - start)
        first = 1 / (1 / first_decode + 1 / zoo_epochs(split, 1, batch, "none"))
        cached = zoo_epochs(split, epochs, batch, "none")
        augmented = zoo_epochs(split, epochs, batch, "flip,affine,color")
    rows = [
        {"what": "report loader (rebuilt each epoch)", "img_s": reference, "ratio": 1.0},
        {"what": "zoo first epoch (decode + cache + batches)", "img_s": first, "ratio": first / reference},
        {"what": "zoo cached epochs", "img_s": cached, "ratio": cached / reference},
        {"what": "zoo cached epochs + flip/affine/color on CPU", "img_s": augmented, "ratio": augmented / reference},
    ]
    if train_step_img_s:
        rows.append({"what": "zoo cached epochs vs unet train step", "img_s": cached, "ratio": cached / train_step_img_s})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return table(["pipeline", "images/s", "ratio"], [[r["what"], f"{r['img_s']:.1f}", f"{r['ratio']:.1f}x"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    print(render(measure(args.data_dir, args.epochs)))


if __name__ == "__main__":
    main()
