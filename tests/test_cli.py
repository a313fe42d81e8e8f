"""``python -m protonb serve DIR`` as a researcher runs it in a terminal, in a real subprocess.

Each test writes a small prototype folder, starts the command on a free port, talks to it
over HTTP with a cookie jar as a browser would, and stops it with SIGTERM by its PID (in a
``finally``, so no server outlives its test).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Only a bound against a hung start: no test measures how long anything takes.
WAIT_SECONDS = 30

TEMPLATES = {
    "index.html": "<h1>Start</h1>",
    "name.html": "<h1>Your name</h1><p id=\"answer\">{{ data['claimant']['first-name'] }}</p>",
}


def write_prototype(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    (root / "session-data-defaults.json").write_text(json.dumps({"service": "Help"}), encoding="utf-8")
    return root


class Server:
    """A running ``protonb serve``: its process, the URL it printed, and what it wrote."""

    def __init__(self, process: subprocess.Popen[str], url: str, out: list[str]) -> None:
        self.process = process
        self.url = url
        self.out = out

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 0)

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM by PID; the exit status and the rest of stdout and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=WAIT_SECONDS)
        return self.process.returncode, "".join(self.out) + stdout, stderr


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "protonb", "serve", *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command that is expected to exit by itself."""
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=WAIT_SECONDS)


@contextmanager
def serving(*args: str, prefix: list[str] | None = None) -> Iterator[Server]:
    """Start ``protonb serve ARGS``, wait for the URL it prints, and always stop it."""
    env = {k: v for k, v in os.environ.items() if k != "PROTONB_PASSWORD"}
    process = subprocess.Popen(
        (prefix or []) + command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    server: Server | None = None
    try:
        out: list[str] = []
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT_SECONDS
        while server is None:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                stdout, stderr = process.communicate()
                raise AssertionError(f"protonb serve printed no URL:\n{''.join(out)}{stdout}\n{stderr}")
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                out.append(line)
                found = re.search(r" at (http://\S+)", line)
                if found:
                    server = Server(process, found.group(1), out)
        selector.close()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


class Browser:
    """A cookie jar and redirects, through the standard library."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str) -> tuple[int, str]:
        with self.opener.open(url, timeout=WAIT_SECONDS) as response:
            return response.status, response.read().decode("utf-8")

    def post(self, url: str, fields: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode("ascii")
        with self.opener.open(url, data=body, timeout=WAIT_SECONDS) as response:
            return response.status, response.read().decode("utf-8")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (connections closed a moment ago may
    linger in TIME_WAIT; servers, protonb's included, bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- serving


def test_serve_prints_the_url_serves_pages_and_stores_answers(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    with serving(str(root), "--port", "0") as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
        assert server.port != 0
        browser = Browser()
        assert browser.get(server.url) == (200, "<h1>Start</h1>")
        status, page = browser.post(server.url + "name", {"claimant[first-name]": "Ada"})
        assert status == 200
        assert '<p id="answer">Ada</p>' in page
        assert '<p id="answer">Ada</p>' in browser.get(server.url + "name")[1]
        assert '<p id="answer"></p>' in Browser().get(server.url + "name")[1]
        missing = urllib.request.Request(server.url + "nowhere")
        with pytest.raises(urllib.error.HTTPError) as caught:
            browser.opener.open(missing, timeout=WAIT_SECONDS)
        assert caught.value.code == 404
        code, stdout, stderr = server.stop()
    assert code == 0
    assert "protonb: stopped" in stdout
    assert "Traceback" not in stderr
    assert (root / ".protonb" / "sessions.sqlite3").is_file()


def test_sigterm_stops_cleanly_and_frees_the_port(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    with serving(str(root), "--port", "0") as server:
        Browser().get(server.url)
        assert not port_is_free(server.port)
        code, _, stderr = server.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert port_is_free(server.port)


def test_answers_survive_stopping_and_serving_again_on_the_same_port(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    browser = Browser()
    with serving(str(root), "--port", "0") as server:
        browser.post(server.url + "name", {"claimant[first-name]": "Ada"})
        port = server.port
        assert server.stop()[0] == 0
    with serving(str(root), "--port", str(port)) as again:
        assert again.url == server.url
        assert '<p id="answer">Ada</p>' in browser.get(again.url + "name")[1]


def test_data_dir_keeps_sessions_outside_the_prototype(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    data = tmp_path / "elsewhere"
    with serving(str(root), "--port", "0", "--data-dir", str(data)) as server:
        Browser().post(server.url + "name", {"claimant[first-name]": "Ada"})
    assert (data / "sessions.sqlite3").is_file()
    assert not (root / ".protonb").exists()


def test_serving_on_loopback_gives_no_warning(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    with serving(str(root), "--port", "0") as server:
        _, _, stderr = server.stop()
    assert "anyone who can reach this machine" not in stderr


def _isolated_network() -> list[str] | None:
    """A prefix that runs a command in a network namespace of its own, where 10.99.0.1 is a
    local address nothing outside can reach; None where namespaces are not allowed."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return None
    setup = "ip link set lo up && ip addr add 10.99.0.1/32 dev lo"
    probe = subprocess.run(["unshare", "-rn", "sh", "-c", setup], capture_output=True, timeout=WAIT_SECONDS)
    if probe.returncode != 0:
        return None
    return ["unshare", "-rn", "sh", "-c", setup + ' && exec "$@"', "sh"]


def test_serving_on_another_address_warns_that_anyone_can_reach_it(tmp_path: Path) -> None:
    prefix = _isolated_network()
    if prefix is None:
        pytest.skip("needs `unshare -rn` to listen on a non-loopback address without exposing it")
    root = write_prototype(tmp_path / "proto")
    with serving(str(root), "--port", "0", "--host", "10.99.0.1", prefix=prefix) as server:
        assert server.url.startswith("http://10.99.0.1:")
        code, _, stderr = server.stop()
    assert code == 0
    assert "anyone who can reach this machine can open the prototype" in stderr


# --------------------------------------------------------------------------- refusing to start


def test_a_folder_without_templates_exits_2_saying_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run(str(tmp_path / "empty"), "--port", "0")
    assert result.returncode == 2
    assert "no templates/ folder" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_folder_exits_2_saying_so(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nowhere"), "--port", "0")
    assert result.returncode == 2
    assert "No prototype folder at" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_session_data_defaults_exit_2_naming_the_file(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    (root / "session-data-defaults.json").write_text('{"service": "Help",}', encoding="utf-8")
    result = run(str(root), "--port", "0")
    assert result.returncode == 2
    assert "session-data-defaults.json could not be read" in result.stderr
    assert "line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_defaults_that_are_not_an_object_exit_2(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    (root / "session-data-defaults.json").write_text('["a", "b"]', encoding="utf-8")
    result = run(str(root), "--port", "0")
    assert result.returncode == 2
    assert "JSON object" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_exits_2_saying_so(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(str(root), "--port", str(port))
    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr
    assert "--port 0" in result.stderr, "the advice names the CLI's way to get a free port"
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def test_a_port_out_of_range_exits_2(tmp_path: Path) -> None:
    result = run(str(write_prototype(tmp_path / "proto")), "--port", "70000")
    assert result.returncode == 2
    assert "--port must be between 0 and 65535" in result.stderr


def test_the_folder_is_not_written_to_when_it_cannot_start(tmp_path: Path) -> None:
    root = tmp_path / "no-templates"
    root.mkdir()
    run(str(root), "--port", "0")
    assert os.listdir(root) == []


def test_a_host_that_is_not_an_address_exits_2_saying_so(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    for host, says in (
        ("0.0.0.0.0", "protonb: Cannot listen on host '0.0.0.0.0': it is not an address or a name"),
        ("10.9.9.9", "protonb: Cannot listen on host '10.9.9.9': it is not an address of this computer"),
        ("", "protonb: --host is empty"),
    ):
        result = run(str(root), "--port", "0", "--host", host)
        assert result.returncode == 2, host
        assert says in result.stderr and "use 127.0.0.1 (this computer only)" in result.stderr
        assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def test_session_hours_out_of_range_exit_2_naming_the_option(tmp_path: Path) -> None:
    root = write_prototype(tmp_path / "proto")
    for hours in ("0", "nan", "inf", "-3"):
        result = run(str(root), "--port", "0", f"--session-hours={hours}")
        assert result.returncode == 2, hours
        assert "protonb: --session-hours must be more than 0" in result.stderr
        assert "session_hours" not in result.stderr


# --------------------------------------------------------------------------- the Makefile


def make_serve_command(*args: str) -> str:
    """The command ``make serve ARGS`` would run (``make -n``), without PORT from this shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SERVE_PORT", "MAKEFLAGS")}
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        ["make", "-n", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=WAIT_SECONDS
    ).stdout
    lines = [line for line in out.splitlines() if "protonb serve" in line or "jupyter notebook" in line]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_honours_port_and_keeps_3000_and_8888_as_defaults() -> None:
    assert make_serve_command("serve", "PORT=9126").endswith("--port 9126")
    assert make_serve_command("serve").endswith("--port 3000")
    assert "--port=8888 " in make_serve_command("run")
    assert "--port=9126 " in make_serve_command("run", "PORT=9126")
