"""A fork server for the crash tests: imports samestyle (and torch) once, then forks one CLI run per command.

Run as a script; it reads one JSON command a line on stdin and answers one JSON line on stdout::

    {"argv": [...], "cwd": "...", "log": "...", "crash_at": 7, "kill_after": null, "trace": null}
    -> {"exit": 0 | null, "signal": 9 | null, "seconds": 0.12}

Each command runs ``samestyle.cli.main(argv)`` in a forked child (so a run costs milliseconds, not the
1-3 s of importing torch, faiss and pyarrow again), with stdout and stderr sent to ``log``.

Crash points: the child counts the file-system operations that decide what survives a crash
(``os.replace``, ``os.rename``, ``os.link``, ``os.unlink``/``os.remove``, ``os.rmdir``, ``os.mkdir`` and
``os.fsync``). Point ``2n - 1`` kills the child with SIGKILL just *before* operation ``n``, point ``2n``
just *after* it. Before an ``fsync`` of a temp file the file is first cut to a random length, as if the
process had died in the middle of writing it. ``trace`` (a path) makes an uninterrupted run write the
list of its operations there (op name and path), which is how a test learns how many points there are.
``kill_after`` (seconds) kills the child from outside instead, at a random moment of its work.
"""

from __future__ import annotations

import gc
import json
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

OPS = ("replace", "rename", "link", "unlink", "remove", "rmdir", "mkdir", "fsync")
REAL_FSYNC = os.environ.get("RELIABILITY_REAL_FSYNC") == "1"
CHILD_TIMEOUT_S = 120.0


def _preload() -> None:
    """Import everything the CLI stages use, so forked children start warm."""
    import torch._dynamo  # noqa: F401 - the optimizers import it on first use: 2 s per child otherwise

    import samestyle.catalog.ingest
    import samestyle.cli
    import samestyle.features.extract
    import samestyle.index
    import samestyle.models.fake
    import samestyle.pipeline.build_index
    import samestyle.pipeline.embed
    import samestyle.pipeline.encoders
    import samestyle.train.loop
    import samestyle.train.run  # torch, safetensors, the losses and the eval protocols

    flush = os.environ.get("RELIABILITY_FLUSH_ROWS")
    if flush:  # small cache shards, so a small catalogue still writes several and a crash can fall between
        defaults = samestyle.features.extract.extract_features.__kwdefaults__
        assert defaults is not None
        defaults["flush_rows"] = int(flush)


def _path_of(name: str, args: tuple[Any, ...]) -> str:
    """The path an operation acts on: the destination of a rename or link, the file of an fsync."""
    if not args:
        return ""
    first = args[1] if name in ("replace", "rename", "link") and len(args) > 1 else args[0]
    if isinstance(first, int):  # fsync(fd)
        try:
            return os.readlink(f"/proc/self/fd/{first}")
        except OSError:
            return f"fd:{first}"
    return os.fspath(first) if isinstance(first, str | bytes | os.PathLike) else str(first)


def _install_hook(crash_at: int | None, trace: bool, seed: int) -> list[list[str]]:
    """Count (and with ``trace`` record) the file-system operations; SIGKILL at point ``crash_at``."""
    rng = random.Random(seed)
    count = [0]
    ops: list[list[str]] = []

    def die(name: str, args: tuple[Any, ...]) -> None:
        if name == "fsync" and args and isinstance(args[0], int):
            path = _path_of(name, args)
            if path.endswith(".tmp") and os.path.isfile(path):
                size = os.fstat(args[0]).st_size
                os.ftruncate(args[0], rng.randrange(size + 1) if size else 0)  # died mid-write
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            n = count[0]
            if trace:
                ops.append([name, _path_of(name, args)])
            if crash_at == 2 * n - 1:
                die(name, args)
            try:
                return fn(*args, **kwargs)
            finally:  # "after" also when the operation raised (mkdir of a folder that exists)
                if crash_at == 2 * n:
                    die(name, args)

        return counted

    for name in OPS:
        real = getattr(os, name)
        if name == "fsync" and not REAL_FSYNC:
            real = _no_fsync
        setattr(os, name, wrap(name, real))
    return ops


def _no_fsync(fd: int) -> None:
    """fsync is counted as a crash point but not run: a killed process loses nothing that is in the page
    cache (power loss, which fsync guards against, is out of scope), and it costs ~80% of a small write."""


def _child(cmd: dict[str, Any]) -> None:
    code = 99
    gc.disable()  # a short run: collecting would only copy shared pages
    try:
        os.chdir(cmd["cwd"])
        fd = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        ops = _install_hook(cmd.get("crash_at"), bool(cmd.get("trace")), int(cmd.get("seed", 0)))
        from samestyle.cli import main

        code = main(cmd["argv"])
        if cmd.get("trace"):
            with open(cmd["trace"], "w", encoding="utf-8") as fh:
                json.dump(ops, fh)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _wait(pid: int, kill_after: float | None, start: float) -> int:
    deadline = start + (kill_after if kill_after is not None else CHILD_TIMEOUT_S)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.perf_counter() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.001)


def main() -> None:
    _preload()
    gc.collect()
    gc.freeze()  # children then leave the preloaded objects' pages shared (no copy-on-write for the GC)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(cmd)
        status = _wait(pid, cmd.get("kill_after"), start)
        answer = {
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "seconds": round(time.perf_counter() - start, 4),
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
