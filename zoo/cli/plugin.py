"""`zoo plugin new`: scaffold a plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.errors import OptionError

plugin_app = typer.Typer(help="Write a new plugin package.", no_args_is_help=True, add_completion=False,
                         rich_markup_mode=None)


@plugin_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The plugin's name: its entry point, its registered name, "
                                             "and zoo_NAME as its module.")],
    kind: Annotated[str, typer.Option("--kind", help="architecture, encoder, loss or dataset.")] = "architecture",
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to create (default ./zoo-NAME).")] = None,
    summary: Annotated[str, typer.Option(help="One line shown by zoo list-* and in pyproject.")] = "",
) -> None:
    """Scaffold a plugin package (pyproject with the zoo entry point, the spec module, the factory
    module, a README and a test) that installs and passes its own test as generated."""
    from zoo.scaffold import KINDS, new_plugin

    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}", param_hint="--kind")
    try:
        directory = out or Path(f"zoo-{name.replace('_', '-')}")
        files = new_plugin(name, kind, directory, summary)
    except OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME" if "plugin name" in str(exc) else "--out") from None
    for path in files:
        print(path)
    print(f"next: pip install -e {directory} && pytest {directory / 'tests'}")


def register(app: typer.Typer) -> None:
    app.add_typer(plugin_app, name="plugin")
