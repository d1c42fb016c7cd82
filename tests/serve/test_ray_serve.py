"""``samestyle serve --engine ray``: the app in a local Ray Serve replica answers over real HTTP exactly as
the in-process app does. Runs wherever ``ray[serve]`` is installed (``make install``); skipped otherwise."""

from __future__ import annotations

import dataclasses
import importlib.util
import socket
import time
from pathlib import Path

import pytest
from serve_fakes import API_KEY, FakeSite, make_client

from samestyle.errors import ConfigError
from samestyle.serve import ServeSettings, VariantSpec
from samestyle.serve.ray_serve import RayServeOptions, replica_settings


def _ray_serve_missing() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    try:
        from ray import serve  # noqa: F401
        from ray.serve._private import proxy  # noqa: F401 - needs the serve extra (aiohttp, starlette, ...)
    except ImportError as exc:
        return f"ray[serve] is not installed ({exc}); run 'make install'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_replica_settings_turn_writes_off_and_make_paths_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServeSettings(
        catalog_dir=Path("cat"),
        events_path=Path("ev.jsonl"),
        api_key=API_KEY,
        variants=(VariantSpec("a", Path("ix")),),
    )
    one = replica_settings(settings, 1)
    assert one.api_key == API_KEY and one.catalog_dir == tmp_path / "cat"
    assert one.events_path == tmp_path / "ev.jsonl" and one.variants[0].index_dir == tmp_path / "ix"
    two = replica_settings(settings, 2)
    assert two.api_key is None and dataclasses.replace(two, api_key=API_KEY) == one
    with pytest.raises(ConfigError, match="replicas"):
        RayServeOptions(replicas=0)
    with pytest.raises(ConfigError, match="prefix"):
        RayServeOptions(route_prefix="api")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Serve's own pydantic fields
def test_one_local_replica_answers_like_the_in_process_app(site: FakeSite, tmp_path: Path) -> None:
    missing = _ray_serve_missing()
    if missing:
        pytest.skip(missing)
    import httpx

    from samestyle.serve.ray_serve import deploy, shutdown

    port = _free_port()
    settings = ServeSettings(catalog_dir=site.catalog, port=port, warmup=True)
    url = deploy(site.index, settings, RayServeOptions(replicas=1, route_prefix="/shop", cpus_per_replica=1))
    try:
        assert url == f"http://127.0.0.1:{port}/shop"
        with httpx.Client(base_url=url, timeout=30) as http, make_client(site) as local:
            assert http.get("/healthz").status_code == 200
            for _ in range(100):  # warm-up runs in the replica: /readyz answers 503 until it is done
                if http.get("/readyz").status_code == 200:
                    break
                time.sleep(0.2)
            assert http.get("/readyz").status_code == 200
            for text in ("red shirt", "women blue dress", "black watch"):
                got = http.get("/api/search", params={"text": text, "k": 5})
                want = local.get("/api/search", params={"text": text, "k": 5})
                assert got.status_code == 200, got.text
                assert [h["id"] for h in got.json()["hits"]] == [h["id"] for h in want.json()["hits"]]
            flt = http.get("/api/similar", params={"id": "p3", "k": 4, "filter": "category=Apparel/Shoe"})
            assert flt.status_code == 200 and len(flt.json()["hits"]) == 4
            assert all(h["product"]["category"][-1] == "Shoe" for h in flt.json()["hits"])
            missing_product = http.get("/api/similar", params={"id": "nope", "k": 4})
            assert missing_product.status_code == 404 and missing_product.json()["code"] == "not_found"
            assert http.put("/api/products", params={"id": "x"}, json={}).status_code in (403, 422)
    finally:
        shutdown()


def test_cli_engine_ray_passes_replicas_address_and_prefix(site: FakeSite, monkeypatch) -> None:
    """``samestyle serve --engine ray`` wiring, without starting Ray (deploy is replaced)."""
    import samestyle.serve.ray_serve as ray_serve
    from samestyle.cli import main

    seen: dict[str, object] = {}

    def fake_deploy(index_dir, settings, options, *, blocking=False):  # type: ignore[no-untyped-def]
        seen.update(index=index_dir, settings=settings, options=options, blocking=blocking)
        return "http://x"

    monkeypatch.setattr(ray_serve, "deploy", fake_deploy)
    argv = ["serve", "--index", str(site.index), "--engine", "ray", "--replicas", "3", "--port", "8123"]
    argv += ["--ray-address", "auto", "--route-prefix", "/shop", "--threads", "0"]  # 0: torch untouched here
    assert main(argv) == 0
    options = seen["options"]
    assert isinstance(options, RayServeOptions) and seen["blocking"] is True
    assert (options.replicas, options.address, options.route_prefix) == (3, "auto", "/shop")
    assert options.threads == 0
    assert seen["index"] == str(site.index) and seen["settings"].port == 8123  # type: ignore[attr-defined]
