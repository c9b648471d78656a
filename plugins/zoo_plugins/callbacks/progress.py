"""The progress bar: one rich bar per epoch on stderr, and a summary line when it ends."""

from __future__ import annotations

import sys
import time

from zoo.engine.callbacks import Callback, TrainState
from zoo.engine.progress import EpochBar


class ProgressBar(Callback):
    def __init__(self) -> None:
        self.bar: EpochBar | None = None
        self.loss = float("nan")
        self.started = time.perf_counter()

    def on_step_end(self, state: TrainState) -> None:
        if not state.is_main:
            return
        if self.bar is None or self.bar.epoch != state.epoch - 1:
            self._close()
            self.bar = EpochBar(True, state.epoch - 1, state.epochs, state.steps_per_epoch).__enter__()
            self.started, self.first = time.perf_counter(), state.step - 1
        if state.loss is not None:
            self.loss = state.loss
        images = (state.step - self.first) * state.config["batch_size"]
        self.bar.show_step(state.step, self.loss, images / max(time.perf_counter() - self.started, 1e-9))

    def on_epoch_end(self, state: TrainState) -> None:
        self._close()

    def on_validation_end(self, state: TrainState) -> None:
        if state.is_main and state.metrics is not None:
            EpochBar.summary(dict(state.metrics), state.epochs, state.config.get("monitor") or "")

    def on_train_end(self, state: TrainState) -> None:
        self._close()
        sys.stderr.flush()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
