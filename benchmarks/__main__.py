"""Run every benchmark and write one markdown report with the machine's description.

    python -m benchmarks [--out benchmarks/RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import cli_latency, data_pipeline, inference, train_step
from benchmarks._common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier figures)")
    args = parser.parse_args()
    steps = 2 if args.quick else 5
    sections = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. Command: `make bench` "
                f"(`python -m benchmarks{' --quick' if args.quick else ''}`).\n"]
    print("cli latency ...", flush=True)
    sections += ["### CLI latency\n", cli_latency.render(cli_latency.measure(3 if args.quick else 7)) + "\n"]
    print("train step ...", flush=True)
    steps_rows = train_step.measure(steps)
    sections += ["### Training step (batch 8, 256x256, SGD; fp32 on CPU, bf16 on CUDA)\n",
                 train_step.render(steps_rows) + "\n"]
    slowest_step = min(r["zoo_img_s"] for r in steps_rows)
    print("data pipeline ...", flush=True)
    sections += ["### Data pipeline (real Oxford-IIIT Pet sample, 256x256, batch 8)\n",
                 data_pipeline.render(data_pipeline.measure(epochs=5, train_step_img_s=slowest_step)) + "\n"]
    print("inference ...", flush=True)
    sections += ["### Inference (batch 8, 256x256)\n", inference.render(inference.measure(steps)) + "\n"]
    text = "\n".join(sections)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
