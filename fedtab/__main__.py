"""``python -m fedtab``: the same command as ``fedtab``."""

from fedtab.cli.main import run

run()
