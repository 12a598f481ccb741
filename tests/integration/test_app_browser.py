"""The app in a real browser: headless Chromium, driven by Playwright, along the credit-default upload path.

Three bank CSVs (300 rows of UCI's credit default, see tests/fixtures/credit_default/PROVENANCE.md)
are uploaded, one column's kind is changed in the schema table, DP is tried (evaluation refused, the
central way offered) and turned off, a two-round run shows its progress, the report's verdicts and
plots appear inside the app, and all four downloads arrive. A screenshot of each step is kept in
``$FEDTAB_ARTIFACTS/app`` (default ``build/test-artifacts/app``). Without chromium or Playwright the
test fails under CI (``CI=true``) and skips elsewhere, saying why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.app.browser import STEPS, Walk, serve, walk
from fedtab.schema import ColumnKind
from fedtab.synthesizer import FederatedSynthesizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "credit_default"
TARGET = "default_payment_next_month"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if p and Path(p).is_file()), None)


def browser_or_reason() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (make browser, or apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("FEDTAB_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "app"
    shutil.rmtree(folder, ignore_errors=True)
    print(f"\nscreenshots of the browser test: {folder}")
    return folder


def test_credit_default_upload_path_in_chromium(tmp_path, artifacts):
    reason = browser_or_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    parties = tuple(sorted(FIXTURE.glob("bank_*.csv")))
    steps = Walk(parties=parties, target=TARGET, kind=("EDUCATION", "numerical"), rounds=2, epochs=1.0)
    app_tmp = tmp_path / "app-tmp"
    app_tmp.mkdir()
    with serve(app_tmp) as url:
        files = walk(url, steps, artifacts, tmp_path / "downloads", chromium=CHROMIUM)
        assert len(list(app_tmp.glob("fedtab-app-*"))) == 1  # one folder for the session, however many reruns
    assert not list(app_tmp.glob("fedtab-app-*")), "the session's upload folder outlived the app"
    check_screenshots(artifacts)
    check_downloads(files)


def check_screenshots(folder: Path) -> None:
    from PIL import Image

    for step in STEPS:
        pixels = np.asarray(Image.open(folder / f"{step}.png").convert("L"), dtype=float)
        assert pixels.std() > 10, f"screenshot {step} is (nearly) one colour"


def check_downloads(files: dict[str, Path]) -> None:
    csv, parquet = pd.read_csv(files["synthetic.csv"]), pd.read_parquet(files["synthetic.parquet"])
    real = pd.concat([pd.read_csv(p) for p in sorted(FIXTURE.glob("bank_*.csv"))])
    assert list(csv.columns) == list(real.columns) == list(parquet.columns) and len(csv) == len(parquet) > 0
    assert set(csv["SEX"]) <= {1, 2} and set(csv[TARGET]) <= {0, 1}  # coded categories written as their codes
    state = FederatedSynthesizer.load(files["model.fedtab"]).state_
    assert state.plan.schema["EDUCATION"].kind is ColumnKind.NUMERICAL  # the kind changed in the browser
    assert state.plan.schema["PAY_0"].kind is ColumnKind.CATEGORICAL and state.config.rounds == 2
    assert sorted(state.parties) == ["bank_a", "bank_b", "bank_c"]
    page = files["report.html"].read_text()
    assert "Synthetic data evaluation" in page and f"target &#x27;{TARGET}&#x27;" in page
