"""Metric files rebuilt from the run's history, so a resume (or a kill between saves) never leaves
them out of step with the checkpoint."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from zoo.atomic import write_text
from zoo.engine.callbacks import Callback, TrainState


class JsonlLogger(Callback):
    """``metrics.jsonl``: the history, one JSON row per epoch. ``steps.jsonl``: one line per step with
    its learning rate, and the interval's mean loss where it was read; lines past the checkpoint are
    dropped on resume (those steps run again)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_train_start(self, state: TrainState) -> None:
        path = state.run_dir / "steps.jsonl"
        if not state.is_main or not state.history and not path.exists():  # nothing saved yet: write nothing
            return
        self._write_metrics(state)
        kept = []
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["global_step"] <= state.global_step:
                        kept.append(line + "\n")
                except (ValueError, KeyError, TypeError):
                    break  # a torn last line from a kill
        write_text(path, "".join(kept))

    def on_step_end(self, state: TrainState) -> None:
        if state.is_main:
            row: dict[str, Any] = {"epoch": state.epoch, "step": state.step, "global_step": state.global_step,
                                   "lr": state.lr}
            if state.loss is not None:
                row["loss"] = state.loss
            self.lines.append(json.dumps(row) + "\n")
            if state.loss is not None:
                self._flush(state)

    def on_checkpoint_saved(self, state: TrainState) -> None:
        if state.is_main:
            self._flush(state)
            self._write_metrics(state)

    def on_train_end(self, state: TrainState) -> None:
        if state.is_main:
            self._flush(state)

    def _flush(self, state: TrainState) -> None:
        if self.lines:
            with open(state.run_dir / "steps.jsonl", "a") as fh:
                fh.writelines(self.lines)
            self.lines.clear()

    @staticmethod
    def _write_metrics(state: TrainState) -> None:
        write_text(state.run_dir / "metrics.jsonl", "".join(json.dumps(dict(r)) + "\n" for r in state.history))


class CsvLogger(Callback):
    """``metrics.csv``: one row per epoch; per-class lists and matrices are left to metrics.jsonl."""

    def on_train_start(self, state: TrainState) -> None:
        if state.history:  # a resume: rewrite what a kill may have left behind the checkpoint
            self.on_checkpoint_saved(state)

    def on_checkpoint_saved(self, state: TrainState) -> None:
        if not state.is_main:
            return
        rows = [{k: v for k, v in r.items() if isinstance(v, (int, float, str))} for r in state.history]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(state.run_dir / "metrics.csv", text.getvalue())
