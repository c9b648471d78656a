"""Prediction at scale: the streaming predictor against a naive loop, and peak memory of tiled
inference on large images against whole-image inference.

    python -m benchmarks.predict_stream [--images 64] [--sides 1024,4096,8192,16384]

Throughput: a folder of JPEGs of 512x512 predicted at the training size (256) by `resnet34_unet`:
zoo's `Predictor.predict_folder` (images batched by 8, PNGs written by a background thread,
decoding in worker processes where the model is not on the CPU) against open -> resize -> model -> save, one image at a time, same model, same
process. Memory: `zoo predict W big.png --tile 256` in a fresh process per image (peak RSS from
getrusage), a narrow UNet (`-o base_channels=8`), against `--resolution native` without tiles.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import run_cli, table

# peak RSS from VmHWM: getrusage's ru_maxrss would carry over the forking parent's peak across exec
PROBE = ("import sys, time; from zoo.cli import main\n"
         "start = time.perf_counter()\n"
         "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
         "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
         "print(time.perf_counter() - start, int(hwm.split()[1]))")


def _picture(h: int, w: int, seed: int) -> np.ndarray:
    import torch.nn.functional as F

    small = torch.from_numpy(np.random.default_rng(seed).random((1, 3, max(2, h // 64), max(2, w // 64)))).float()
    return (F.interpolate(small, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def throughput(images: int, folder: Path) -> list[dict[str, Any]]:
    from PIL import Image

    import zoo
    from zoo.data.pipeline import Normalize
    from zoo.inference import Predictor

    photos = folder / "photos"
    photos.mkdir()
    for i in range(images):
        Image.fromarray(_picture(512, 512, i)).save(photos / f"{i:03d}.jpg", quality=90)
    torch.manual_seed(0)
    weights = zoo.save_model(zoo.create_model("resnet34_unet"), folder / "r34.safetensors")
    predictor = Predictor(weights, device="cpu", batch_size=8)
    model, prep = predictor.model, predictor.preprocessing
    normalize = Normalize(prep.mean, prep.std)

    def naive(out: Path) -> None:
        out.mkdir()
        for path in sorted(photos.iterdir()):
            image = Image.open(path).convert("RGB")
            x = torch.from_numpy(np.array(image.resize((prep.image_size,) * 2, Image.BILINEAR))).permute(2, 0, 1)
            with torch.no_grad():
                logits = model(normalize(x[None].float().contiguous(memory_format=torch.channels_last)))
            logits = torch.nn.functional.interpolate(logits, size=image.size[::-1], mode="bilinear")
            mask = (torch.sigmoid(logits[0, 0]) > 0.5).numpy().astype(np.uint8) * 255
            Image.fromarray(mask).save(out / f"{path.name}.mask.png")

    timings: dict[str, list[float]] = {"naive": [], "zoo": []}
    for repeat in range(2):  # interleaved, after a warm-up pass of each
        for name in ("naive", "zoo"):
            out = folder / f"{name}-{repeat}"
            start = time.perf_counter()
            if name == "naive":
                naive(out)
            else:
                predictor.predict_folder([photos], out, overlay=False)  # its default workers
            timings[name].append(time.perf_counter() - start)
    naive_s, zoo_s = timings["naive"][-1], timings["zoo"][-1]
    return [{"what": f"{images} JPEGs 512x512 -> masks, resnet34_unet at 256", "naive_img_s": images / naive_s,
             "zoo_img_s": images / zoo_s, "ratio": naive_s / zoo_s}]


def memory(sides: list[int], folder: Path) -> list[dict[str, Any]]:
    from PIL import Image

    import zoo

    torch.manual_seed(0)
    weights = zoo.save_model(zoo.create_model("unet", base_channels=8), folder / "unet8.safetensors")
    rows = []
    baseline = None
    for side in [64, *sides]:
        path = folder / f"{side}.png"
        Image.fromarray(_picture(side, side, side)).save(path)
        row: dict[str, Any] = {"side": side}
        for mode, extra in (("tiled", ["--tile", "256"]), ("whole", ["--resolution", "native"])):
            if mode == "whole" and side > 4096:  # whole-image activations at 8192 px exceed this machine
                continue
            done = subprocess.run([sys.executable, "-c", PROBE, "predict", str(weights), str(path), "--out",
                                   str(folder / f"out-{mode}-{side}"), "--no-overlay", "--workers", "0", "-q", *extra],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                row[f"{mode}_mb"], row[f"{mode}_s"] = None, None
                continue
            seconds, rss = done.stdout.strip().splitlines()[-1].split()
            row[f"{mode}_mb"], row[f"{mode}_s"] = int(rss) / 1024, float(seconds)
        if side == 64:
            baseline = row
            continue
        row["baseline_mb"] = baseline["tiled_mb"]
        rows.append(row)
    return rows


def measure(args) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t").mkdir()
        (Path(tmp) / "m").mkdir()
        return {"throughput": throughput(args.images, Path(tmp) / "t"),
                "memory": memory([int(s) for s in args.sides.split(",")], Path(tmp) / "m")}


def render(rows: dict[str, Any]) -> str:
    first = table(["what", "naive loop img/s", "zoo predict img/s", "ratio"],
                  [[r["what"], f"{r['naive_img_s']:.2f}", f"{r['zoo_img_s']:.2f}", f"{r['ratio']:.2f}x"]
                   for r in rows["throughput"]])

    def mb(value):
        return "-" if value is None else f"{value:.0f}"

    def sec(value):
        return "-" if value is None else f"{value:.1f}"

    second = table(["image", "--tile 256 peak RSS MB", "--tile 256 s", "whole image peak RSS MB", "whole image s"],
                   [[f"{r['side']}x{r['side']}", mb(r["tiled_mb"]), sec(r["tiled_s"]), mb(r.get("whole_mb")),
                     sec(r.get("whole_s"))] for r in rows["memory"]])
    base = rows["memory"][0]["baseline_mb"] if rows["memory"] else 0
    return f"{first}\n\n{second}\n\n(a 64x64 image: {base:.0f} MB, the process with torch and the model loaded)"


def main() -> None:
    run_cli(__doc__, {"--images": (int, 64), "--sides": (str, "1024,4096,8192,16384")}, measure, render)


if __name__ == "__main__":
    main()
