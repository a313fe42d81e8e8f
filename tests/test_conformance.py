"""The GOV.UK Prototype Kit conformance suite, run against ``protonb serve`` as a subprocess.

The cases in ``../shared/conformance/cases.json`` were observed on the real kit; the runner
starts protonb on a free port with a fresh copy of its prototype, plays every case with
fresh cookie jars, and ends with one line ``N passed, N failed``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO.parent / "shared" / "conformance" / "check.py"
#: The public cases at the time of writing; new cases may only add to this.
PUBLIC_CASES = 112


@pytest.mark.skipif(not CHECKER.is_file(), reason=f"the conformance suite is not at {CHECKER}")
def test_every_kit_case_passes_against_protonb_serve() -> None:
    serve = f"{shlex.quote(sys.executable)} -m protonb serve {{prototype}} --port {{port}}"
    result = subprocess.run(
        [sys.executable, str(CHECKER), "--serve", serve],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = result.stdout.strip().splitlines()
    report = "\n".join(lines[-40:]) + ("\n" + result.stderr[-2000:] if result.stderr else "")
    assert lines, f"the checker printed nothing:\n{result.stderr}"
    summary = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1].strip())
    assert summary, f"the checker did not end with 'N passed, N failed':\n{report}"
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert failed == 0, f"{failed} kit case(s) failed:\n{report}"
    assert passed >= PUBLIC_CASES, f"only {passed} cases ran:\n{report}"
    assert result.returncode == 0, report
