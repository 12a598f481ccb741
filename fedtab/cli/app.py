"""`fedtab app`: start the Streamlit app for data stewards."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from typing import Annotated

import typer

from fedtab.errors import ConfigError


def app_command(
    port: Annotated[int, typer.Option(help="Port to serve the app on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 serves every network this machine is on.")] = "127.0.0.1",
) -> None:
    """Open fedtab's Streamlit app (parties, schema, run with live progress, downloads); this machine only unless --address."""
    try:
        import streamlit  # noqa: F401
    except ImportError as error:
        raise ConfigError("The app needs streamlit: pip install 'fedtab[app]'.") from error
    script = resources.files("fedtab.app") / "streamlit_app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.address", address,
               "--server.headless", "true"]
    raise typer.Exit(subprocess.call(command))


def register(app: typer.Typer) -> None:
    app.command("app")(app_command)
