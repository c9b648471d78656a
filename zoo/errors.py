"""Errors zoo raises on purpose. The CLI prints them as one line; anything else is a bug."""

from __future__ import annotations

import difflib
from typing import Iterable


class ZooError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 1


class UsageError(ZooError):
    exit_code = 2


class UnknownNameError(UsageError):
    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = "") -> None:
        choices = sorted(set(choices))
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        if close:
            tail = f"did you mean {', '.join(close)}?"
        elif len(choices) <= 12:
            tail = f"choose one of: {', '.join(choices)}" if choices else "none is registered"
        else:
            from zoo.kinds import KINDS

            tail = f"see `zoo {KINDS[kind].command}`" if kind in KINDS else f"{len(choices)} to choose from"
        super().__init__(f"unknown {kind} {name!r}; {tail}{hint}")
        self.kind, self.name, self.close = kind, name, close


class AmbiguousNameError(UsageError):
    pass


class OptionError(UsageError):
    pass


class LossSpecError(UsageError):
    pass


class IncompatibleEncoder(UsageError):
    """An architecture cannot be built on an encoder (too few stages, no dilation, ...). Plugins raise
    it from their factory with a message naming both and what is missing; the CLI shows it as one line."""


class PluginError(ZooError):
    pass


class MissingPluginError(ZooError):
    """A run or weights file names a plugin that is not installed here."""

    def __init__(self, message: str, plugin: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class DataError(ZooError):
    pass


class WeightsError(ZooError):
    pass


class TrainingError(ZooError):
    pass


class ExportError(ZooError):
    """An exported graph does not compute what the model computes."""


class RunLockedError(ZooError):
    """Another live process owns the run directory."""


class Interrupted(ZooError):
    """Ctrl-C or SIGTERM during training; the message says what was saved and how to go on."""

    exit_code = 130


class RunNotice(UserWarning):
    """Something the user should know about a run (a restart in place, a re-initialized head);
    the CLI prints it as one ``zoo: note:`` line."""
