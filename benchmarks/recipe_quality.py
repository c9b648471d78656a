"""Does `zoo train ARCH --dataset D --epochs N` with no other flag train as well as a plain
hand-written loop? On real Oxford-IIIT pets (../shared/data/oxford-pet-sample), the same network
(unet on resnet34, 128 px, 20 epochs, seed 0) trained three ways, each scored on the test split by
`zoo eval` (per-image Dice, threshold 0.5):

- a plain loop written by hand: AdamW 1e-3, BCE + soft Dice, horizontal flips, batch 8, bf16
  autocast where the CPU has it (as zoo's default), no schedule, no zoo engine;
- `zoo train` with the default recipe (no flag beyond dataset, epochs and image size);
- `zoo train --recipe report` (the lab report's recipe).

    python -m benchmarks.recipe_quality [--epochs 20] [--data-dir ../shared/data/oxford-pet-sample]

Quality, not speed: one run each, so differences of about 0.01 are within seed-to-seed noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import run_cli, table

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-pet-sample"


def _zoo(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "zoo", *args], check=True, capture_output=True, text=True).stdout


def plain_loop(data_dir: Path, epochs: int, size: int, out: Path) -> Path:
    import zoo
    from zoo.engine.device import amp_dtype

    torch.manual_seed(0)
    data = zoo.create_dataset("oxford-pet", "train", data_dir, image_size=size)
    images = torch.stack([data[i]["image"] for i in range(len(data))]).float() / 255
    masks = torch.stack([data[i]["mask"] for i in range(len(data))]).float()
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    images = (images - mean) / std
    model = zoo.create_model("unet", encoder="resnet34")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = amp_dtype(torch.device("cpu"), None)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(order), 8):
            idx = order[start:start + 8]
            x, y = images[idx], masks[idx]
            flip = torch.rand(len(idx)) < 0.5
            x, y = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x), torch.where(flip.view(-1, 1, 1, 1), y.flip(-1), y)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits = model(x)
            logits = logits.float()
            probs = torch.sigmoid(logits)
            dice = 1 - (2 * (probs * y).sum() + 1) / (probs.sum() + y.sum() + 1)
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return zoo.save_model(model, out / "plain.safetensors")


def measure(epochs: int = 20, image_size: int = 128, data_dir: str = str(SAMPLE)) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        common = ["--dataset", "oxford-pet", "--data-dir", data_dir, "--split", "test", "--image-size",
                  str(image_size), "--json"]
        weights = plain_loop(Path(data_dir), epochs, image_size, tmp_path)
        scored = json.loads(_zoo("eval", str(weights), *common))
        results.append({"how": "plain loop: AdamW 1e-3, bce+dice, flip", "test_dice": scored["dice"]})
        for label, extra in (("zoo train (default recipe)", []), ("zoo train --recipe report", ["--recipe", "report"])):
            run = tmp_path / label.split()[-1].strip("()")
            _zoo("train", "unet", "--encoder", "resnet34", "--dataset", "oxford-pet", "--data-dir", data_dir,
                 "--epochs", str(epochs), "--image-size", str(image_size), "--out", str(run), "-q", *extra)
            scored = json.loads(_zoo("eval", str(run), "--split", "test", "--json"))
            results.append({"how": label, "test_dice": scored["dice"]})
    return results


def render(results: list[dict[str, Any]]) -> str:
    return table(["training", "test Dice"], [[r["how"], f"{r['test_dice']:.3f}"] for r in results])


def main() -> None:
    run_cli(__doc__, {"--epochs": (int, 20), "--image-size": (int, 128), "--data-dir": (str, str(SAMPLE))},
            lambda a: measure(a.epochs, a.image_size, a.data_dir), render)


if __name__ == "__main__":
    main()
