"""zoo: a plugin-based model zoo for binary, multiclass and multilabel semantic segmentation.

``import zoo`` stays cheap (no torch): the functions that build things import it when called.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from zoo.hookspecs import hookimpl
from zoo.plugins import zoo_version
from zoo.registry import Registry, build_registry
from zoo.tasks import Task

if TYPE_CHECKING:  # pragma: no cover
    from zoo.api import create_dataset, create_loss, create_model, load_model, save_model  # noqa: F401
    from zoo.engine.train import train  # noqa: F401
    from zoo.inference import Prediction, Predictor  # noqa: F401

__version__ = zoo_version()

__all__ = [
    "hookimpl", "Registry", "build_registry", "default_registry", "Task",
    "list_models", "list_encoders", "list_losses", "list_datasets",
    "create_model", "create_loss", "create_dataset", "load_model", "save_model", "train", "evaluate",
    "Predictor", "Prediction",
]


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry the API uses when none is passed: built once, on first use, not at import.
    Tests and embedding apps pass their own (``build_registry(pm)``) instead."""
    return build_registry()


def registry_or_default(registry: Registry | None = None) -> Registry:
    return registry if registry is not None else default_registry()


def _names(kind: str, pattern: str | None, registry: Registry | None, expand: bool = False) -> list[str]:
    return registry_or_default(registry).names(kind, pattern, expand_families=expand)


def list_models(pattern: str | None = None, registry: Registry | None = None) -> list[str]:
    return _names("architecture", pattern, registry)


def list_encoders(pattern: str | None = None, registry: Registry | None = None, *, all: bool = False) -> list[str]:
    """Encoder names; ``all=True`` adds every member of encoder families (every timm backbone; imports
    timm), as `zoo list-encoders --all`."""
    return _names("encoder", pattern, registry, all)


def list_losses(pattern: str | None = None, registry: Registry | None = None) -> list[str]:
    return _names("loss", pattern, registry)


def list_datasets(pattern: str | None = None, registry: Registry | None = None) -> list[str]:
    return _names("dataset", pattern, registry)


_LAZY = {
    "create_model": "zoo.api", "create_loss": "zoo.api", "create_dataset": "zoo.api",
    "load_model": "zoo.api", "save_model": "zoo.api",
    "train": "zoo.engine.train", "evaluate": "zoo.engine.evaluate",
    "Predictor": "zoo.inference", "Prediction": "zoo.inference",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
