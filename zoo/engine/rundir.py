"""A run directory: what it holds, who owns it, and whether a command may start, restart or resume it.

``checkpoint.safetensors`` is the only source of truth for progress; ``metrics.jsonl``, ``last``
and the pictures are derived from it and rewritten when a run resumes. ``config.json`` is written
before the first step, so a run killed before its first save restarts in place.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path
from typing import Any

from zoo.atomic import read_json, write_json
from zoo.engine.checkpoint import CHECKPOINT, LEGACY_META, has_checkpoint
from zoo.errors import RunLockedError, UsageError, ZooError

CONFIG = "config.json"
LOCK = ".lock"
# Everything zoo writes in a run directory; a restart in place may remove these, nothing else.
RUN_FILES = (CONFIG, "model.safetensors", "last.safetensors", CHECKPOINT, LEGACY_META, "metrics.jsonl",
             "curves.png", "samples.png", LOCK, "model_ema.safetensors", "confusion.json", "confusion.png",
             "steps.jsonl", "metrics.csv", "tensorboard", "README.md")  # the last three: the built-in loggers'



class RunDirectory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    # ---- what is there --------------------------------------------------------------------
    @property
    def saved(self) -> bool:
        return has_checkpoint(self.path)

    def read_config(self) -> dict[str, Any]:
        file = self.path / CONFIG
        if not file.is_file():
            raise UsageError(f"--resume {self.path}: no {CONFIG} there (not a zoo run directory)")
        record = read_json(file, "run config")
        if not isinstance(record, dict) or not isinstance(record.get("run"), dict):
            raise ZooError(f"{file}: not a zoo run config (no 'run' table)")
        return record

    def check_new_run(self) -> bool:
        """May a new run start here? True when it restarts a run that never saved (in place).
        A run with saved state must be resumed; a folder of other files is refused."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path}: exists and is not a directory")
        if not path.is_dir():
            return False
        if self.saved:
            raise UsageError(f"{path} already holds a run with saved state; continue it with: zoo train --resume {path}"
                             " (or pick another --out)")
        ours = set(RUN_FILES) if (path / CONFIG).is_file() else set(RUN_FILES) - {"README.md"}  # not a user's README
        others = sorted(p.name for p in path.iterdir() if p.name not in ours and not p.name.startswith("."))
        if others:
            raise UsageError(f"--out {path}: the folder holds other files ({others[0]}, ...) and is not a zoo run; "
                             "pick an empty or new folder")
        return (path / CONFIG).is_file()

    # ---- ownership ------------------------------------------------------------------------
    def create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"--out {self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)

    def acquire(self) -> None:
        """Own the directory for this process's lifetime (an ``fcntl`` lock on ``.lock``, released by
        the kernel when the process dies, so a dead owner's lock is simply taken over)."""
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").split() or ["?", "?"]
            os.close(fd)
            pid, host = (owner + ["?"])[:2]
            raise RunLockedError(f"{self.path} is in use by another zoo process (pid {pid} on {host}); "
                                 "wait for it to end or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {' '.join(sys.argv[:3])}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def clear_unsaved(self) -> None:
        """Before a restart in place: remove what a run that never saved may have left."""
        import shutil

        for name in RUN_FILES:
            if name not in (CONFIG, LOCK):
                target = self.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)

    def write_config(self, record: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, record)
