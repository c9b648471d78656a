"""Options and output helpers shared by the command groups."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Pattern = Annotated[Optional[str], typer.Argument(help="fnmatch pattern, e.g. 'resnet*'.")]
Overrides = Annotated[
    Optional[list[str]],
    typer.Option("-o", "--option", help="key=value for an architecture, encoder, loss or dataset option "
                 "(prefix model./encoder./loss./dataset. to target one). Repeatable."),
]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")]


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a missing ``=`` is a usage error."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="-o")
        result[key.strip()] = value
    return result


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def stdout_console():
    from rich.console import Console

    return Console(soft_wrap=False)


def stderr_console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)
