"""Routing ``-o key=value`` options to the components that declare them."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from zoo.errors import OptionError
from zoo.specs import Spec


def _declares(specs: Spec | Sequence[Spec] | None, key: str) -> bool:
    return any(s.option(key) is not None for s in _as_list(specs))


def _as_list(specs: Spec | Sequence[Spec] | None) -> list[Spec]:
    return [] if specs is None else [specs] if isinstance(specs, Spec) else list(specs)


def route_options(
    options: Mapping[str, Any], targets: Mapping[str, Spec | Sequence[Spec] | None]
) -> dict[str, dict[str, Any]]:
    """Split ``options`` between ``targets`` (prefix -> spec(s), e.g. ``{"model": ..., "encoder": ...}``).

    ``prefix.key`` goes to that target; a bare ``key`` goes to every target that declares it, and is
    an error naming the valid keys when none does.
    """
    routed: dict[str, dict[str, Any]] = {prefix: {} for prefix in targets}
    for key, value in options.items():
        prefix, dot, bare = key.partition(".")
        if dot:
            if prefix not in targets:
                raise OptionError(f"option {key!r}: unknown prefix {prefix!r} (use {', '.join(targets)})")
            if not _declares(targets[prefix], bare):
                valid = sorted({o.name for s in _as_list(targets[prefix]) for o in s.options})
                raise OptionError(f"option {key!r}: {prefix} has no option {bare!r} (valid: {', '.join(valid) or 'none'})")
            routed[prefix][bare] = value
            continue
        owners = [p for p, specs in targets.items() if _declares(specs, key)]
        if not owners:
            valid = sorted({o.name for specs in targets.values() for s in _as_list(specs) for o in s.options})
            raise OptionError(f"unknown option {key!r}; valid: {', '.join(valid)}")
        for owner in owners:
            routed[owner][key] = value
    return routed
