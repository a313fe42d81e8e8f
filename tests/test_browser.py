"""The researcher's view in a real browser: Jupyter Notebook 7 and the example prototype in Chromium.

One Jupyter server runs the quickstart notebook; one browser context is the researcher, a
second (its own cookies) is a participant clicking through the example prototype.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "protonb-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
    if os.environ.get("PROTONB_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example prototype and the quickstart notebook, laid out as in the repo."""
    root = tmp_path_factory.mktemp("workspace")
    for name in ("templates", "public", "notebooks"):
        shutil.copytree(REPO / name, root / name)
    for name in ("routes.py", "session-data-defaults.json"):
        shutil.copy(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def jupyter(workspace: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Jupyter Notebook 7 server on 127.0.0.1 serving the workspace; stopped afterwards."""
    _need_chromium()
    home = tmp_path_factory.mktemp("jupyter-home")
    port = _free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "notebook",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={workspace}",
        "--JupyterNotebookApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "jupyter.log", "w")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "jupyter.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser(jupyter: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


INPUT_VALUES = "Array.from(document.querySelectorAll('.widget-text input')).map(i => i.value)"


def test_dashboard_shows_a_participants_answers_live_and_clears_them(jupyter: str, browser) -> None:
    """A researcher runs the quickstart, sees a participant's answers arrive without
    re-running a cell, and clears them; the participant's next page shows no answers."""
    researcher = browser.new_context(viewport={"width": 1280, "height": 1600})
    page = researcher.new_page()
    page.goto(f"{jupyter}/notebooks/notebooks/quickstart.ipynb?token={TOKEN}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_timeout(1500)  # let the kernel come up; run-all waits for it anyway
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_selector(".protonb-table table", timeout=60_000)
    # The last cell has run: the notebook's stand-in participant was labelled and cleared.
    page.wait_for_function(
        "document.querySelectorAll('.jp-OutputArea-output').length >= 7"
        " && document.body.innerText.includes('P1')",
        timeout=60_000,
    )
    link = page.locator(".jp-OutputArea-output a[href^='http://127.0.0.1']").first
    prototype_url = link.get_attribute("href")
    assert prototype_url and prototype_url.startswith("http://127.0.0.1:")

    participant = browser.new_context().new_page()
    participant.goto(prototype_url)
    participant.get_by_role("link", name="Start now").click()
    participant.get_by_label("First name").fill("Ada")
    participant.get_by_label("Last name").fill("Browser-Test")
    participant.get_by_role("button", name="Continue").click()
    participant.wait_for_url("**/over-18")

    # No cell runs from here on: the table shows the new session and where it is.
    page.wait_for_function(
        "document.querySelector('.protonb-table .protonb-count').textContent.startsWith('2 of 2')",
        timeout=10_000,
    )
    first_row = page.locator(".protonb-table tbody tr").first
    assert first_row.locator(".protonb-current").inner_text() == "/over-18"
    first_row.click()
    page.wait_for_function(f"{INPUT_VALUES}.includes('Ada')", timeout=10_000)
    assert "Browser-Test" in page.evaluate(INPUT_VALUES)

    # The participant answers more; the selected session's pane follows by itself.
    participant.get_by_label("Yes").check()
    participant.get_by_role("button", name="Continue").click()
    participant.wait_for_url("**/household")
    page.wait_for_function(
        "document.querySelector('.protonb-table tbody tr .protonb-current').textContent === '/household'",
        timeout=10_000,
    )
    page.wait_for_function(f"{INPUT_VALUES}.includes('yes')", timeout=10_000)

    # The researcher clears this participant's data from the dashboard.
    page.get_by_role("button", name="Clear data").click()
    page.get_by_role("button", name="Yes", exact=True).click()
    page.wait_for_function(f"!{INPUT_VALUES}.includes('Ada')", timeout=10_000)
    page.wait_for_function("document.body.innerText.includes('Cleared: the session is back to the defaults')")

    participant.goto(prototype_url.rstrip("/") + "/check-answers")
    assert participant.locator("#answer-name").inner_text().strip() == ""
    participant.goto(prototype_url.rstrip("/") + "/name")
    assert participant.get_by_label("First name").input_value() == ""
    researcher.close()
