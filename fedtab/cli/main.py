"""The `fedtab` command: one module per subcommand, errors turned into one line and an exit code."""

from __future__ import annotations

import os
import re
import sys

import typer
from rich.console import Console
from rich.markup import escape

from fedtab.errors import FedtabError

app = typer.Typer(
    name="fedtab",
    help="Federated, differentially private tabular synthetic data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Federated, differentially private tabular synthetic data."""


def _register_commands() -> None:
    from fedtab.cli import app as app_command, deploy, evaluate, synthesize

    synthesize.register(app)
    app_command.register(app)
    deploy.register(app)
    evaluate.register(app)


def one_line(error: BaseException) -> str:
    """A multi-line message (a heading and a list of problems) as one line: 'heading: a; b'."""
    text = re.sub(r":\s*\n\s*-?\s*", ": ", str(error))
    return re.sub(r"\s*\n\s*-?\s*", "; ", text).strip()


def run() -> None:
    """Console entry point: a FedtabError prints one line and exits with its class's code, never a traceback."""
    _register_commands()
    try:
        app(standalone_mode=False)
    except FedtabError as error:
        _err.print(f"[bold red]error:[/] {escape(one_line(error))}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        _err.print("[bold red]interrupted[/]")
        sys.exit(130)
    except (typer.Exit, typer.Abort) as stop:
        sys.exit(getattr(stop, "exit_code", 1))
    except Exception as error:  # click usage errors and anything unexpected: one line, not a traceback
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if os.environ.get("FEDTAB_DEBUG"):
            raise
        _err.print(f"[bold red]internal error:[/] {type(error).__name__}: {escape(one_line(error))} (rerun with FEDTAB_DEBUG=1 for the traceback)")
        sys.exit(70)


if __name__ == "__main__":
    run()
