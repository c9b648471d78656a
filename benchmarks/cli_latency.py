"""Wall time of listing commands (median of several runs) against `python -c pass` and `import torch`.

    python -m benchmarks.cli_latency [--runs 7]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import run_cli, table

COMMANDS = [["--help"], ["list-models"], ["list-encoders"], ["list-losses", "--json"], ["info", "unet"],
            ["info", "bce"], ["info", "resnet34"], ["info", "unte"], ["plugins"]]


def wall(cmd: list[str], runs: int, ok: tuple[int, ...] = (0,)) -> float:
    times = []
    for _ in range(runs + 1):  # the first run warms the file cache (and zoo's saved timm names)
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return statistics.median(times[1:])


def measure(runs: int = 7) -> list[dict[str, Any]]:
    python = wall([sys.executable, "-c", "pass"], runs)
    torch = wall([sys.executable, "-c", "import torch"], max(3, runs // 2))
    rows = [{"command": "python -c pass", "seconds": python, "ratio": 1.0},
            {"command": "python -c 'import torch'", "seconds": torch, "ratio": torch / python}]
    for args in COMMANDS:
        seconds = wall([sys.executable, "-m", "zoo", *args], runs, ok=(0, 2))  # `info unte` is a typo: exit 2
        rows.append({"command": "zoo " + " ".join(args), "seconds": seconds, "ratio": seconds / python})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return table(["command", "median wall (s)", "vs python -c pass"],
                 [[r["command"], f"{r['seconds']:.3f}", f"{r['ratio']:.1f}x"] for r in rows])


def main() -> None:
    run_cli(__doc__, {"--runs": (int, 7)},
            lambda a: measure(a.runs), render)


if __name__ == "__main__":
    main()
