"""The two helpers of a streaming prediction: a background writer and a progress bar."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Writer:
    """Writes outputs on one background thread while the model runs; the first error stops the run."""

    def __enter__(self) -> "Writer":
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-writer")
        self.pending: deque[Future] = deque()
        return self

    def submit(self, fn, *args) -> None:
        if len(self.pending) >= 4:  # bound the images held for writing
            self.pending[0].result()
        self.pending.append(self.pool.submit(fn, *args))

    def done(self) -> list[Any]:
        finished = []
        while self.pending and self.pending[0].done():
            finished.append(self.pending.popleft().result())
        return finished

    def finish(self) -> list[Any]:
        return [self.pending.popleft().result() for _ in range(len(self.pending))]

    def __exit__(self, *exc: Any) -> None:
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)


class Progress:
    """A rich bar on stderr with images/s (only when asked, e.g. when stderr is a terminal)."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total, self.bar = show, total, None

    def __enter__(self) -> "Progress":
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.started = time.perf_counter()
            self.bar = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[speed]:.1f} img/s"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("predict", total=self.total, speed=0.0)
        return self

    def advance(self, completed: int) -> None:
        if self.bar is not None:
            speed = completed / max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(self.task, completed=completed, speed=speed)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
