"""Synthetic unit vectors for the index tests (seeded, clustered like real embeddings)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

VectorMaker = Callable[..., np.ndarray]


def make_unit(n: int, dim: int, *, seed: int = 0, clusters: int = 0, spread: float = 0.6) -> np.ndarray:
    """[n, dim] float32 unit vectors; with ``clusters``, points scattered around that many centres."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    if clusters:
        centres = rng.normal(size=(clusters, dim)).astype(np.float32)
        x = centres[rng.integers(0, clusters, n)] + spread * x
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def unit() -> VectorMaker:
    return make_unit


def make_data(
    n: int, n_queries: int, dim: int, *, seed: int = 0, clusters: int = 100, spread: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(base [n, dim], queries [n_queries, dim]) from the same clusters; queries are held-out points."""
    both = make_unit(n + n_queries, dim, seed=seed, clusters=clusters, spread=spread)
    return both[:n], both[n:]


@pytest.fixture
def data() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return make_data


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway PostgreSQL 16 + pgvector server (pgserver) for the whole session; its DSN is exported
    as ``SAMESTYLE_PG_DSN`` so ``INDEX_BACKENDS.build("pgvector", ...)`` uses it. As root, pgserver runs
    PostgreSQL as the unprivileged system user ``pgserver`` (created if missing). Stopped and deleted at
    the end. Skips only when pgserver / psycopg are missing or the server cannot start here."""
    import os

    try:
        import pgserver
        import psycopg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"pgvector tests need pgserver and psycopg ({exc}); run 'make install'")
    server, error = None, None
    for _ in range(2):  # a second try: a start can time out on a heavily loaded machine
        try:
            server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
            dsn = server.get_uri()
            break
        except Exception as exc:  # any start failure means "cannot run here"
            error = exc
    if server is None:
        pytest.skip(f"pgserver could not start PostgreSQL on this machine (twice): {error}")
    old = os.environ.get("SAMESTYLE_PG_DSN")
    os.environ["SAMESTYLE_PG_DSN"] = dsn
    yield dsn
    if old is None:
        os.environ.pop("SAMESTYLE_PG_DSN", None)
    else:
        os.environ["SAMESTYLE_PG_DSN"] = old
    server.cleanup()
