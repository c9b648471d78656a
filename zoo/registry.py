"""The Registry: every architecture, encoder, loss and dataset the plugins declare, by name."""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

import pluggy

from zoo.errors import AmbiguousNameError, MissingPluginError, PluginError, UnknownNameError
from zoo.plugins import PluginInfo, make_plugin_manager, read_registry_config
from zoo.kinds import BY_PLURAL, KINDS
from zoo.specs import EncoderFamilySpec, Spec


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


def _unknown_hooks(pm: pluggy.PluginManager) -> dict[str, list[str]]:
    """Per plugin, hooks it implements that zoo does not define (a misspelling such as
    ``zoo_register_loss``), and ``zoo_*`` functions not marked ``@zoo.hookimpl``."""
    known = {kind.hook for kind in KINDS.values()}
    found: dict[str, list[str]] = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if name.startswith("zoo_") and getattr(caller, "spec", None) is None and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            for impl in caller.get_hookimpls():
                found.setdefault(impl.plugin_name, []).append(f"unknown hook {name}{hint}")
    for plugin in pm.get_plugins():
        implemented = {impl.function.__name__ for h in known for impl in getattr(pm.hook, h).get_hookimpls()
                       if impl.plugin is plugin}
        for attr in dir(plugin):
            if attr in known and attr not in implemented and callable(getattr(plugin, attr, None)):
                found.setdefault(pm.get_name(plugin), []).append(f"{attr} is not marked @zoo.hookimpl")
    return found


def _check_specs(hook: str, kind: str, specs: Any) -> list[Spec]:
    if not isinstance(specs, (list, tuple)):
        raise PluginError(f"{hook} returned {type(specs).__name__}, expected a list of specs")
    accepted = KINDS[kind].specs
    for spec in specs:
        if not isinstance(spec, accepted):
            what = f"{type(spec).__name__} {spec.name!r}" if isinstance(spec, Spec) else f"a {type(spec).__name__}"
            raise PluginError(f"{hook} returned {what}, expected {' or '.join(c.__name__ for c in accepted)}")
    return list(specs)


def _collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> tuple[list[Entry], list[PluginInfo]]:
    """Call every plugin's hooks one plugin at a time, so one that raises is dropped alone. A
    built-in plugin that raises is a bug in zoo: that raises."""
    by_name = {info.name: info for info in infos}
    for plugin in pm.get_plugins():  # registered in-process (tests, embedding apps)
        name = pm.get_name(plugin)
        if name not in by_name:
            module = getattr(plugin, "__name__", type(plugin).__name__)
            by_name[name] = PluginInfo(name, module, "", "", False)
    entries: dict[str, list[Entry]] = {}
    hooks: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for kind in KINDS.values():
        for impl in getattr(pm.hook, kind.hook).get_hookimpls():
            plugin = impl.plugin_name
            hooks.setdefault(plugin, []).append(kind.hook)
            if plugin in failed:
                continue
            try:
                specs = _check_specs(kind.hook, kind.name, impl.function())
            except Exception as exc:  # a plugin's bug: report it in `zoo plugins`, keep the rest
                if plugin in by_name and by_name[plugin].builtin:
                    raise PluginError(f"built-in plugin {plugin!r} failed in {kind.hook}: {exc}") from exc
                failed[plugin] = f"{kind.hook}: {type(exc).__name__}: {exc}"
                continue
            entries.setdefault(plugin, []).extend(Entry(kind.name, s.name, plugin, s) for s in specs)
    warnings = _unknown_hooks(pm)
    result = [e for plugin, es in entries.items() if plugin not in failed for e in es]
    infos_out = []
    for name, info in by_name.items():
        info = replace(info, hooks=tuple(hooks.get(name, ())))
        if name in failed:
            info = info.failed(failed[name])
        elif name in warnings:
            info = info.warned("; ".join(warnings[name]))
        infos_out.append(info)
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
        unknown = set(aliases or {}) - set(BY_PLURAL)
        if unknown:
            raise PluginError(f"registry.toml: unknown alias table {sorted(unknown)[0]!r} (use {', '.join(BY_PLURAL)})")
        self._aliases = {BY_PLURAL[plural].name: dict(table) for plural, table in (aliases or {}).items()}
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
        members = [f for f in self.families(kind) if plugin in ("", f.plugin) and base in f.spec.members()]
        if len(members) == 1:
            return replace(members[0], name=base, member=base)
        if len(members) > 1:
            picks = " or ".join(f"'{f.plugin}:{base}'" for f in members)
            raise AmbiguousNameError(f"{kind} {base!r} is in the families of plugins "
                                     f"{' and '.join(repr(f.plugin) for f in members)}; pick one with {picks}")
        if plugin and self.plugin_info(plugin) is None:
            raise MissingPluginError(f"{kind} {name!r}: plugin {plugin!r} is not installed (see `zoo plugins`)",
                                     plugin)
        hint = ""
        if self.families(kind):
            fams = ", ".join(f.plugin for f in self.families(kind))
            hint = f" (nor a member of {fams}: `zoo {KINDS[kind].command} --all`)"
        choices = [e.name for e in self.entries(kind)] + list(self._aliases.get(kind, {}))
        raise UnknownNameError(kind, name, choices, hint)

    def alternatives(self, entry: Entry) -> list[str]:
        """Other implementations of ``entry``'s name (``timm:resnet34`` beside the built-in resnet34),
        qualified, as a bare name does not reach them."""
        same = [e.qualified for e in self._entries[entry.kind] if not isinstance(e.spec, EncoderFamilySpec)
                and e.name == entry.name and e.qualified != entry.qualified]
        same += [f"{f.plugin}:{entry.name}" for f in self.families(entry.kind)
                 if f.plugin != entry.plugin and entry.name in f.spec.members()]
        return same

    def require(self, kind: str, name: str, provenance: dict[str, Any] | None = None) -> Entry:
        """:meth:`get` for a name a run or weights file recorded: a plugin that is not installed is
        named with the distribution and version ``provenance`` says provided it."""
        try:
            return self.get(kind, name)
        except MissingPluginError as exc:
            record = (provenance or {}).get(exc.plugin) or {}
            dist, version = record.get("distribution"), record.get("version")
            if not dist:
                raise
            pin = f"{dist}=={version}" if version else dist
            raise MissingPluginError(f"{kind} {name!r} comes from plugin {exc.plugin!r} ({dist} {version} when it was "
                                     f"saved), which is not installed here; install it: pip install '{pin}'",
                                     exc.plugin) from None

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

    def provenance(self, plugin: str) -> dict[str, str]:
        """What a run or weights file records of a plugin, to name it if it is ever missing."""
        info = self.plugin_info(plugin)
        return {"plugin": plugin, "distribution": info.distribution if info else "",
                "version": info.version if info else ""}


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
