"""The Registry: every architecture, encoder, loss and dataset the plugins declare, by name."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

import pluggy

from zoo.errors import AmbiguousNameError, PluginError, UnknownNameError
from zoo.hookspecs import HOOKS
from zoo.plugins import PluginInfo, make_plugin_manager, read_registry_config
from zoo.specs import KINDS, EncoderFamilySpec, Spec


@dataclass(frozen=True)
class Entry:
    """A registered name: the spec behind it, the plugin that declared it, and for a family member
    the member's own name (``spec.name`` is then the family's)."""

    kind: str
    name: str
    plugin: str
    spec: Spec
    member: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def summary(self) -> str:
        return f"{self.spec.summary} ({self.member})" if self.member else self.spec.summary


def natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _accepted(kind: str) -> tuple[type, ...]:
    return (KINDS[kind], EncoderFamilySpec) if kind == "encoder" else (KINDS[kind],)


def _collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> tuple[list[Entry], list[PluginInfo]]:
    """Call every plugin's hooks one plugin at a time, so one that raises is dropped alone."""
    by_name = {info.name: info for info in infos}
    for plugin in pm.get_plugins():  # registered in-process (tests, embedding apps)
        name = pm.get_name(plugin)
        if name not in by_name:
            module = getattr(plugin, "__name__", type(plugin).__name__)
            by_name[name] = PluginInfo(name, module, "", "", False)
    entries: dict[str, list[Entry]] = {}
    hooks: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for kind, hook_name in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            hooks.setdefault(plugin, []).append(hook_name)
            if plugin in failed:
                continue
            try:
                specs = impl.function()
                if not isinstance(specs, (list, tuple)):
                    raise PluginError(f"{hook_name} returned {type(specs).__name__}, expected a list of specs")
                for spec in specs:
                    if not isinstance(spec, _accepted(kind)):
                        raise PluginError(f"{hook_name} returned {spec!r}, expected {KINDS[kind].__name__}")
                entries.setdefault(plugin, []).extend(Entry(kind, s.name, plugin, s) for s in specs)
            except Exception as exc:  # a plugin's bug: report it in `zoo plugins`, keep the rest
                failed[plugin] = f"{hook_name}: {type(exc).__name__}: {exc}"
    result = [e for plugin, es in entries.items() if plugin not in failed for e in es]
    infos_out = []
    for name, info in by_name.items():
        info = replace(info, hooks=tuple(hooks.get(name, ())))
        infos_out.append(info.failed(failed[name]) if name in failed else info)
    return result, infos_out


class Registry:
    """Look-ups by kind and name. Build one with :func:`build_registry`."""

    def __init__(
        self,
        entries: Iterable[Entry],
        plugins: Iterable[PluginInfo] = (),
        aliases: dict[str, dict[str, str]] | None = None,
        defaults: dict[str, str] | None = None,
    ) -> None:
        self._entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        for entry in entries:
            self._entries[entry.kind].append(entry)
        self.plugins = list(plugins)
        plural = {"architectures": "architecture", "encoders": "encoder", "losses": "loss", "datasets": "dataset"}
        unknown = set(aliases or {}) - set(plural)
        if unknown:
            raise PluginError(f"registry.toml: unknown alias table {sorted(unknown)[0]!r} (use {', '.join(plural)})")
        self._aliases = {plural[kind]: dict(table) for kind, table in (aliases or {}).items()}
        self.defaults = dict(defaults or {})

    # ---- listing -----------------------------------------------------------------------------
    def entries(self, kind: str, pattern: str | None = None, *, expand_families: bool = False) -> list[Entry]:
        found = []
        for entry in self._entries[kind]:
            if isinstance(entry.spec, EncoderFamilySpec):
                if expand_families:
                    found.extend(replace(entry, name=m, member=m) for m in entry.spec.members())
                continue
            found.append(entry)
        if pattern:
            found = [e for e in found if fnmatch.fnmatchcase(e.name, pattern)
                     or fnmatch.fnmatchcase(e.qualified, pattern)]
        return sorted(found, key=lambda e: (natural_key(e.name), e.plugin))

    def families(self, kind: str = "encoder") -> list[Entry]:
        return [e for e in self._entries[kind] if isinstance(e.spec, EncoderFamilySpec)]

    def names(self, kind: str, pattern: str | None = None, *, expand_families: bool = False) -> list[str]:
        return list(dict.fromkeys(e.name for e in self.entries(kind, pattern, expand_families=expand_families)))

    # ---- look-up -----------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name`` (or ``plugin:name``, or an alias); one-line errors otherwise."""
        if kind not in self._entries:
            raise UnknownNameError("kind", kind, KINDS)
        plugin, _, base = name.rpartition(":")
        base = self._aliases.get(kind, {}).get(base, base)
        static = [e for e in self._entries[kind]
                  if not isinstance(e.spec, EncoderFamilySpec) and e.name == base and plugin in ("", e.plugin)]
        if len(static) == 1:
            return static[0]
        if len(static) > 1:
            who = " and ".join(f"{e.plugin!r}" for e in static)
            picks = " or ".join(f"'{e.qualified}'" for e in static)
            raise AmbiguousNameError(f"{kind} {base!r} is registered by plugins {who}; pick one with {picks}")
        for family in self.families(kind):
            if plugin in ("", family.plugin) and base in family.spec.members():
                return replace(family, name=base, member=base)
        hint = ""
        if self.families(kind):
            fams = ", ".join(f.plugin for f in self.families(kind))
            hint = f" (nor a member of {fams}: `zoo list-{kind}s --all`)"
        choices = [e.name for e in self.entries(kind)] + list(self._aliases.get(kind, {}))
        raise UnknownNameError(kind, name, choices, hint)

    def find(self, name: str) -> list[Entry]:
        """Every kind's entry for ``name``, for `zoo info` (a name may be, say, a model and an encoder)."""
        found = []
        for kind in KINDS:
            try:
                found.append(self.get(kind, name))
            except UnknownNameError:
                continue
        return found

    def all_names(self) -> list[str]:
        return [e.name for kind in KINDS for e in self.entries(kind)]

    def default(self, kind: str) -> str:
        return self.defaults[kind]

    def plugin_info(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)


def build_registry(
    pm: pluggy.PluginManager | None = None,
    plugins: list[PluginInfo] | None = None,
    config: dict[str, Any] | None = None,
) -> Registry:
    """A fresh Registry from ``pm`` (by default: built-ins plus installed entry-point plugins)."""
    config = read_registry_config() if config is None else config
    if pm is None:
        pm, plugins = make_plugin_manager(config)
    entries, infos = _collect(pm, list(plugins or []))
    return Registry(entries, infos, config.get("aliases", {}), config.get("defaults", {}))
