"""Crash-safe file writes: a file is either its old complete self or its new complete self.

Each write goes to a temporary file in the same directory, is flushed and fsynced, gets the mode
the umask gives ordinary files, replaces the target with ``os.replace`` and the directory is
fsynced. Any failure (a full disk, Ctrl-C) removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from zoo.faults import reached

_UMASK: int | None = None


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (0644 for umask 022)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Run ``write(tmp_path)`` (any library's save-to-path) and move the result onto ``path``."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, file_mode())
        reached(f"write:{path.name}:complete")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    reached(f"write:{path.name}:replaced")
    fsync_dir(path.parent)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return save_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: str | Path, what: str = "file") -> Any:
    """``json.loads`` of a file, with errors that name the file."""
    from zoo.errors import ZooError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ZooError(f"{path}: not a valid JSON {what} ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ZooError(f"{path}: not a valid JSON {what} (not UTF-8 text)") from None
