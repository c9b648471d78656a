"""Recipes read from the TOML files beside this module."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def _read(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files(__package__).joinpath(f"{name}.toml").read_text())


def default() -> dict[str, Any]:
    return _read("default")


def report() -> dict[str, Any]:
    return _read("report")
