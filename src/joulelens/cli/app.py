"""The ``joulelens`` command: a thin Typer layer over the library."""

from __future__ import annotations

import sys

import typer

from joulelens import __version__
from joulelens.cli import data, demo, diagnosis, measure, planning, report, watch
from joulelens.errors import JoulelensError

app = typer.Typer(
    name="joulelens",
    help="Measure, explain and plan the time and energy of generative-AI inference.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"joulelens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    """joulelens: where do the joules go?"""


for module in (demo, data, measure, diagnosis, planning, report, watch):
    module.register(app)


def main() -> None:
    """Entry point: domain errors become one clean line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # Typer returns 130 here on Ctrl-C
        if isinstance(code, int) and code:
            sys.exit(code)
    except JoulelensError as exc:
        from joulelens.cli.common import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors come through here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
