"""The ``joulelens`` command: a thin Typer layer over the library, and its one error boundary.

Every way a command can fail ends here as a short message, never a Python traceback:

* usage errors (no command, unknown command or option, missing or bad value): the problem
  on the first line, then the usage line; exit code 2;
* joulelens errors: bad input (:class:`InputError`, an unknown run id) exits 2, a runtime
  failure (store, engine, meter, analysis) exits 1;
* foreign errors at the edge (a file that cannot be read, a server that does not answer):
  one line, exit 1;
* anything else is a bug: one line naming it and how to see the traceback (``--debug``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer

from joulelens import __version__
from joulelens.cli import advise, data, demo, diagnosis, measure, planning, predict, report, watch
from joulelens.errors import InputError, JoulelensError, RunNotFoundError

DEBUG_ENV = "JOULELENS_DEBUG"
USAGE_EXIT = 2
RUNTIME_EXIT = 1
INTERRUPTED_EXIT = 130

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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help=f"Show Python tracebacks of unexpected errors (or ${DEBUG_ENV}=1)."
    ),
) -> None:
    """joulelens: where do the joules go?"""


for module in (demo, data, measure, diagnosis, planning, predict, advise, report, watch):
    module.register(app)


def command() -> Any:
    """The click command tree behind ``app``, with flags shown without a type placeholder."""
    cmd = typer.main.get_command(app)
    _hide_flag_types(cmd)
    return cmd


def _hide_flag_types(cmd: Any) -> None:
    # Typer 0.29 prints "<bool>" beside every on/off flag in --help; a flag takes no value.
    from typer._click.core import Context

    help_option = cmd.get_help_option(Context(cmd))  # made (and cached) on first use
    for param in [*getattr(cmd, "params", ()), *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _hide_flag_types(sub)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``joulelens`` script."""
    sys.exit(run_cli(argv))


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    from typer._click import exceptions as click_exc

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: _first_positional(args)] or os.environ.get(DEBUG_ENV, "") not in (
        "",
        "0",
    )
    try:
        code = command().main(args, prog_name="joulelens", standalone_mode=False)
        return code if isinstance(code, int) else 0  # Typer returns 130 here on Ctrl-C
    except click_exc.NoArgsIsHelpError as exc:
        return _missing_command(exc)
    except click_exc.UsageError as exc:
        return _usage_error(exc, args)
    except click_exc.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _error("interrupted")
        return INTERRUPTED_EXIT
    except typer.Exit as exc:
        return exc.exit_code
    except JoulelensError as exc:
        _error(str(exc))
        return USAGE_EXIT if isinstance(exc, InputError | RunNotFoundError) else RUNTIME_EXIT
    except BrokenPipeError:  # `joulelens runs -f csv | head`: the reader left, nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit flush fails no more
        return RUNTIME_EXIT
    except Exception as exc:
        if debug:
            raise
        _error(_foreign_message(exc))
        return RUNTIME_EXIT


def _first_positional(args: list[str]) -> int:
    return next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))


def _error(message: str) -> None:
    from rich.markup import escape

    from joulelens.cli.common import err_console

    # Messages quote user input and install hints ("joulelens[ray]"): never markup.
    err_console.print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True
    )


def _plain(line: str) -> None:
    from joulelens.cli.common import err_console

    err_console.print(line, highlight=False, soft_wrap=True, markup=False)


def _missing_command(exc: Any) -> int:
    ctx = exc.ctx
    names = ctx.command.list_commands(ctx) if hasattr(ctx.command, "list_commands") else []
    _error(f"'{ctx.command_path}' needs a command, one of: {', '.join(names)}")
    _plain(f"Try '{ctx.command_path} COMMAND --help' for what each one takes.")
    text = ctx.get_help()  # Typer's Rich help prints itself to stdout and returns ""
    if text:
        typer.echo(text)
    return USAGE_EXIT


def _usage_error(exc: Any, args: list[str]) -> int:
    from typer._click import exceptions as click_exc

    message = exc.format_message().replace(": Value error, ", ": ")  # pydantic's prefix
    if isinstance(exc, click_exc.BadParameter) and not isinstance(exc, click_exc.MissingParameter):
        value = _given_value(exc.param, args)
        if value is not None and repr(value) not in message:
            message = f"{message} (got {value!r})"
    _error(message)
    if exc.ctx is not None:
        _plain(exc.ctx.get_usage())
        _plain(f"Try '{exc.ctx.command_path} --help' for help.")
    return USAGE_EXIT


def _given_value(param: Any, args: list[str]) -> str | None:
    """The value the user typed for ``param`` (the message Typer builds leaves it out)."""
    opts = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
    for i, arg in enumerate(args):
        for opt in opts:
            if not opt.startswith("-"):
                continue
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1 :]
    return None


def _foreign_message(exc: BaseException) -> str:
    """One line for an error no joulelens code turned into a message."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{exc.strerror}{f': {where}' if where else ''}"
    module = type(exc).__module__.split(".")[0]
    if module in ("httpx", "httpcore", "duckdb", "pyarrow", "yaml", "pydantic", "json"):
        return f"{module}: {type(exc).__name__}: {_first_line(exc)}"
    return (
        f"unexpected {type(exc).__name__}: {_first_line(exc)}. This is a bug in joulelens; "
        f"run 'joulelens --debug ...' (or set {DEBUG_ENV}=1) to see the traceback."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
