"""protonb inside a real Jupyter kernel: POST to dashboard update, and the dashboard with many sessions.

    .venv/bin/python benchmarks/kernel_latency.py                    # 60 s at 10/s, 10 000 sessions
    .venv/bin/python benchmarks/kernel_latency.py --seconds 5 --sessions 500   # a smoke run

A kernel (this virtualenv's ipykernel, started with jupyter_client) serves the shared bench
prototype and displays the dashboard, as a researcher's notebook does. No frontend is attached:
what the kernel puts on iopub is what a browser would get. Measured:

- latency: participants POST the 20-field form (a changed answer each time) at a steady rate;
  the time from starting the POST to the table's comm_msg carrying that session's row arriving
  on iopub (read by a thread of this process). One participant's session is shown in the
  detail pane, so its answer rows are refreshed too.
- widget models: comm_open messages on iopub during the run (after the dashboard is shown),
  and ipywidgets' live model count in the kernel before and after: neither should grow.
- with N sessions held (made in the kernel's store): a new dashboard built from the store,
  the full table sent when a browser asks for it ("ready"), one participant's change reaching
  the table (store write + flush), and a search over every session's answers, each timed in
  the kernel; and POST -> comm_msg again with N held.

Prints KERNEL lines (key=value, times in ms). Nothing here is asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import queue
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
BENCH = Path(os.environ.get("BENCH", REPO.parent / "shared" / "bench"))
KERNEL_NAME = "protonb-kernel-bench"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Kernel:
    """A kernel, a client, and a thread that timestamps every iopub message as it arrives."""

    def __init__(self, workdir: Path) -> None:
        spec = workdir / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [str(PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "protonb kernel bench",
                    "language": "python",
                }
            )
        )
        ksm = KernelSpecManager(kernel_dirs=[str(workdir / "kernels")], ensure_native_kernel=False)
        self.km = KernelManager(
            kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, connection_file=str(workdir / "conn.json")
        )
        env = dict(os.environ, IPYTHONDIR=str(workdir / "ipython"), PYTHONUNBUFFERED="1")
        cwd = workdir / "cwd"
        cwd.mkdir()
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.comm_opens = 0
        self.watch: dict[str, list[float]] = {}  # session id -> arrival times of its table rows
        self.table_id = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_iopub, daemon=True)
        self._thread.start()

    def _read_iopub(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            at = time.monotonic()
            kind = msg["msg_type"]
            if kind == "comm_open":
                self.comm_opens += 1
            elif kind == "comm_msg" and msg["content"].get("comm_id") == self.table_id:
                content = msg["content"]["data"].get("content") or {}
                if content.get("type") == "upsert":
                    for row in content.get("rows", ()):
                        if row.get("id") in self.watch:
                            self.watch[row["id"]].append(at)
            self.messages.put((at, msg))

    def execute(self, code: str, timeout: float = 600) -> str:
        """Run a cell; return its stdout; raise on an error."""
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + timeout
        out, error = "", None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(code)
            try:
                _, msg = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out += content["text"]
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if error:
            raise RuntimeError(f"{error}\nin the cell:\n{code}")
        return out

    def json(self, code: str) -> Any:
        return json.loads(self.execute(code).strip().splitlines()[-1])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


class Participant:
    """One browser: a kept-alive connection and the session cookie the server set."""

    def __init__(self, port: int, body: str, number: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.head, _, self.tail = body.partition("Alexandra")
        self.number = number
        self.cookie = ""
        self.session_id = ""
        self.count = 0

    def post(self) -> None:
        self.count += 1
        body = f"{self.head}P{self.number}-{self.count}{self.tail}"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.conn.request("POST", "/question", body=body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        if response.status != 302:
            raise RuntimeError(f"POST /question answered {response.status}")
        set_cookie = response.getheader("Set-Cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";", 1)[0]
            signed = urllib.parse.unquote(self.cookie.partition("=")[2].strip('"'))
            value = signed.split("|")[4].partition(":")[2]
            self.session_id = base64.b64decode(value).decode("ascii")


def steady_posts(kernel: Kernel, people: list[Participant], rate: float, seconds: float) -> list[float]:
    """POST at ``rate`` per second for ``seconds``, round robin; latencies (ms) to the table row."""
    latencies: list[float] = []
    pending: list[tuple[str, float]] = []
    interval = 1.0 / rate
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        due = start + i * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        person = people[i % len(people)]
        kernel.watch.setdefault(person.session_id, [])
        t0 = time.monotonic()
        person.post()
        pending.append((person.session_id, t0))
    time.sleep(1.0)
    # Each POST's row is the first table row for its session that arrived after the POST started.
    used: dict[str, int] = {}
    for sid, t0 in pending:
        arrivals = kernel.watch.get(sid, [])
        k = used.get(sid, 0)
        while k < len(arrivals) and arrivals[k] < t0:
            k += 1
        if k < len(arrivals):
            latencies.append(1000 * (arrivals[k] - t0))
            used[sid] = k + 1
    return latencies


SETUP = """
import json, shutil, time, statistics
import ipywidgets
import protonb
from IPython.display import display
proto = protonb.Prototype({root!r})
proto.start(host="127.0.0.1")
d = proto.dashboard()
display(d)
print(json.dumps({{"port": proto.port, "table": d.table.model_id, "models": len(ipywidgets.Widget.widgets)}}))
"""

MANY = """
from protonb.store import SessionRecord
from protonb.widgets import Dashboard
from protonb import forms
body = open({body!r}).read().strip()
answers = forms.parse_body(body)
store = proto.store
t = time.perf_counter()
now = time.time()
for i in range({n}):
    data = json.loads(json.dumps(answers))
    data["claimant"]["first-name"] = f"Bulk{{i}}"
    store.set(SessionRecord(id=f"bulk{{i:06d}}-{{'x' * 16}}", data=data, created=now, last_active=now - i,
                            current_page="/question", pages=["/question"]), "created")
fill_ms = 1000 * (time.perf_counter() - t)
t = time.perf_counter(); d.flush(); first_flush_ms = 1000 * (time.perf_counter() - t)
t = time.perf_counter(); records = store.list(); list_ms = 1000 * (time.perf_counter() - t)
t = time.perf_counter(); fresh = Dashboard(proto.sessions); build_ms = 1000 * (time.perf_counter() - t)
fresh.close()
sent = d.table.sent
t = time.perf_counter()
d.table._from_browser(None, {{"type": "ready"}})
ready_ms = 1000 * (time.perf_counter() - t)
change = []
record = store.get("bulk000000-" + "x" * 16)
for k in range(200):
    t = time.perf_counter()
    record.data["claimant"]["last-name"] = f"Changed{{k}}"
    record.last_active = time.time()
    store.set(record, "data")
    d.flush()
    change.append(1000 * (time.perf_counter() - t))
t = time.perf_counter()
d.table._from_browser(None, {{"type": "search", "q": "Bulk9999"}})
search_ms = 1000 * (time.perf_counter() - t)
change.sort()
print(json.dumps({{"sessions": len(records), "fill_ms": fill_ms, "first_flush_ms": first_flush_ms,
    "list_ms": list_ms, "build_ms": build_ms, "ready_ms": ready_ms, "search_ms": search_ms,
    "change_p50_ms": change[len(change) // 2], "change_p99_ms": change[int(len(change) * 0.99) - 1],
    "models": len(ipywidgets.Widget.widgets)}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="POSTs per second (default 10)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the steady run")
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions held for the large case")
    args = parser.parse_args()
    body = (BENCH / "body.txt").read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="protonb-kernel-bench-"))
    kernel = None
    try:
        root = work / "prototype"
        shutil.copytree(BENCH / "prototype-protonb", root)
        kernel = Kernel(work)
        info = kernel.json(SETUP.format(root=str(root)))
        kernel.table_id = info["table"]
        time.sleep(0.5)
        models_shown = info["models"]
        people = [Participant(info["port"], body, i) for i in range(args.participants)]
        for person in people:
            person.post()
        shown = people[0].session_id
        kernel.execute(f"d.table.selected = {shown!r}")
        time.sleep(0.5)
        models_before = kernel.json("print(len(ipywidgets.Widget.widgets))")
        opens_before = kernel.comm_opens
        latencies = steady_posts(kernel, people, args.rate, args.seconds)
        opens_during = kernel.comm_opens - opens_before
        models_after = kernel.json("print(len(ipywidgets.Widget.widgets))")
        print(
            f"KERNEL case=latency sessions={len(people)} rate_per_s={args.rate:g}"
            f" posts={int(args.rate * args.seconds)}"
            f" matched={len(latencies)} p50_ms={statistics.median(latencies):.1f}"
            f" p90_ms={pct(latencies, 90):.1f} p99_ms={pct(latencies, 99):.1f} max_ms={max(latencies):.1f}"
            f" comm_open_during_run={opens_during} widget_models_at_display={models_shown}"
            f" widget_models_before_run={models_before}"
            f" widget_models_after={models_after}",
            flush=True,
        )
        many = kernel.json(MANY.format(body=str(BENCH / "body.txt"), n=args.sessions))
        print(
            "KERNEL case=many " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in many.items()),
            flush=True,
        )
        time.sleep(0.5)
        opens_before = kernel.comm_opens
        held = steady_posts(kernel, people, args.rate, min(args.seconds, 20.0))
        print(
            f"KERNEL case=latency-with-many sessions={many['sessions']} rate_per_s={args.rate:g}"
            f" matched={len(held)} p50_ms={statistics.median(held):.1f} p90_ms={pct(held, 90):.1f}"
            f" p99_ms={pct(held, 99):.1f} max_ms={max(held):.1f}"
            f" comm_open_during_run={kernel.comm_opens - opens_before}",
            flush=True,
        )
        kernel.execute("proto.close()")
    finally:
        if kernel is not None:
            kernel.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
