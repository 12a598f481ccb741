"""The HTML report opens in headless Chromium and draws a real page: verdict colours, plots, not a blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.evaluators import evaluate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    hours = (40 + 0.3 * (age - 45) + rng.normal(0, 6, n)).round(1)
    sector = rng.choice(["private", "public", "self"], n, p=[0.6, 0.3, 0.1])
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-(age - 45) / 8)), "high", "low")
    return pd.DataFrame({"age": age, "hours": hours, "sector": sector, "label": label})


def screenshot(page: Path, png: Path, profile: Path) -> None:
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_report_screenshot_is_not_blank(tmp_path):
    image = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot; it comes with the 'app' extra")
    train = table(500, 1)
    report = evaluate(train, train, holdout=table(500, 2), target="label")  # a copy: the red "high risk" card
    page = report.to_html(tmp_path / "report.html")
    png = tmp_path / "shot.png"
    screenshot(page, png, tmp_path / "profile")
    pixels = np.asarray(image.open(png).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels.std() > 20, "the screenshot is (nearly) one colour"
    red = (np.abs(pixels - [198, 40, 40]).sum(-1) < 40).sum()
    assert red > 500, "the high-risk verdict should paint red on the first screen"
    plotted = (np.abs(pixels - [108, 147, 200]).sum(-1) < 40).sum()  # the real-rows blue at 75 % opacity on white
    assert plotted > 200, "the marginal plots (real rows in blue) should be drawn by the inlined plotly"
