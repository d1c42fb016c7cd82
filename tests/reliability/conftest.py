"""Prints what the crash tests tried (operations traced, points killed, outcomes) at the end of a session."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from reliability_crash import STATS

    if not STATS:
        return
    terminalreporter.section("crash points tried")
    for s in STATS:
        terminalreporter.write_line(
            f"{s['scenario']:<18} ops {s['ops']:>3}  op points {s['op_points']:>2}  "
            f"timed kills {s['timed_landed']}/{s['timed']}  outcomes {s['outcomes']}  "
            f"(uninterrupted run {s['reference_s']:.2f}s)"
        )
