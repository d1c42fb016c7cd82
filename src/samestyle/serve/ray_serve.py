"""``samestyle serve --engine ray``: the same FastAPI app (:func:`create_app`) in N Ray Serve replicas.

Each replica is a Ray actor that opens the index folder(s) itself and builds its own app at start-up
(``serve.ingress`` with a late-bound app, ``__serve_build_asgi_app__``), so nothing heavy is pickled and
every replica loads its encoders and model once. Ray Serve's HTTP proxy listens on ``host:port`` and
spreads requests over the replicas; the route prefix mounts the app under a path (``/`` by default).

``address=None`` starts a private local Ray (``ray.init(address="local")``, never joining a cluster by
accident); ``"auto"`` or ``"ray://head:10001"`` deploys onto a running cluster (docs/scaling.md). Every
node must then see the index folder (and the catalogue) at the same path.

What a replica keeps in its own memory stays per replica: refinement sessions (``/api/sessions``), the
result lists a click names by ``request_id``, and the index itself. So with more than one replica,
catalogue writes are switched off (a write would change one replica's index only) and a session's
``refine`` calls can land on another replica, which answers 404; searches, similar products and
composed queries are stateless and scale with replicas. Impressions from all replicas append to the same
click log (one ``write`` a result list).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samestyle.errors import ConfigError, DependencyError
from samestyle.serve.settings import ServeSettings

log = logging.getLogger(__name__)

APP_NAME = "samestyle"


@dataclass(frozen=True)
class RayServeOptions:
    """How to run the app on Ray Serve.

    Attributes:
        replicas: app replicas (Ray actors), each with the whole index in memory.
        address: Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None: a private local Ray.
        route_prefix: path the app is mounted under (``/``: the page and API at the root).
        cpus_per_replica: CPUs Ray reserves for each replica (the local Ray gets enough for all).
        threads: torch intra-op threads inside each replica (0: torch's default).
        access_log: Ray Serve's log line a request (off, like ``samestyle serve`` without -v).
    """

    replicas: int = 1
    address: str | None = None
    route_prefix: str = "/"
    cpus_per_replica: float = 1.0
    threads: int = 1
    access_log: bool = False

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(f"--replicas must be at least 1 (got {self.replicas})")
        if not self.route_prefix.startswith("/"):
            raise ConfigError(f"the route prefix must start with '/' (got {self.route_prefix!r})")
        if self.cpus_per_replica <= 0:
            raise ConfigError(f"cpus per replica must be positive (got {self.cpus_per_replica})")


def _ray_serve() -> tuple[Any, Any]:
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise DependencyError(
            f"--engine ray needs Ray Serve ({exc}): pip install -e '.[serve]' (ray[serve])"
        ) from None
    return ray, serve


def replica_settings(settings: ServeSettings, replicas: int) -> ServeSettings:
    """``settings`` for each replica: absolute paths (a Ray worker has its own working directory) and
    catalogue writes off when there is more than one replica."""
    settings = dataclasses.replace(
        settings,
        catalog_dir=settings.catalog_dir.resolve() if settings.catalog_dir else None,
        events_path=settings.events_path.resolve() if settings.events_path else None,
        variants=tuple(dataclasses.replace(v, index_dir=v.index_dir.resolve()) for v in settings.variants),
    )
    if replicas > 1 and settings.api_key is not None:
        log.warning(
            "catalogue writes are off with %d replicas: each holds its own copy of the index", replicas
        )
        return dataclasses.replace(settings, api_key=None)
    return settings


def _ingress_class() -> type:
    """The deployment class, built on first use so that importing this module does not import Ray."""
    _, serve = _ray_serve()

    @serve.ingress()
    class SamestyleIngress:
        """One replica: opens the index and builds the FastAPI app in the replica's own process."""

        def __init__(self, index_dir: str, settings: ServeSettings, threads: int) -> None:
            self.index_dir = Path(index_dir) if index_dir else Path()  # "": only --variant arms
            self.settings = settings
            self.threads = threads

        def __serve_build_asgi_app__(self) -> Any:
            logging.basicConfig(level=logging.WARNING)  # as `samestyle serve` without -v
            if self.threads:
                try:
                    import torch

                    torch.set_num_threads(self.threads)
                except ImportError:  # a service over fake / ONNX encoders needs no torch
                    pass
            from samestyle.serve.app import create_app
            from samestyle.serve.state import open_variants

            return create_app(open_variants(self.index_dir, self.settings), self.settings)

    return SamestyleIngress


def deploy(
    index_dir: str | Path | None,
    settings: ServeSettings,
    options: RayServeOptions,
    *,
    blocking: bool = False,
) -> str:
    """Start Ray (or join ``options.address``), start Ray Serve's proxy on ``settings.host:port`` and
    deploy the app in ``options.replicas`` replicas; returns the app's base URL.

    It returns once every replica has built its app (``serve.run`` waits for them). With ``blocking`` it
    then serves until interrupted (Ctrl-C) and shuts down; without, call :func:`shutdown` when done.
    """
    # a busy machine starts the proxy in more than Ray's 5 s readiness window, which then restarts it in a
    # loop until serve.start gives up (seen at load 6 on 2 cores); set before Ray starts its processes
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    ray, serve = _ray_serve()
    if not ray.is_initialized():
        if options.address is None:
            ray.init(
                address="local",
                num_cpus=max(1, math.ceil(options.replicas * options.cpus_per_replica)),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(address=options.address, logging_level=logging.WARNING)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployment = serve.deployment(
        _ingress_class(),
        name="SamestyleIngress",
        num_replicas=options.replicas,
        ray_actor_options={"num_cpus": options.cpus_per_replica},
        graceful_shutdown_timeout_s=5,
    )
    per_replica = replica_settings(settings, options.replicas)
    index = str(Path(index_dir).resolve()) if index_dir else ""
    app = deployment.bind(index, per_replica, options.threads)
    start = time.perf_counter()
    logging_config = {
        "enable_access_log": options.access_log,
        "log_level": "INFO" if options.access_log else "WARNING",
    }
    serve.run(app, name=APP_NAME, route_prefix=options.route_prefix, logging_config=logging_config)
    url = f"http://{settings.host}:{settings.port}{options.route_prefix.rstrip('/')}"
    log.info(
        "Ray Serve: %d replica(s) up in %.1fs at %s/", options.replicas, time.perf_counter() - start, url
    )
    if blocking:
        # Ctrl-C and SIGTERM both shut down cleanly (a background job starts with SIGINT ignored)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            log.info("Ray Serve: shutting down")
        finally:
            shutdown()
    return url


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def shutdown() -> None:
    """Stop the app and Ray Serve, and the local Ray this process started (a joined cluster keeps running)."""
    ray, serve = _ray_serve()
    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()


__all__ = ["APP_NAME", "RayServeOptions", "deploy", "replica_settings", "shutdown"]
