"""The session table in a real JupyterLab, in headless Chromium, with many sessions held.

    .venv/bin/python benchmarks/table_in_browser.py                 # 1 000 and 10 000 sessions
    .venv/bin/python benchmarks/table_in_browser.py --sessions 200 --changes 5   # a smoke run

For each size: a notebook fills the store with that many sessions, serves the example
prototype and shows the dashboard. Measured:

- render: from asking JupyterLab to run the dashboard cell to the table showing
  "N of N sessions" (kernel work, widget comm and drawing included);
- change: a participant POSTs an answer over HTTP (no cell runs); the time from sending the
  POST to the table's first row showing that participant's new page and answer count, read by
  a MutationObserver in the page (both clocks are this machine's wall clock);
- bytes: the size of the comm message that carried each change, read on the kernel side.

Prints one RESULT line per size. Nothing here is asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TOKEN = "protonb-bench"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

FILL_CELL = """\
import json, time
import protonb
from protonb.store import SessionRecord
from protonb.session import new_session_id

proto = protonb.Prototype({root!r})
now = time.time()
for n in range({count}):
    proto.store.set(SessionRecord(
        id=new_session_id(),
        data={{"first-name": f"Person {{n}}", "last-name": "Example", "over-18": "yes"}},
        created=now - 3600, last_active=now - 3600 + n * 0.01,
        current_page="/over-18", pages=["/name", "/over-18"],
    ), "created")
url = proto.start(show=False)
print(json.dumps({{"url": url, "sessions": len(proto.sessions)}}))
"""
SHOW_CELL = "proto.dashboard()"
SIZE_CELL = """\
sizes = []
_send = proto.dashboard().table.send
def _measured(content, buffers=None):
    sizes.append(len(json.dumps(content)))
    return _send(content, buffers)
proto.dashboard().table.send = _measured
"""
REPORT_CELL = "print('SIZES', json.dumps(sizes))"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> None:
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
            for source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


class Jupyter:
    """JupyterLab on 127.0.0.1, its kernels running this Python."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        kernels = self.home / "data" / "kernels" / "python3"
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3",
                    "language": "python",
                }
            )
        )
        self.port = free_port()
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
        )
        command = [
            str(Path(sys.executable).with_name("jupyter")),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.home / "jupyter.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={TOKEN}", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError((self.home / "jupyter.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()


class Participant:
    """A browser's cookie jar, over plain HTTP (no redirects followed)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect()
        )

    def post(self, path: str, fields: dict[str, str]) -> None:
        body = urllib.parse.urlencode(fields).encode()
        try:
            self.opener.open(urllib.request.Request(self.base + path.lstrip("/"), data=body), timeout=10)
        except urllib.error.HTTPError as exc:
            if exc.code != 302:
                raise


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


OBSERVE = """() => {
  window.__rows = [];
  const body = document.querySelector('.protonb-table tbody');
  new MutationObserver(() => {
    const first = body.querySelector('tr');
    if (!first) return;
    const page = first.querySelector('.protonb-current').textContent;
    const answers = first.querySelector('.protonb-answers').textContent;
    window.__rows.push([performance.timeOrigin + performance.now(), page, answers]);
  }).observe(body, {childList: true, subtree: true, characterData: true});
}"""


def run_cell(page, index: int) -> None:  # type: ignore[no-untyped-def]
    page.evaluate(
        """(index) => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.activeCellIndex = index;
            return window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def measure(browser, jupyter: Jupyter, root: Path, count: int, changes: int, screenshot: str = "") -> dict:  # type: ignore[no-untyped-def]
    name = f"table-{count}.ipynb"
    write_notebook(
        root / name,
        [FILL_CELL.format(root=str(root / "prototype"), count=count), SHOW_CELL, SIZE_CELL, REPORT_CELL],
    )
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    # A workspace of its own: JupyterLab would otherwise reopen the notebook of the size before
    # beside this one, and 'notebook:run-cell' could then run a cell of that one instead.
    page.goto(f"{jupyter.base}/lab/workspaces/table-{count}/tree/{name}?token={TOKEN}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(
        "window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=90_000,
    )
    try:
        return _measure_in(page, url_of=lambda: _fill(page, count), count=count, changes=changes)
    except Exception:
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
        raise
    finally:
        context.close()


def _fill(page, count: int) -> str:  # type: ignore[no-untyped-def]
    run_cell(page, 0)
    page.wait_for_function(
        "(n) => document.body.innerText.includes(`\"sessions\": ${n}`)"
        " || document.querySelector('.jp-RenderedText[data-mime-type=\"application/vnd.jupyter.error\"]')",
        arg=count,
        timeout=120_000,
    )
    failed = page.query_selector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')
    if failed:
        raise RuntimeError("the notebook cell failed:\n" + failed.inner_text())
    text = page.inner_text(".jp-Cell:nth-child(1) .jp-OutputArea-output")
    return str(json.loads(text.strip().splitlines()[-1])["url"])


def _measure_in(page, url_of, count: int, changes: int) -> dict:  # type: ignore[no-untyped-def]
    url = url_of()

    started = time.time()
    run_cell(page, 1)
    page.wait_for_function(
        "(n) => { const c = document.querySelector('.protonb-table .protonb-count');"
        " return c && c.textContent.startsWith(`${n} of ${n}`); }",
        arg=count,
        timeout=120_000,
        polling="raf",
    )
    render_ms = (time.time() - started) * 1000
    run_cell(page, 2)
    page.wait_for_timeout(500)
    page.evaluate(OBSERVE)

    participant = Participant(url)
    participant.post("/name", {"first-name": "Watched", "last-name": "Participant"})
    page.wait_for_function(
        "(n) => document.querySelector('.protonb-table .protonb-count').textContent.startsWith(`${n} of`)",
        arg=count + 1,
        timeout=30_000,
    )
    latencies = []
    for n in range(changes):
        target = "/dob" if n % 2 else "/contact"
        page.evaluate("window.__rows = []")
        sent = time.time() * 1000
        participant.post(target, {f"q{n}": "yes"})
        page.wait_for_function(
            "([page, answers]) => window.__rows.some(r => r[1] === page && r[2] === answers)",
            arg=[target, str(3 + n)],
            timeout=30_000,
            polling=50,
        )
        seen = page.evaluate("window.__rows")
        shown = min(at for at, page_, answers in seen if page_ == target and answers == str(3 + n))
        latencies.append(shown - sent)
        time.sleep(0.2)
    run_cell(page, 3)
    page.wait_for_function("document.body.innerText.includes('SIZES')", timeout=30_000)
    sizes_text = page.inner_text(".jp-Cell:nth-child(4) .jp-OutputArea-output")
    sizes = json.loads(sizes_text.split("SIZES", 1)[1].strip())
    upserts = sizes[-changes:] if changes else []
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    latencies.sort()
    return {
        "sessions": count,
        "render_ms": round(render_ms),
        "change_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "change_max_ms": round(latencies[-1], 1) if latencies else None,
        "bytes_per_change": max(upserts) if upserts else None,
        "changes": changes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--screenshot", default="", help="save a screenshot here if a size fails")
    args = parser.parse_args()
    # Stopped by `timeout` or kill: unwind, so that JupyterLab and its kernels are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="protonb-table-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "templates", root / "prototype" / "templates")
        shutil.copytree(REPO / "public", root / "prototype" / "public")
        shutil.copy(REPO / "session-data-defaults.json", root / "prototype")
        jupyter = Jupyter(root)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    for count in args.sessions:
                        shutil.rmtree(root / "prototype" / ".protonb", ignore_errors=True)
                        result = measure(browser, jupyter, root, count, args.changes, args.screenshot)
                        print("RESULT table " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
                finally:
                    browser.close()
        finally:
            jupyter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
