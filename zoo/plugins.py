"""Building the plugin manager: built-ins from registry.toml, third-party packages from entry points.

A third-party plugin that fails to import is recorded with its error and skipped; built-ins are part
of zoo, so their failure is a bug and raises.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import pluggy

from zoo import hookspecs

ENTRY_POINT_GROUP = "zoo"


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as `zoo plugins` shows it."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...] = ()
    error: str | None = None

    warning: str | None = None

    @property
    def status(self) -> str:
        return "error" if self.error else "warning" if self.warning else "ok"

    def failed(self, error: BaseException | str) -> "PluginInfo":
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return replace(self, error=" ".join(text.split()))  # one line, whatever the exception said

    def warned(self, text: str) -> "PluginInfo":
        return replace(self, warning=" ".join(text.split()))


@lru_cache(maxsize=1)
def read_registry_config() -> dict[str, Any]:
    """The parsed registry.toml shipped with zoo (built-ins, aliases, defaults)."""
    with resources.files("zoo").joinpath("registry.toml").open("rb") as fh:
        return tomllib.load(fh)


def zoo_version() -> str:
    try:
        return metadata.version("zoo")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in {"", "0", "false", "no"}


def selected_entry_points() -> tuple[list[metadata.EntryPoint], list[str]]:
    """Entry points to load after the two env variables, and names asked for but not installed.

    ``ZOO_LOAD_PLUGINS=a,b`` loads exactly those (an empty value loads none);
    otherwise ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1`` loads none; otherwise all of them load.
    """
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the same distribution seen twice on sys.path
    wanted = os.environ.get("ZOO_LOAD_PLUGINS")
    if wanted is not None:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        return [found[n] for n in names if n in found], [n for n in names if n not in found]
    if _env_flag("ZOO_DISABLE_PLUGIN_AUTOLOAD"):
        return [], []
    return list(found.values()), []


def _not_installed(name: str) -> str:
    """Why a ZOO_LOAD_PLUGINS name loads nothing; a distribution's name gets its entry points' names."""
    message = "named in ZOO_LOAD_PLUGINS but not installed"
    by_dist: dict[str, list[str]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            by_dist.setdefault(dist.name.lower().replace("_", "-"), []).append(ep.name)
    names = by_dist.get(name.lower().replace("_", "-"))
    if names:
        message += f" (it is a distribution; ZOO_LOAD_PLUGINS takes entry-point names: {', '.join(sorted(names))})"
    return message


def make_plugin_manager(
    config: dict[str, Any] | None = None, *, entry_points: bool = True
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    config = read_registry_config() if config is None else config
    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    version = zoo_version()
    for name, module_name in config.get("builtins", {}).items():
        pm.register(importlib.import_module(module_name), name=name)
        infos.append(PluginInfo(name, module_name, "zoo", version, builtin=True))
    if not entry_points:
        return pm, infos
    eps, missing = selected_entry_points()
    for name in missing:
        infos.append(PluginInfo(name, "", "", "", False, error=_not_installed(name)))
    for ep in eps:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, ep.value, dist.name if dist else "", dist.version if dist else "", False)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # any fault in someone else's package must not stop zoo
            info = info.failed(exc)
        infos.append(info)
    return pm, infos
