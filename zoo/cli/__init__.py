"""The `zoo` command. Commands only parse and print; errors become one line here, at the edge."""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Annotated, Optional

import typer

from zoo.cli import listing, runs, training
from zoo.errors import ZooError

app = typer.Typer(
    name="zoo",
    help="A plugin-based model zoo for binary semantic segmentation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from zoo.plugins import zoo_version

        print(f"zoo {zoo_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """A plugin-based model zoo for binary semantic segmentation. Set ZOO_DEBUG=1 for tracebacks."""


listing.register(app)
training.register(app)
runs.register(app)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"zoo: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    debug = os.environ.get("ZOO_DEBUG", "") not in {"", "0"}
    if not debug:
        warnings.showwarning = _one_line_warning
    try:
        app(args=argv, prog_name="zoo")
    except ZooError as exc:
        if debug:
            traceback.print_exc()
        print(f"zoo: error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug in zoo or a plugin: still one line unless debugging
        if debug:
            raise
        print(f"zoo: internal error: {type(exc).__name__}: {exc} (set ZOO_DEBUG=1 for the traceback)",
              file=sys.stderr)
        raise SystemExit(1) from None
