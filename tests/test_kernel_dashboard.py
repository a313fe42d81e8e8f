"""The live dashboard inside a real Jupyter kernel, watched on iopub.

One kernel (the project's virtualenv Python) runs one prototype and shows its dashboard,
as a researcher would. Participants are played by this process over HTTP while the
kernel is idle; every iopub message the kernel sends is kept, with the moment this process
took it off the channel, so a test can ask "which widget messages did that POST cause, and
how soon". No frontend is attached: what the kernel sends is what a browser would get.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyter_client")
from jupyter_client.manager import KernelManager  # noqa: E402
from kernels import kernel_manager  # noqa: E402

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
KERNEL_NAME = "protonb-dashboard-test"
CELL_TIMEOUT = 10.0
HTTP_TIMEOUT = 5.0
#: How soon after a POST starts its widget message must be on iopub.
LIVE_WITHIN = 1.0
#: How long to wait for a message before giving up (longer than LIVE_WITHIN, for a clear failure).
WAIT = 3.0

DEFAULTS = {"service-name": "Test service"}
HOUSEHOLD_FORM = {
    "claimant[first-name]": "Ada",
    "claimant[last-name]": "Lovelace",
    "partner[first-name]": "William",
    "partner[last-name]": "King",
}
TEMPLATES = {
    "index.html": '<h1>Apply for help</h1><a href="/household">Start now</a>\n',
    "household.html": """<h1>Your household</h1>
<form method="post" action="/household">
  <input name="claimant[first-name]" value="{{ data.claimant['first-name'] }}">
  <input name="claimant[last-name]" value="{{ data.claimant['last-name'] }}">
  <input name="partner[first-name]" value="{{ data.partner['first-name'] }}">
  <input name="partner[last-name]" value="{{ data.partner['last-name'] }}">
  <button>Continue</button>
</form>
""",
    "dump.html": "{{ data | tojson }}",
}

#: POST to comm_msg latencies (seconds) measured by the tests below, reported at the end.
LATENCIES: list[float] = []


# --------------------------------------------------------------------------- the kernel


@dataclass
class Seen:
    """One iopub message and when this process took it off the channel (time.monotonic())."""

    at: float
    msg: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.msg["msg_type"])

    @property
    def content(self) -> dict[str, Any]:
        return self.msg["content"]


@dataclass
class CellResult:
    stdout: str = ""
    error: str | None = None
    displays: list[dict[str, Any]] = field(default_factory=list)


class Kernel:
    """A running kernel and a blocking client; every iopub message is kept in ``seen``."""

    def __init__(self, km: KernelManager, kc: Any) -> None:
        self.km = km
        self.kc = kc
        self.seen: list[Seen] = []

    def _take(self, deadline: float) -> Seen | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            msg = self.kc.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            return None
        seen = Seen(time.monotonic(), msg)
        self.seen.append(seen)
        return seen

    def execute(self, code: str, timeout: float = CELL_TIMEOUT) -> CellResult:
        """Run ``code`` as a cell; return once the kernel is idle again."""
        result = CellResult()
        deadline = time.monotonic() + timeout
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        while True:
            seen = self._take(deadline)
            if seen is None:
                raise TimeoutError(f"the kernel did not finish this cell in time:\n{code}")
            if seen.msg["parent_header"].get("msg_id") != msg_id:
                continue
            if seen.kind == "stream" and seen.content["name"] == "stdout":
                result.stdout += seen.content["text"]
            elif seen.kind in ("display_data", "execute_result"):
                result.displays.append(seen.content["data"])
            elif seen.kind == "error":
                result.error = f"{seen.content['ename']}: {seen.content['evalue']}"
            elif seen.kind == "status" and seen.content["execution_state"] == "idle":
                break
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=max(0.1, deadline + 2 - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no execute_reply for this cell:\n{code}") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                return result

    def run_json(self, code: str) -> Any:
        """Run a cell whose last line prints JSON; return what it printed, parsed."""
        result = self.execute(code)
        assert result.error is None, f"{result.error}\nin the cell:\n{code}"
        return json.loads(result.stdout.strip().splitlines()[-1])

    def wait_for(self, wanted: Callable[[Seen], bool], since: int, timeout: float = WAIT) -> Seen | None:
        """The first message from ``seen[since:]`` on that is ``wanted``, waiting if need be."""
        for seen in self.seen[since:]:
            if wanted(seen):
                return seen
        deadline = time.monotonic() + timeout
        while True:
            seen = self._take(deadline)
            if seen is None:
                return None
            if wanted(seen):
                return seen

    def settle(self, quiet: float = 0.25, timeout: float = WAIT) -> None:
        """Take messages until none has come for ``quiet`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._take(min(end, time.monotonic() + quiet)) is None:
                return


def is_comm_msg(comm_id: str) -> Callable[[Seen], bool]:
    return lambda seen: seen.kind == "comm_msg" and seen.content["comm_id"] == comm_id


def custom(seen: Seen) -> dict[str, Any]:
    """The content the table's ``send()`` put in a comm_msg (ipywidgets' "custom" method)."""
    data = seen.content["data"]
    assert data.get("method") == "custom", data
    return data["content"]


def is_upsert(comm_id: str) -> Callable[[Seen], bool]:
    table = is_comm_msg(comm_id)
    return lambda seen: table(seen) and seen.content["data"].get("content", {}).get("type") == "upsert"


def comm_opens(messages: list[Seen]) -> list[str]:
    return [
        seen.content["data"]["state"].get("_model_name", "?")
        for seen in messages
        if seen.kind == "comm_open"
    ]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    if not VENV_PYTHON.exists():
        pytest.skip(f"no virtualenv Python at {VENV_PYTHON}")
    root = tmp_path_factory.mktemp("dashboard-kernel")
    cwd = root / "cwd"
    cwd.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(root / "ipython"), PYTHONUNBUFFERED="1")
    km = kernel_manager(root, KERNEL_NAME, VENV_PYTHON, connection_file=str(root / "connection.json"))
    kc = None
    try:
        km.start_kernel(cwd=str(cwd), env=env)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=20)
        k = Kernel(km, kc)
        k.settle(quiet=0.1)
        yield k
    finally:
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


# --------------------------------------------------------------------------- the prototype


@dataclass
class Dashboard:
    port: int
    table: str  # the SessionTable's comm (model) id
    shown_at: int  # index in kernel.seen just after the dashboard was displayed


@pytest.fixture(scope="module")
def dash(kernel: Kernel, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dashboard") / "prototype"
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    (root / "session-data-defaults.json").write_text(json.dumps(DEFAULTS), encoding="utf-8")
    cell = (
        "import json\n"
        "import protonb\n"
        "from IPython.display import display\n"
        f"proto = protonb.Prototype({str(root)!r})\n"
        "url = proto.start(host='127.0.0.1')\n"
        "d = proto.dashboard()\n"
        "display(d)\n"
        "print(json.dumps({'port': proto.port, 'table': d.table.model_id}))\n"
    )
    try:
        result = kernel.execute(cell)
        assert result.error is None, result.error
        views = [shown for shown in result.displays if "application/vnd.jupyter.widget-view+json" in shown]
        assert views, f"display(d) showed no widget view: {result.displays}"
        info = json.loads(result.stdout.strip().splitlines()[-1])
        kernel.settle(quiet=0.1)
        yield Dashboard(info["port"], info["table"], len(kernel.seen))
    finally:
        kernel.execute("try:\n    proto.close()\nexcept NameError:\n    pass\n")
        if LATENCIES:
            ms = sorted(1000 * x for x in LATENCIES)
            print(
                f"\nPOST -> comm_msg on iopub over {len(ms)} runs:"
                f" p50 {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
            )


@pytest.fixture(autouse=True)
def no_sessions_yet(kernel: Kernel, dash: Dashboard) -> None:
    """Each test starts with no sessions and a quiet iopub, so nothing of the test before it
    (a row still on its way, a session still listed) is taken for this test's."""
    result = kernel.execute("proto.sessions.remove_all()")
    assert result.error is None, result.error
    kernel.settle(quiet=0.3)


# --------------------------------------------------------------------------- participants


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


class Browser:
    """One participant: keeps the cookies the server sets and sends them back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8")
        finally:
            conn.close()
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return Response(resp.status, resp.headers, text)

    def post(self, path: str, form: dict[str, str]) -> Response:
        posted = self.request("POST", path, form)
        assert posted.status == 302, (posted.status, posted.body[:500])
        return posted

    def dump(self) -> Any:
        page = self.request("GET", "/dump")
        assert page.status == 200, page
        return json.loads(page.body)


def post_and_wait(
    kernel: Kernel, browser: Browser, form: dict[str, str], wanted: Callable[[Seen], bool]
) -> tuple[Seen, float, list[Seen]]:
    """POST ``form`` while the kernel is idle; return the wanted message, its latency in
    seconds from the start of the POST, and every message seen since the POST."""
    mark = len(kernel.seen)
    started = time.monotonic()
    browser.post("/household", form)
    seen = kernel.wait_for(wanted, since=mark)
    assert seen is not None, f"no such message on iopub within {WAIT} s of the POST"
    latency = seen.at - started
    LATENCIES.append(latency)
    return seen, latency, kernel.seen[mark:]


# --------------------------------------------------------------------------- the tests


def test_a_posted_form_reaches_the_table_on_iopub_within_a_second(kernel: Kernel, dash: Dashboard) -> None:
    """A household form posted from outside while the kernel is idle makes the session table
    send one small "upsert" comm_msg carrying that session's row, in under a second; and no
    new widget model is made for it."""
    browser = Browser(dash.port)
    hits: list[tuple[Seen, float]] = []
    since = len(kernel.seen)
    for attempt in range(8):
        form = dict(HOUSEHOLD_FORM, **{"claimant[first-name]": f"Ada {attempt}"})
        seen, latency, _ = post_and_wait(kernel, browser, form, is_upsert(dash.table))
        hits.append((seen, latency))
    after = kernel.seen[since:]

    session = kernel.run_json(
        "s = proto.sessions[0]\n"
        "print(json.dumps({'id': s.id, 'answers': s.answers, 'n': len(proto.sessions)}))"
    )
    assert session["n"] == 1
    assert session["answers"] == 4, "four household answers, the default not counted"
    for seen, latency in hits:
        assert latency < LIVE_WITHIN, f"the upsert came {latency * 1000:.0f} ms after the POST"
        rows = custom(seen)["rows"]
        assert [row["id"] for row in rows] == [session["id"]], rows
        assert rows[0]["answers"] == 4, rows
        assert rows[0]["page"] == "/household", rows
        size = len(json.dumps(seen.content).encode("utf-8"))
        assert size < 1024, f"one upsert sent {size} bytes"
    assert comm_opens(after) == [], "a participant's answers made new widget models"


def test_b_a_changed_nested_answer_shows_in_the_selected_sessions_pane(
    kernel: Kernel, dash: Dashboard
) -> None:
    """With a session selected from a cell, that participant posting claimant[first-name]=Zed
    (only a nested answer changes) updates the detail pane's Text to "Zed" within a second."""
    browser = Browser(dash.port)
    post_and_wait(kernel, browser, HOUSEHOLD_FORM, is_upsert(dash.table))
    shown = kernel.run_json(
        "d.table.selected = proto.sessions[0].id\n"
        "print(json.dumps({'id': d.table.selected, 'session': d.detail.session_id,\n"
        "    'texts': {'.'.join(r.path): r.value.model_id for r in d.detail.rows"
        " if r.layout.display != 'none' and r.kind == 'leaf'}}))"
    )
    assert shown["session"] == shown["id"] != ""
    first_name = shown["texts"]["claimant.first-name"]

    def zed(seen: Seen) -> bool:
        data = seen.content.get("data", {}) if seen.kind == "comm_msg" else {}
        return data.get("method") == "update" and data.get("state", {}).get("value") == "Zed"

    seen, latency, after = post_and_wait(kernel, browser, {"claimant[first-name]": "Zed"}, zed)
    assert latency < LIVE_WITHIN, f"the pane changed {latency * 1000:.0f} ms after the POST"
    assert seen.content["comm_id"] == first_name, "Zed went to another widget than claimant.first-name"
    assert comm_opens(after) == [], "changing an answer made new widget models"
    assert browser.dump()["claimant"]["first-name"] == "Zed"
    pane = kernel.run_json(
        "print(json.dumps({'.'.join(r.path): r.value.value for r in d.detail.rows"
        " if r.layout.display != 'none' and r.kind == 'leaf'}))"
    )
    assert pane["claimant.first-name"] == "Zed"
    assert pane["claimant.last-name"] == "Lovelace"


def test_c_clearing_a_session_from_a_cell_empties_the_participants_next_page(
    kernel: Kernel, dash: Dashboard
) -> None:
    """proto.sessions[0].clear() in a cell takes the participant back to the defaults: their
    next page shows none of their answers, and the table row says 0 answers."""
    browser = Browser(dash.port)
    seen, _, _ = post_and_wait(kernel, browser, HOUSEHOLD_FORM, is_upsert(dash.table))
    sid = custom(seen)["rows"][0]["id"]
    assert browser.dump()["claimant"]["first-name"] == "Ada"

    mark = len(kernel.seen)
    cleared = kernel.run_json(
        "s = proto.sessions[0]\ns.clear()\nprint(json.dumps({'id': s.id, 'answers': s.answers}))"
    )
    assert cleared == {"id": sid, "answers": 0}
    zero = kernel.wait_for(
        lambda s: is_upsert(dash.table)(s)
        and any(row["id"] == sid and row["answers"] == 0 for row in custom(s)["rows"]),
        since=mark,
    )
    assert zero is not None, "the table was not told the session has no answers now"

    assert browser.dump() == DEFAULTS
    page = browser.request("GET", "/household")
    assert page.status == 200
    assert "Ada" not in page.body and "Lovelace" not in page.body and "King" not in page.body


def test_d_a_burst_of_submissions_is_coalesced_into_few_small_messages(
    kernel: Kernel, dash: Dashboard
) -> None:
    """50 POSTs from 5 participants at once reach the table as far fewer than 50 comm_msgs, the
    last row of each session carries its final answer count, and no widget model is made."""
    participants = [Browser(dash.port) for _ in range(5)]
    errors: list[BaseException] = []

    def fill(number: int, browser: Browser) -> None:
        try:
            for attempt in range(10):
                form = {"claimant[first-name]": f"P{number} try {attempt}", f"q{attempt}": "yes"}
                if attempt == 9:
                    form.update({f"extra{k}": "x" for k in range(number)})
                browser.post("/household", form)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    mark = len(kernel.seen)
    threads = [threading.Thread(target=fill, args=pair) for pair in enumerate(participants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    kernel.settle(quiet=0.3)
    burst = kernel.seen[mark:]

    table_msgs = [seen for seen in burst if is_comm_msg(dash.table)(seen)]
    assert 0 < len(table_msgs) <= 25, f"{len(table_msgs)} table messages for 50 submissions"
    last_row: dict[str, dict[str, Any]] = {}
    for seen in table_msgs:
        message = custom(seen)
        assert message["type"] == "upsert", message
        assert len(json.dumps(seen.content).encode("utf-8")) < 1024 * max(1, len(message["rows"]))
        for row in message["rows"]:
            last_row[row["id"]] = row
    assert len(last_row) == 5, "not every participant's session reached the table"

    stored = kernel.run_json(
        f"wanted = {sorted(last_row)!r}\n"
        "print(json.dumps({s.id: s.answers for s in proto.sessions if s.id in wanted}))"
    )
    assert {sid: row["answers"] for sid, row in last_row.items()} == stored
    assert sorted(stored.values()) == [11, 12, 13, 14, 15]
    assert comm_opens(burst) == [], "a burst of answers made new widget models"
