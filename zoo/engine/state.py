"""Where a training run stands: the progress saved in its checkpoint, and the metric that picks
its best epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.errors import UsageError
from zoo.tasks import Task


@dataclass
class Progress:
    """Where training stands; saved in the checkpoint. ``step`` counts finished steps of ``epoch``;
    ``monitor`` is the row key (``key`` or ``key:min``) that picks the best epoch."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    monitor: str = "valid_dice"
    callbacks: dict[str, Any] = field(default_factory=dict)  # each callback's state_dict()

    def _signed(self, value: Any) -> float:
        if value is None:  # not validated that epoch
            return float("-inf")
        return -float(value) if self.monitor.endswith(":min") else float(value)

    def _score(self, row: dict[str, Any]) -> float:
        """The row's monitored value, or its weights average's when that is better (``--ema``)."""
        key = self.monitor.partition(":")[0]
        return max(self._signed(row.get(key)), self._signed(row.get(f"ema_{key}")))

    def ema_is_better(self, row: dict[str, Any]) -> bool:
        key = self.monitor.partition(":")[0]
        return self._signed(row.get(f"ema_{key}")) > self._signed(row.get(key))

    def best(self) -> dict[str, Any] | None:
        return max(self.history, key=self._score, default=None)

    def end_epoch(self, row: dict[str, Any]) -> bool:
        """Record the finished epoch's row, start the next; True when the row is the best so far."""
        best = self.best()
        self.history.append(row)
        self.epoch, self.step, self.loss_sum, self.seen, self.seconds = self.epoch + 1, 0, 0.0, 0, 0.0
        return self._score(row) > float("-inf") and (best is None or self._score(row) > self._score(best))


MONITORS = {"binary": ("valid_dice", "valid_iou", "valid_dice_dataset", "valid_iou_dataset", "train_loss"),
            "other": ("valid_miou", "valid_mdice", "valid_pixel_accuracy", "train_loss")}


def resolve_monitor(given: str | None, task: Task) -> str:
    """``--monitor KEY[:min|max]``, checked against the keys this task's metrics rows have."""
    if not given:
        return task.default_monitor
    key, _, mode = given.partition(":")
    keys = MONITORS["binary" if task.kind == "binary" else "other"]
    if key not in keys or mode not in ("", "min", "max"):
        raise UsageError(f"--monitor {given}: choose one of {', '.join(keys)}, optionally with :min or :max")
    return given
