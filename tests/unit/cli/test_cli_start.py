"""The CLI starts without loading the model, federation or evaluation code (seconds of torch, Flower and
scikit-learn imports): ``fedtab --help`` and a command's own ``--help`` answer at once, and every command is listed."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "flwr", "sklearn", "sdmetrics", "sqlalchemy", "opacus")
PROBE = """
import sys
from fedtab.cli.main import run
sys.argv = ["fedtab", *sys.argv[1:]]
try:
    run()
except SystemExit:
    pass
print("loaded:", ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def start(*args: str) -> tuple[str, list[str]]:
    """The CLI's output for ``args`` in a fresh interpreter, and which heavy packages it imported."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                         check=True).stdout
    text, _, loaded = out.rpartition("loaded:")
    return text, [m for m in loaded.strip().split(",") if m]


@pytest.mark.parametrize("args", [("--help",), ("synthesize", "--help"), ("evaluate", "--help"), ("deploy", "--help")])
def test_help_loads_no_heavy_package(args: tuple[str, ...]) -> None:
    text, loaded = start(*args)
    assert "Usage" in text and loaded == []


def test_the_probe_sees_a_heavy_import() -> None:
    """Control: the same probe reports a heavy package once the code it runs imports one (the SQL reader's)."""
    code = PROBE.format(heavy=HEAVY).replace("from fedtab.cli.main import run", "import fedtab.connectors.sql\nfrom fedtab.cli.main import run")
    out = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, check=True).stdout
    assert out.rpartition("loaded:")[2].split() == ["sqlalchemy"]


def test_help_lists_every_command() -> None:
    text, _ = start("--help")
    assert all(command in text for command in ("synthesize", "app", "deploy", "evaluate"))
