"""Run every benchmark, each in its own process (so none inherits another's allocator or thread
state), and write one markdown report with the machine's description.

    python -m benchmarks [--out benchmarks/RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import architectures, cli_latency, data_pipeline, engine_loop, inference, predict_stream, train_step
from benchmarks._common import machine


def run(module, *args: str) -> list[dict]:
    print(f"{module.__name__} ...", flush=True)
    out = subprocess.run([sys.executable, "-m", module.__name__, "--json", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier figures)")
    args = parser.parse_args()
    repeats = "2" if args.quick else "5"
    steps = run(train_step, "--steps", repeats)
    slowest = min(r["zoo_img_s"] for r in steps)
    sections = [
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. "
        f"Command: `make bench` (`python -m benchmarks{' --quick' if args.quick else ''}`).\n",
        "### CLI latency\n", cli_latency.render(run(cli_latency, "--runs", "3" if args.quick else "7")) + "\n",
        "### Training step (batch 8, 256x256, SGD; fp32 on CPU, bf16 on CUDA; then zoo's CPU default, bf16)\n", train_step.render(steps) + "\n",
        "### Data pipeline (real Oxford-IIIT Pet sample, 256x256, batch 8)\n",
        data_pipeline.render(run(data_pipeline, "--epochs", repeats, "--train-step-img-s", str(slowest))) + "\n",
        "### Inference (batch 8, 256x256)\n", inference.render(run(inference, "--repeats", repeats)) + "\n",
        "### Training loop: the loss read every step against every 50 (unet, synthetic 64 px, batch 8)\n",
        engine_loop.render(run(engine_loop, "--repeats", "2" if args.quick else "3")) + "\n",
        "### Architectures on resnet34 against smp's same model (batch 4, 256x256, fp32 on CPU)\n",
        architectures.render(run(architectures, "--steps", repeats)) + "\n",
        "### Prediction at scale: streaming predictor vs a naive loop; peak memory of tiled inference\n",
        predict_stream.render(run(predict_stream, *(["--images", "16", "--sides", "1024,4096"] if args.quick else []))) + "\n",
    ]
    text = "\n".join(sections)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
