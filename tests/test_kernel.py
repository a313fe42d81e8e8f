"""protonb inside a real Jupyter kernel, driven through jupyter_client.

One kernel (the project's virtualenv Python, started in a temporary folder) serves every
test in this module. Each test writes its own prototype folder, runs cells in the kernel
the way a researcher would, and talks to the server over HTTP from this process while the
kernel is idle. Every wait has a timeout of a few seconds, so nothing here can hang.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.manager import KernelManager  # noqa: E402
from kernels import kernel_manager  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
KERNEL_NAME = "protonb-test-venv"
CELL_TIMEOUT = 8.0
HTTP_TIMEOUT = 5.0
KERNEL_READY_TIMEOUT = 20.0

HOUSEHOLD_FORM = {
    "claimant[first-name]": "Ada",
    "claimant[last-name]": "Lovelace",
    "partner[first-name]": "William",
    "partner[last-name]": "King",
}
HOUSEHOLD_DATA = {
    "claimant": {"first-name": "Ada", "last-name": "Lovelace"},
    "partner": {"first-name": "William", "last-name": "King"},
}

TEMPLATES = {
    "index.html": "<h1>Apply for help</h1><a href=\"/household\">Start now</a>\n",
    "household.html": """<h1>Your household</h1>
<form method="post" action="/household">
  <label>Your first name <input name="claimant[first-name]"
    value="{{ data.claimant['first-name'] }}"></label>
  <label>Your last name <input name="claimant[last-name]"
    value="{{ data.claimant['last-name'] }}"></label>
  <label>Partner's first name <input name="partner[first-name]"
    value="{{ data.partner['first-name'] }}"></label>
  <label>Partner's last name <input name="partner[last-name]"
    value="{{ data.partner['last-name'] }}"></label>
  <button>Continue</button>
</form>
""",
    "dump.html": "{{ data | tojson }}",
    "which.html": "which {{ n }}",
}


# --------------------------------------------------------------------------- the kernel


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    displays: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class Kernel:
    """A running kernel and a blocking client talking to it."""

    def __init__(self, km: KernelManager, kc: Any) -> None:
        self.km = km
        self.kc = kc

    def execute(self, code: str, timeout: float = CELL_TIMEOUT) -> CellResult:
        """Run ``code`` as a cell; return once the kernel is idle again, or raise TimeoutError."""
        result = CellResult()
        started = time.monotonic()
        deadline = started + timeout
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        while True:
            msg = self._next(self.kc.get_iopub_msg, deadline, code)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                result.displays.append(content["data"])
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        result.seconds = time.monotonic() - started
        while True:
            reply = self._next(self.kc.get_shell_msg, deadline + 2, code)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        return result

    def run(self, code: str, timeout: float = CELL_TIMEOUT) -> tuple[str, str | None]:
        """Run a cell; return its stdout and its error (``"Name: message"``) or None."""
        result = self.execute(code, timeout)
        return result.stdout, result.error

    @staticmethod
    def _next(get: Any, deadline: float, code: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            return get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(f"the kernel did not finish this cell in time:\n{code}") from None

    def wait_ready(self) -> None:
        self.kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
        # Drain what the (re)started kernel said before we ask it anything.
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                break


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    if not VENV_PYTHON.exists():
        pytest.skip(f"no virtualenv Python at {VENV_PYTHON}")
    root = tmp_path_factory.mktemp("kernel")
    cwd = root / "cwd"
    cwd.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(root / "ipython"), PYTHONUNBUFFERED="1")
    km = kernel_manager(root, KERNEL_NAME, VENV_PYTHON, connection_file=str(root / "connection.json"))
    kc = None
    try:
        km.start_kernel(cwd=str(cwd), env=env)
        kc = km.client()
        kc.start_channels()
        k = Kernel(km, kc)
        k.wait_ready()
        out, err = k.run("import os, sys\nprint(sys.executable)\nprint(os.getcwd())")
        assert err is None, err
        executable, where = out.split()
        assert Path(executable) == VENV_PYTHON, executable
        assert Path(where).resolve() == cwd.resolve(), where
        yield k
    finally:
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


# --------------------------------------------------------------------------- prototype and HTTP


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "prototype"
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def cleanup(kernel: Kernel):
    """Close the prototype the test left in the kernel's ``proto``."""
    yield
    kernel.run("try:\n    proto.close()\nexcept NameError:\n    pass\n")


def start_cell(folder: Path, port: int | None = None, before_start: str = "") -> str:
    port_arg = "" if port is None else f"port={port}"
    return (
        "import protonb\n"
        f"proto = protonb.Prototype({str(folder)!r})\n"
        f"{before_start}"
        f"url = proto.start({port_arg})\n"
        "print(url)\n"
    )


URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/$")


def port_of(stdout: str) -> int:
    last = stdout.strip().splitlines()[-1]
    found = URL.match(last)
    assert found, f"no prototype URL in the cell's output: {stdout!r}"
    return int(found.group(1))


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


class Browser:
    """One participant: keeps the cookies the server sets, sends them back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> Response:
        """Send one request (on ``conn``, kept open, or on a new connection closed after)."""
        own = conn is None
        conn = conn or self.connection()
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
            if own:
                conn.close()
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return Response(resp.status, resp.headers, text)

    def get(self, path: str, conn: http.client.HTTPConnection | None = None) -> Response:
        return self.request("GET", path, conn=conn)

    def post(
        self, path: str, form: dict[str, str], conn: http.client.HTTPConnection | None = None
    ) -> Response:
        return self.request("POST", path, form, conn=conn)

    def fill_household(self) -> None:
        posted = self.post("/household", HOUSEHOLD_FORM)
        assert posted.status == 302, posted
        assert posted.headers["Location"] == "/household"
        page = self.get(posted.headers["Location"])
        assert page.status == 200
        assert 'value="Ada"' in page.body and 'value="King"' in page.body

    def dump(self) -> Any:
        page = self.get("/dump")
        assert page.status == 200, page
        return json.loads(page.body)


def refused(port: int) -> bool:
    """True when nothing accepts connections on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT):
            return False
    except ConnectionRefusedError:
        return True


def stored_data(kernel: Kernel) -> list[dict[str, Any]]:
    out, err = kernel.run("import json; print(json.dumps([r.data for r in proto.store.list()]))")
    assert err is None, err
    return json.loads(out)


# --------------------------------------------------------------------------- the tests


@pytest.mark.kernel
def test_start_returns_at_once_and_shows_a_link(kernel: Kernel, folder: Path, cleanup: None) -> None:
    """Starting a prototype in a cell returns at once with a 127.0.0.1 URL, the kernel goes idle,
    and the cell shows an <a href> link to that URL."""
    cell = kernel.execute(start_cell(folder))
    assert cell.error is None, cell.error
    port = port_of(cell.stdout)
    url = f"http://127.0.0.1:{port}/"
    assert cell.seconds < 3, f"the start cell took {cell.seconds:.2f}s"
    html = "".join(d.get("text/html", "") for d in cell.displays)
    assert f'<a href="{url}"' in html, cell.displays
    page = Browser(port).get("/")
    assert page.status == 200 and "Apply for help" in page.body


@pytest.mark.kernel
def test_posted_form_lands_in_the_participants_session(
    kernel: Kernel, folder: Path, cleanup: None
) -> None:
    """A household form posted while the kernel is idle is stored as nested claimant/partner data
    in that participant's session, as seen both from the kernel and from /dump."""
    out, err = kernel.run(start_cell(folder))
    assert err is None, err
    port = port_of(out)
    browser = Browser(port)
    browser.fill_household()
    assert browser.cookies, "the server set no session cookie"
    sessions = stored_data(kernel)
    assert sessions == [HOUSEHOLD_DATA]
    assert browser.dump() == sessions[0]
    # A second participant gets a session of their own.
    other = Browser(port)
    assert other.dump() == {}
    assert browser.dump() == HOUSEHOLD_DATA


@pytest.mark.kernel
def test_rerunning_the_start_cell_replaces_the_server_on_the_same_port(
    kernel: Kernel, folder: Path, cleanup: None
) -> None:
    """Re-running the start cell keeps the port, leaves exactly one (the newest) app answering,
    closes the old apps' kept-alive connections, and keeps the participant's data."""

    def which_cell(n: int, port: int | None = None) -> str:
        route = f"@proto.route('/which')\ndef which(req):\n    return req.render('which', n={n})\n"
        return start_cell(folder, port=port, before_start=route)

    out, err = kernel.run(which_cell(0))
    assert err is None, err
    port = port_of(out)
    browser = Browser(port)
    browser.fill_household()
    kept_alive = browser.connection()
    try:
        assert browser.get("/which", conn=kept_alive).body == "which 0"
        old_sock = kept_alive.sock
        assert old_sock is not None

        for n in (1, 2, 3):
            cell = kernel.execute(which_cell(n))
            assert cell.error is None, cell.error
            assert "in use" not in cell.stdout + cell.stderr, cell.stderr
            assert port_of(cell.stdout) == port, f"run {n} moved to another port"

        try:
            answer = browser.get("/which", conn=kept_alive)
        except (ConnectionError, http.client.HTTPException):
            pass  # the old server closed its connection: fine, a browser reconnects
        else:
            assert kept_alive.sock is old_sock
            assert answer.body == "which 3", "an old app still answers on a kept-alive connection"
    finally:
        kept_alive.close()

    for _ in range(5):
        assert browser.get("/which").body == "which 3"
    out, err = kernel.run(
        "import gc\nfrom protonb.runner import RunningServer\n"
        f"print(sum(1 for o in gc.get_objects() if isinstance(o, RunningServer)"
        f" and o.running and o.port == {port}))"
    )
    assert err is None, err
    assert out.strip() == "1", "more than one server is running on the port"
    assert browser.dump() == HOUSEHOLD_DATA


@pytest.mark.kernel
def test_stop_frees_the_port_at_once(kernel: Kernel, folder: Path, cleanup: None) -> None:
    """After proto.stop() the port can be bound again at once and requests are refused."""
    out, err = kernel.run(start_cell(folder))
    assert err is None, err
    port = port_of(out)
    browser = Browser(port)
    assert browser.get("/").status == 200

    out, err = kernel.run("proto.stop()\nprint(proto.running, proto.url)")
    assert err is None, err
    assert out.split() == ["False", "None"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # raises if the kernel still holds the port
    assert refused(port)
    with pytest.raises(ConnectionRefusedError):
        browser.get("/")


@pytest.mark.kernel
def test_start_on_a_port_in_use_fails_clearly(kernel: Kernel, folder: Path, cleanup: None) -> None:
    """start(port=P) on a port another program holds fails in the cell with PortInUse naming the
    port, and the kernel stays usable."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out, err = kernel.run(start_cell(folder, port=port))
        assert err is not None, f"start on a used port did not fail: {out!r}"
        assert err.startswith("PortInUse:"), err
        assert str(port) in err and "in use" in err, err
        out, err = kernel.run("print(proto.running, 6 * 7)")
        assert err is None, err
        assert out.split() == ["False", "42"]
    finally:
        holder.close()
    out, err = kernel.run(start_cell(folder))
    assert err is None, err
    assert Browser(port_of(out)).get("/").status == 200


@pytest.mark.kernel
def test_route_function_from_a_cell_is_replaced_without_a_restart(
    kernel: Kernel, folder: Path, cleanup: None
) -> None:
    """A POST route function defined in a cell redirects by the answer, and re-running the cell
    with a changed function replaces it while the server keeps running."""
    out, err = kernel.run(start_cell(folder))
    assert err is None, err
    port = port_of(out)
    first = (
        '@proto.route("/eligibility", methods=["POST"])\n'
        "def eligibility(req):\n"
        '    if req.data.get("over-18") == "yes":\n'
        '        return req.redirect("/household")\n'
        '    return req.redirect("/ineligible")\n'
    )
    second = first.replace('"/household"', '"/claimant-details"').replace(
        '"/ineligible"', '"/sorry"'
    )
    _, err = kernel.run(first)
    assert err is None, err
    browser = Browser(port)
    conn = browser.connection()
    try:
        yes = browser.post("/eligibility", {"over-18": "yes"}, conn=conn)
        assert (yes.status, yes.headers["Location"]) == (302, "/household")
        no = browser.post("/eligibility", {"over-18": "no"}, conn=conn)
        assert (no.status, no.headers["Location"]) == (302, "/ineligible")
        sock = conn.sock

        _, err = kernel.run(second)
        assert err is None, err
        yes = browser.post("/eligibility", {"over-18": "yes"}, conn=conn)
        assert (yes.status, yes.headers["Location"]) == (302, "/claimant-details")
        no = browser.post("/eligibility", {"over-18": "no"}, conn=conn)
        assert (no.status, no.headers["Location"]) == (302, "/sorry")
        assert conn.sock is sock, "the connection was dropped: the server restarted"
    finally:
        conn.close()
    out, err = kernel.run("print(proto.port)")
    assert err is None and out.strip() == str(port)
    assert browser.dump() == {"over-18": "no"}


@pytest.mark.kernel
def test_data_survives_a_kernel_restart(kernel: Kernel, folder: Path, cleanup: None) -> None:
    """After restarting the kernel and starting the prototype again on the same folder, the same
    browser cookie still sees its data, because the store is on disk."""
    out, err = kernel.run(start_cell(folder))
    assert err is None, err
    port = port_of(out)
    browser = Browser(port)
    browser.fill_household()

    kernel.km.restart_kernel(now=True)
    kernel.wait_ready()
    assert refused(port), "the server outlived its kernel"
    out, err = kernel.run("print('proto' in globals())")
    assert (out.strip(), err) == ("False", None)

    out, err = kernel.run(start_cell(folder, port=port))
    assert err is None, err
    assert port_of(out) == port
    assert browser.dump() == HOUSEHOLD_DATA
    assert stored_data(kernel) == [HOUSEHOLD_DATA]

