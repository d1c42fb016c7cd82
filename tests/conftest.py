"""Suite-wide hook: leave the test process without the interpreter's teardown.

A clean-clone `.ci/run` (session 6) once ended with "832 passed" and then a segmentation fault while the
interpreter tore down the native libraries the suite loads (torch, onnxruntime, OpenVINO, Ray, pyarrow),
turning a green run red; the next run was clean and the cause was not found. Once pytest knows its exit
status (every test, fixture finalizer and report done), this hook flushes the streams and exits with
exactly that status, skipping the teardown. ``SAMESTYLE_TEST_TEARDOWN=1`` keeps the normal exit (to chase
the crash).
"""

from __future__ import annotations

import os
import sys

import pytest

_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if not _STATUS or os.environ.get("SAMESTYLE_TEST_TEARDOWN") == "1":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_STATUS[-1])
