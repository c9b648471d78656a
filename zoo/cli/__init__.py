"""The `zoo` command. Commands only parse and print; errors become one line here, at the edge."""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Annotated, Optional

import typer

from zoo.cli import listing, plugin, runs, sharing, training
from zoo.errors import ZooError

app = typer.Typer(
    name="zoo",
    help="A plugin-based model zoo for semantic segmentation.",
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
    """A plugin-based model zoo for semantic segmentation. Set ZOO_DEBUG=1 for tracebacks."""


listing.register(app)
training.register(app)
runs.register(app)
sharing.register(app)
plugin.register(app)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    label = "note" if category.__name__ == "RunNotice" else "warning"
    print(f"zoo: {label}: {' '.join(str(message).split())}", file=sys.stderr)


# typer bundles its own click; its usage-error class is reached through typer's public BadParameter
_ClickUsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _fail(message: str, code: int) -> None:
    print(f"zoo: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def _usage_message(exc: Exception) -> str:
    """click's message as one line, plus where to look: ``see 'zoo train --help'``."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "zoo"
    return f"{text[:1].lower()}{text[1:]}; see '{path} --help'"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Errors are mapped to one line on stderr here, and only here: usage errors exit
    2, zoo's own and the environment's (a full disk, a read-only folder) exit 1, Ctrl-C 130."""
    debug = os.environ.get("ZOO_DEBUG", "") not in {"", "0"}
    previous = warnings.showwarning
    if not debug:
        warnings.showwarning = _one_line_warning
    try:
        command = typer.main.get_command(app)
        code = command.main(args=argv, prog_name="zoo", standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except _ClickUsageError as exc:
        if debug:
            traceback.print_exc()
        _fail(_usage_message(exc), 2)
    except ZooError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as exc:  # the environment: name the path and the OS's reason
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 1)
    except Exception as exc:  # a bug in zoo or a plugin: still one line unless debugging
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set ZOO_DEBUG=1 for the traceback)", 1)
    finally:
        warnings.showwarning = previous
