"""Drive the app in a real browser along the upload path, one screenshot per step.

One walkthrough for the browser test (a tiny credit-default fixture) and for
``benchmarks/app_walkthrough.py`` (the full table), so the two cannot drift. It starts the app the
way ``fedtab app`` does (``python -m fedtab app``) and drives it with Playwright's Python package
pointed at an installed Chromium (Debian's ``chromium``); the app itself never imports this module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEPS = ("1_parties", "2_schema", "3_privacy", "4_progress", "5_evaluation", "6_plots", "7_downloads")
DOWNLOADS = {"CSV": "synthetic.csv", "PARQUET": "synthetic.parquet", "model.fedtab": "model.fedtab", "report.html": "report.html"}
HEADER_PX, ROW_PX = 36, 35  # the data editor's header and row heights (Streamlit's defaults)
KIND_COLUMN = 1  # the schema grid's columns: column, kind, dtype, missing, note (streamlit_app.schema_table)


@dataclass(frozen=True)
class Walk:
    """What the steward does: which files, which kind to change, the run's size and the target."""

    parties: tuple[Path, ...]
    target: str
    kind: tuple[str, str]
    rounds: int = 2
    epochs: float = 1.0
    engine: str = "local"
    timeout_s: float = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(tmp: Path, *, ready_s: float = 90.0) -> Iterator[str]:
    """``python -m fedtab app`` on 127.0.0.1 and a free port, its temp folders under ``tmp``; yields the URL
    once Streamlit's health check answers, and stops the app (SIGTERM to its process group) afterwards."""
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = (tmp / "app.log").open("wb")
    app = subprocess.Popen([sys.executable, "-m", "fedtab", "app", "--port", str(port)], env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, app, ready_s, tmp / "app.log")
        yield url
    finally:
        _stop(app)
        log.close()


def _wait_healthy(url: str, app: subprocess.Popen, ready_s: float, log: Path) -> None:
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"`fedtab app` exited with {app.returncode} before serving; its log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"`fedtab app` did not answer {url}_stcore/health within {ready_s:.0f} s; its log:\n{log.read_text()[-3000:]}")


def _stop(app: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the group (``fedtab app`` and the Streamlit server it started), then wait until every member
    is gone, so the server has ended its sessions (and their temp folders); SIGKILL if it hangs."""
    try:
        os.killpg(app.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    app.wait()
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(app.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(app.pid, signal.SIGKILL)


def walk(url: str, steps: Walk, shots: Path, downloads: Path, *, chromium: str, shot: Any = None) -> dict[str, Path]:
    """The upload path in headless Chromium; a screenshot per step (``STEPS``) in ``shots``; returns the
    downloaded files by name. ``shot(page_or_element, path)`` may replace the plain screenshot (to shrink it)."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    take = shot or (lambda target, path: target.screenshot(path=str(path)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(steps.timeout_s * 1000)
            page.goto(url)
            try:
                _parties(page, steps, shots, take)
                _schema(page, steps, shots, take)
                _privacy(page, steps, shots, take)
                _run(page, steps, shots, take)
                _evaluation(page, shots, take)
                return _downloads(page, shots, downloads, take)
            except Exception:
                page.screenshot(path=str(shots / "failed.png"), full_page=True)
                raise
        finally:
            browser.close()


def _parties(page: Any, steps: Walk, shots: Path, take: Any) -> None:
    page.get_by_text("Upload one table per party").click()
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="one file per party")
    uploader.locator('input[type="file"]').set_input_files([str(p) for p in steps.parties])
    page.get_by_text("Schema, reconciled across parties").wait_for()
    for path in steps.parties:
        uploader.get_by_text(path.name).wait_for()
    page.get_by_role("heading", name="fedtab").first.scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[0]}.png")


def _schema(page: Any, steps: Walk, shots: Path, take: Any) -> None:
    """Pick the new kind of ``steps.kind[0]`` in the schema grid, again until the app confirms it.

    The grid draws on a canvas: a click on the row's name cell, ArrowRight to its kind cell, and the grid's
    accessible table (ids ``glide-cell-<col>-<row>``) must show that cell selected before Enter opens its
    editor, so a click that landed on another row is retried, never typed into; a rerun that closed the
    editor before the option was clicked is retried too."""
    column, kind = steps.kind
    grid = page.locator('[data-testid="stDataFrame"]').first
    row = int(grid.locator('td[aria-colindex="1"]').filter(has_text=column).first.get_attribute("id").rsplit("-", 1)[1])
    selected = grid.locator(f'#glide-cell-{KIND_COLUMN}-{row}[aria-selected="true"]')
    canvas = grid.locator('[data-testid="data-grid-canvas"]').first
    canvas.scroll_into_view_if_needed()
    option = page.get_by_role("option", name=kind, exact=True)

    def choose() -> None:
        canvas.click(force=True, position={"x": 10, "y": HEADER_PX + ROW_PX * row + ROW_PX // 2})
        page.keyboard.press("ArrowRight")
        selected.wait_for(state="attached", timeout=3000)
        page.keyboard.press("Enter")
        option.click(timeout=3000)

    _retry(page, choose, page.get_by_text(f"Kinds you set: {column} = {kind}"))
    page.get_by_text("Schema, reconciled across parties").scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[1]}.png")


def _privacy(page: Any, steps: Walk, shots: Path, take: Any) -> None:
    """Settings, then DP on: the app says federated evaluation is refused and offers the central way; DP off again."""
    _number(page, "Rounds", steps.rounds)
    _number(page, "Local epochs per round", steps.epochs)
    page.get_by_text("Advanced", exact=True).click()
    _select(page, "Engine", steps.engine)
    page.get_by_text("Privacy", exact=True).click()
    _settle(page)
    page.get_by_text("Record-level differential privacy").click()
    refusal = page.get_by_text("Federated evaluation is off under differential privacy")
    refusal.wait_for()
    page.get_by_text("Evaluate centrally on this machine after the run", exact=True).wait_for()
    page.set_viewport_size({"width": 1400, "height": 2000})  # the DP switch and the refusal further down, in one shot
    page.get_by_text("Privacy", exact=True).scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[2]}.png")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.get_by_text("Record-level differential privacy").click()
    refusal.wait_for(state="detached")
    _settle(page)


def _run(page: Any, steps: Walk, shots: Path, take: Any) -> None:
    page.get_by_text("Evaluate the result").click()
    _settle(page)
    _select(page, "Column to predict (utility)", steps.target)
    _settle(page)
    page.get_by_role("button", name="Run the federation").click()
    bar = page.locator('[data-testid="stProgress"]')
    bar.get_by_text("Training round").wait_for()
    bar.scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[3]}.png")


def _evaluation(page: Any, shots: Path, take: Any) -> None:
    """The verdicts table and the report's own page (iframe) with its plots drawn."""
    heading = page.get_by_role("heading", name="Evaluation", exact=True)
    heading.wait_for()
    report = page.frame_locator("iframe").first
    report.get_by_text("Synthetic data evaluation").wait_for()
    heading.scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[4]}.png")
    plots = report.get_by_text("Fidelity: columns one by one")
    plots.scroll_into_view_if_needed()
    report.locator(".js-plotly-plot .main-svg").first.wait_for()
    take(page, shots / f"{STEPS[5]}.png")


def _downloads(page: Any, shots: Path, folder: Path, take: Any) -> dict[str, Path]:
    files = {}
    buttons = page.locator('[data-testid="stDownloadButton"]')
    buttons.first.scroll_into_view_if_needed()
    take(page, shots / f"{STEPS[6]}.png")
    for label, name in DOWNLOADS.items():
        _settle(page)
        with page.expect_download() as download:
            buttons.get_by_role("button", name=f"Download {label}", exact=True).click()
        files[name] = folder / name
        download.value.save_as(files[name])
    return files


def _number(page: Any, label: str, value: float) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settle(page)


def _settle(page: Any) -> None:
    """Wait out the rerun an input starts: a popup opened during one closes when the page redraws."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def _retry(page: Any, action: Any, appears: Any, tries: int = 5) -> None:
    """Do ``action`` until ``appears`` shows (a popup a rerun closed, a grid still settling); a try that
    times out inside ``action`` counts as one that did not show. The last try's error is raised."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(tries - 1):
        _settle(page)
        try:
            action()
            appears.wait_for(timeout=5000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    _settle(page)
    action()
    appears.wait_for()


def _select(page: Any, label: str, option: str) -> None:
    """Streamlit's selectbox is a combobox whose list opens from its "Open" button."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_label(label, exact=True))
    _retry(page, lambda: box.get_by_role("button", name="Open").click(), page.get_by_role("option", name=option, exact=True))
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function("([l, o]) => document.querySelector(`input[aria-label='${l}']`).value === o", arg=[label, option])
