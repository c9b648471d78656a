"""Ctrl-C and SIGTERM during training.

The first signal only sets a flag; the loop honours it at the next step boundary, before the
forward pass, and saves a state that resumes exactly. A second signal raises :class:`HardStop`
wherever the process is (even inside ``optimizer.step()``); nothing is written after it, so the
last complete save stays the state to resume from.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class HardStop(KeyboardInterrupt):
    """A second interrupt: stop at once, write nothing."""


class StopFlag:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None  # the signal's name once one arrived

    @contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only; a library caller keeps its own handling
            return

        def handler(signum, frame):  # noqa: ANN001
            if self.requested:
                raise HardStop
            self.requested = signal.Signals(signum).name

        previous = {sig: signal.signal(sig, handler) for sig in self.SIGNALS}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
