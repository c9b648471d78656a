"""Training-loop throughput with the loss read every step (`--log-every 1`: a host sync per step, as
zoo 0.1's loop did with `loss.item()`) against once per 50 steps (the default), interleaved in one
process: whole `zoo.train` epochs on `synthetic`, images/s from the runs' metrics rows.

    python -m benchmarks.engine_loop [--repeats 3] [--image-size 64] [--count 256]

On a CPU a "sync" costs little (there is no device queue to drain); on a GPU it stalls the queue every
step, which is what the default removes.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import run_cli, table


def measure(repeats: int = 3, image_size: int = 64, count: int = 256) -> list[dict[str, Any]]:
    from zoo.engine.train import train

    speeds: dict[int, list[float]] = {1: [], 50: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = dict(architecture="unet", dataset="synthetic", epochs=1, image_size=image_size, batch_size=8,
                      options={"base_channels": "16", "count": str(count), "size": str(image_size)})
        train(out=Path(tmp) / "warm", **config)  # the cache and the allocator, before timing
        for r in range(repeats):
            for every in speeds:
                result = train(out=Path(tmp) / f"{every}-{r}", log_every=every, **config)
                speeds[every].append(result.history[-1]["images_per_s"])
    steps = count // 8
    return [{"log_every": every, "images_per_s": statistics.median(v), "steps_per_s": statistics.median(v) / 8,
             "steps": steps, "ratio": statistics.median(v) / statistics.median(speeds[1])}
            for every, v in speeds.items()]


def render(results: list[dict[str, Any]]) -> str:
    return table(["loss read every", "steps/s", "images/s", "vs every step"],
                 [[f"{r['log_every']} step(s)", f"{r['steps_per_s']:.2f}", f"{r['images_per_s']:.1f}",
                   f"{r['ratio']:.2f}x"] for r in results])


def main() -> None:
    run_cli(__doc__, {"--repeats": (int, 3), "--image-size": (int, 64), "--count": (int, 256)},
            lambda a: measure(a.repeats, a.image_size, a.count), render)


if __name__ == "__main__":
    main()
