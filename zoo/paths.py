"""Where zoo keeps what it can rebuild (decoded datasets, name lists): ZOO_CACHE_DIR, else
$XDG_CACHE_HOME/zoo, else ~/.cache/zoo. No heavy imports: the CLI's listing uses it."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo"
