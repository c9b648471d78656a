"""Training callbacks (public API): the engine's loop knows steps and events; loggers, progress
bars, early stopping and anything a plugin adds listen to them.

Events, in order: ``on_train_start`` (after a resume has restored everything), then per step
``on_step_end``, per epoch ``on_epoch_end`` (training done), ``on_validation_end`` (``state.metrics``
is the epoch's row), ``on_checkpoint_saved`` (the resume state and its derived files are on disk),
and ``on_train_end`` (however training ended). Each receives a :class:`TrainState`, a read-only view.

``state.loss`` is the mean training loss over the last logging interval (``--log-every`` steps) on the
steps where it was read, and None on the others: reading it every step would stall a GPU.

A callback that raises is reported once by name and disabled; training goes on. Its
``state_dict()`` (JSON values) is saved in the checkpoint and handed back by ``load_state_dict`` on
resume.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

EVENTS = ("on_train_start", "on_step_end", "on_epoch_end", "on_validation_end", "on_checkpoint_saved",
          "on_train_end")


class Callback:
    """Override the events you need; every one is a no-op here."""

    def on_train_start(self, state: "TrainState") -> None: ...
    def on_step_end(self, state: "TrainState") -> None: ...
    def on_epoch_end(self, state: "TrainState") -> None: ...
    def on_validation_end(self, state: "TrainState") -> None: ...
    def on_checkpoint_saved(self, state: "TrainState") -> None: ...
    def on_train_end(self, state: "TrainState") -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class Control:
    """What callbacks may ask of the engine."""

    stop_reason: str | None = None


@dataclass(frozen=True)
class TrainState:
    """A read-only view of training for callbacks. ``epoch`` is 1-based (the epoch being trained or
    just finished); ``step`` counts the batches done in it; ``global_step`` the optimizer steps
    since the run began."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    lr: float
    run_dir: Path
    model: Any  # the plain nn.Module (not DDP or compiled); do not modify it
    history: tuple[Mapping[str, Any], ...]
    config: Mapping[str, Any]
    is_main: bool = True
    loss: float | None = None
    metrics: Mapping[str, Any] | None = None
    control: Control = field(default_factory=Control, repr=False)

    def request_stop(self, reason: str) -> None:
        """Stop training after the current epoch is saved (early stopping, a time budget...)."""
        self.control.stop_reason = self.control.stop_reason or reason

    @staticmethod
    def frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
        return MappingProxyType(dict(values))


class CallbackError(UserWarning):
    """A callback raised; it was disabled."""


class Callbacks:
    """Named callbacks, dispatched in order; one that raises is disabled with a single warning."""

    def __init__(self, named: dict[str, Callback]) -> None:
        self.named = dict(named)

    def __call__(self, event: str, state: TrainState) -> None:
        for name, callback in list(self.named.items()):
            try:
                getattr(callback, event)(state)
            except Exception as exc:  # noqa: BLE001 - a logger's bug must not end training
                del self.named[name]
                warnings.warn(f"callback {name!r} raised in {event}: {type(exc).__name__}: {exc}; it is disabled "
                              "for the rest of this run", CallbackError, stacklevel=2)

    def state_dict(self) -> dict[str, Any]:
        return {name: cb.state_dict() for name, cb in self.named.items()}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for name, state in states.items():
            if name in self.named and state:
                self.named[name].load_state_dict(state)


class EarlyStopping(Callback):
    """``--patience N``: stop when the monitored metric has not improved by more than ``min_delta`` for
    N validations. A function of the history alone, so a resumed run counts exactly as before."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.key, _, mode = monitor.partition(":")
        self.sign = -1.0 if mode == "min" else 1.0
        self.patience, self.min_delta = patience, min_delta

    def stale_validations(self, history: tuple[Mapping[str, Any], ...] | list) -> int:
        best, stale = None, 0
        for row in history:
            value = row.get(self.key)
            if value is None:  # an epoch without validation (--val-every)
                continue
            score = self.sign * float(value)
            if best is None or score > best + self.min_delta:
                best, stale = score, 0
            else:
                stale += 1
        return stale

    def on_validation_end(self, state: TrainState) -> None:
        stale = self.stale_validations(state.history)
        if stale >= self.patience:
            state.request_stop(f"early stopping: {self.key} has not improved by more than {self.min_delta} in "
                               f"{stale} validations (--patience {self.patience})")
