"""The benchmark scripts keep working: each runs once, tiny, against protonb alone.

No speed is asserted here (speed belongs to benchmarks/README.md, measured on a quiet
machine); only that the scripts run to the end, that protonb passes the harness's
functional check, and that no request failed and no returning participant lost a session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("BENCH", REPO.parent / "shared" / "bench"))

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _facts(output: str, kind: str) -> list[dict[str, str]]:
    rows = []
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] == kind:
            rows.append(dict(part.split("=", 1) for part in parts[1:] if "=" in part))
    return rows


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.skipif(not (BENCH / "run.sh").exists(), reason=f"no load harness at {BENCH}")
def test_the_load_benchmark_runs_protonb_once(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        TARGETS="protonb",
        ROUNDS="1",
        DURATION="1",
        CONNS="10",
        PAUSE="0",
        QUIET_WAIT="0",
        NOISE_RETRIES="0",
        MEM_SESSIONS="50",
        PORT=str(_free_port()),
        PYTHON=sys.executable,
        BENCH=str(BENCH),
        BENCH_WORK=str(tmp_path / "bench-work"),
    )
    done = subprocess.run(
        [str(REPO / "benchmarks" / "load.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert [check["ok"] for check in _facts(output, "CHECK")] == ["1"], output[-3000:]
    results = {(row["workload"], row["conns"]): row for row in _facts(output, "RESULT")}
    assert set(results) == {("W1", "10"), ("W2", "10"), ("W4", "10"), ("W3", "10"), ("W1c", "10")}
    for (workload, _), row in results.items():
        assert int(row["requests"]) > 0, row
        assert row["errors"] == "0", row
        if workload != "W3":
            assert row["new_sessions"] == "0", f"a returning participant got a new session: {row}"
    kinds = {row["kind"]: row for row in _facts(output, "SESSIONS")}
    assert set(kinds) == {"cookieless-get", "empty", "20-answers"}
    assert kinds["20-answers"]["sessions"] == "50"
    assert _facts(output, "STARTUP")


@pytest.mark.kernel
@pytest.mark.skipif(not (BENCH / "body.txt").exists(), reason=f"no load harness at {BENCH}")
def test_the_kernel_benchmark_runs_once() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "kernel_latency.py"), "--seconds", "2"]
        + ["--sessions", "200"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, BENCH=str(BENCH)),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    cases = {row["case"]: row for row in _facts(output, "KERNEL")}
    assert set(cases) == {"latency", "many", "latency-with-many"}
    assert cases["latency"]["matched"] == cases["latency"]["posts"]
    assert cases["latency"]["comm_open_during_run"] == "0"
    assert cases["many"]["sessions"] == "220"
