"""The built wheel carries every folder under the fedtab namespace and imports from outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    return next(out.glob("fedtab-*.whl"))


def test_wheel_holds_the_namespaced_folders_and_the_demo(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("fedtab/__init__.py", "fedtab/connectors/__init__.py", "fedtab/transformers/plan.py",
                     "fedtab/evaluators/__init__.py", "fedtab/app/streamlit_app.py",
                     "fedtab/federation/apps.py", "fedtab/data/demo/clinic_north.parquet"):
        assert expected in names, expected
    assert not any(n.startswith(("transformers/", "connectors/", "evaluators/", "app/")) for n in names)


def test_wheel_imports_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    code = ("import fedtab, fedtab.connectors, fedtab.transformers, fedtab.evaluators, fedtab.demo;"
            "assert fedtab.__file__.startswith(%r), fedtab.__file__;"
            "assert all(p.exists() for p in fedtab.demo.demo_parties().values()); print('ok')") % str(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
