"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        import torch

        text += f", torch {torch.__version__}"
        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name()}"
    except ImportError:
        pass
    return text


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def interleaved_seconds(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                        sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved (A B A B ...) so that drift of a
    shared machine weighs on all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run_cli(doc: str, options: dict[str, tuple[type, object]], measure: Callable, render: Callable) -> None:
    """A benchmark module's command line: its options, then a markdown table or (``--json``) the
    rows for ``python -m benchmarks``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, (kind, default) in options.items():
        if kind is bool:
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=kind, default=default)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (for python -m benchmarks)")
    args = parser.parse_args()
    rows = measure(args)
    print(json.dumps(rows) if args.json else render(rows))
