"""Shared test hooks: the fuzz tests' count of inputs tried, printed in the summary."""

from __future__ import annotations

import pytest

FUZZ_COUNTS = pytest.StashKey[dict[str, int]]()


@pytest.fixture
def fuzz_counts(request: pytest.FixtureRequest) -> dict[str, int]:
    """How many inputs each kind of fuzzing tried, for the summary at the end of the run."""
    return request.config.stash.setdefault(FUZZ_COUNTS, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    counts = config.stash.get(FUZZ_COUNTS, {})
    if not counts:
        return
    terminalreporter.write_sep("-", "fuzzing")
    for kind, count in counts.items():
        terminalreporter.write_line(f"{kind}: {count} inputs")
    terminalreporter.write_line(f"{sum(counts.values())} random inputs tried in all")
