"""Routing ``-o key=value`` options to the components that declare them."""

from __future__ import annotations

from typing import Any, Mapping

from zoo.errors import OptionError
from zoo.specs import Spec


def route_options(options: Mapping[str, Any], targets: Mapping[str, Spec | None]) -> dict[str, dict[str, Any]]:
    """Split ``options`` between ``targets`` (prefix -> spec, e.g. ``{"model": ..., "encoder": ...}``).

    ``prefix.key`` goes to that target; a bare ``key`` goes to every target that declares it, and is
    an error naming the valid keys when none does.
    """
    routed: dict[str, dict[str, Any]] = {prefix: {} for prefix in targets}
    for key, value in options.items():
        prefix, dot, bare = key.partition(".")
        if dot:
            if prefix not in targets:
                raise OptionError(f"option {key!r}: unknown prefix {prefix!r} (use {', '.join(targets)})")
            spec = targets[prefix]
            if spec is None or spec.option(bare) is None:
                raise OptionError(f"option {key!r}: {prefix} has no option {bare!r}"
                                  + (f" (valid: {', '.join(o.name for o in spec.options)})" if spec else ""))
            routed[prefix][bare] = value
            continue
        owners = [p for p, spec in targets.items() if spec is not None and spec.option(key) is not None]
        if not owners:
            valid = sorted({f"{o.name}" for s in targets.values() if s for o in s.options})
            raise OptionError(f"unknown option {key!r}; valid: {', '.join(valid)}")
        for owner in owners:
            routed[owner][key] = value
    return routed
