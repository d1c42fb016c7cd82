"""Every route of the HTTP API and its error paths, through FastAPI's test client."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_fakes import API_KEY, FakeSite, expect_error, make_client, png_bytes

from samestyle.mining.clicklog import read_click_log

ROUTES = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/info"),
    ("post", "/api/events"),
    ("get", "/api/search"),
    ("post", "/api/search/image"),
    ("get", "/api/similar"),
    ("post", "/api/search/compose"),
    ("post", "/api/search/compose/image"),
    ("post", "/api/sessions"),
    ("post", "/api/sessions/image"),
    ("post", "/api/sessions/{session_id}/refine"),
    ("get", "/api/product"),
    ("get", "/api/image"),
    ("get", "/api/duplicates"),
    ("put", "/api/products"),
    ("delete", "/api/products"),
    ("get", "/api/categorize"),
    ("post", "/api/categorize"),
}


def test_openapi_lists_every_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert found == ROUTES
    assert "HitOut" in schema["components"]["schemas"]


def test_health_ready_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["products"] == 121
    info = client.get("/api/info").json()
    assert info["variants"][0]["name"] == "default" and "joint-image" in info["variants"][0]["spaces"]
    assert info["features"]["image_text"] and info["features"]["images"] and info["writes_enabled"]
    assert "Apparel/Shirt" in info["categories"] and info["max_k"] == 100


def test_readyz_is_503_until_warm_and_warmup_builds_encoders(site: FakeSite) -> None:
    from samestyle.serve.app import warm_up

    with make_client(site, warmup=False) as c:
        state = c.app.state.samestyle  # type: ignore[attr-defined]
        state.ready.clear()
        assert c.get("/readyz").status_code == 503
        warm_up(state)
        assert c.get("/readyz").json()["status"] == "ready"
        assert (
            state.control.service.text_encoder is not None and state.control.service.image_encoder is not None
        )
        state.ready.clear()
        state.ready_error = "RuntimeError: boom"
        _, body = (r := c.get("/readyz")).status_code, r.json()
        assert r.status_code == 503 and "boom" in body["status"]


def test_text_search(client: TestClient) -> None:
    resp = client.get("/api/search", params={"text": "red shirt", "k": 5, "space": "text"})
    body = resp.json()
    assert resp.status_code == 200 and body["kind"] == "text" and body["variant"] == "default"
    assert len(body["hits"]) == 5 and [h["position"] for h in body["hits"]] == [1, 2, 3, 4, 5]
    assert all("red" in h["product"]["title"] or "shirt" in h["product"]["title"] for h in body["hits"])
    assert all("text" in h["scores"] for h in body["hits"])
    first = next(h for h in body["hits"] if h["id"] != "noimg")
    assert first["product"]["image_url"] == f"/api/image?id={first['id']}"
    joint = client.get("/api/search", params={"text": "red shirt", "k": 3}).json()  # text -> joint-image
    assert all(set(h["scores"]) <= {"image", "text", "fused"} and h["scores"] for h in joint["hits"])
    assert joint["hits"] != body["hits"][:3]


def test_text_search_filters_and_errors(client: TestClient) -> None:
    params = {"text": "shirt", "k": 10, "space": "text", "filter": ["category=Apparel/Dress", "price=10..40"]}
    hits = client.get("/api/search", params=params).json()["hits"]
    assert hits and all(h["product"]["category"] == ["Apparel", "Dress"] for h in hits)
    assert all(10 <= h["product"]["price"] <= 40 for h in hits)
    hits = client.get("/api/search", params={"text": "shirt", "filter": "exclude-supplier=S1"}).json()["hits"]
    assert hits and all(h["product"]["supplier_id"] != "S1" for h in hits)
    expect_error(client.get("/api/search", params={"text": "x", "filter": "colour=red"}), 400, "bad filter")
    expect_error(
        client.get("/api/search", params={"text": "x", "k": 101}), 400, "k must be between 1 and 100"
    )
    expect_error(client.get("/api/search", params={"text": "x", "k": 0}), 400, "k must be")
    expect_error(client.get("/api/search", params={"text": "x", "k": "ten"}), 422, "k")
    expect_error(client.get("/api/search", params={"text": ""}), 422, "text")
    expect_error(client.get("/api/search"), 422, "text")
    expect_error(client.get("/api/search", params={"text": "x", "space": "nope"}), 400, "no space 'nope'")


def test_image_search_and_image_text(client: TestClient) -> None:
    files = {"image": ("q.png", png_bytes("dress", "blue"), "image/png")}
    body = client.post("/api/search/image", files=files, data={"k": "5", "space": "image"}).json()
    assert body["kind"] == "image" and len(body["hits"]) == 5
    assert all(h["product"]["attributes"]["baseColour"] == "Blue" for h in body["hits"])
    both = client.post("/api/search/image", files=files, data={"k": "4", "text": "blue dress"}).json()
    assert both["kind"] == "image+text" and both["query"] == "blue dress"
    assert all("fused" in h["scores"] for h in both["hits"])
    filt = client.post(
        "/api/search/image",
        files=files,
        data={"k": "3", "filter": ["category=Apparel/Watch"], "space": "image"},
    ).json()
    assert all(h["product"]["category"][-1] == "Watch" for h in filt["hits"])


def test_image_search_needs_a_model_for_image_text(tmp_path: Path) -> None:
    from serve_fakes import build_site

    frozen = build_site(tmp_path / "frozen", n=20)
    with make_client(frozen) as c:
        files = {"image": ("q.png", png_bytes(), "image/png")}
        expect_error(c.post("/api/search/image", files=files, data={"text": "red"}), 400, "trained model")
        assert c.get("/api/info").json()["features"]["image_text"] is False


def test_uploads_are_checked(client: TestClient) -> None:
    from serve_fakes import bomb_png

    def post(data: bytes, name: str = "q.png") -> object:
        return client.post("/api/search/image", files={"image": (name, data, "image/png")})

    expect_error(post(b"this is not an image at all"), 415, "not an image")
    expect_error(post(png_bytes()[:60]), 415)  # truncated
    expect_error(post(b""), 400, "empty")
    expect_error(post(bomb_png()), 413, "pixels")
    expect_error(client.post("/api/search/image", data={"k": "3"}), 422, "image")
    expect_error(
        client.post(
            "/api/search/image", files={"image": ("q.png", png_bytes(), "image/png")}, data={"k": "500"}
        ),
        400,
        "k must be",
    )


def test_upload_size_limits(site: FakeSite) -> None:
    with make_client(site, max_upload_bytes=4096) as c:
        big = png_bytes() + b"\0" * 8000  # a valid PNG with trailing bytes, over 4 KiB
        expect_error(c.post("/api/search/image", files={"image": ("q.png", big, "image/png")}), 413, "limit")
        huge = b"\0" * (200 * 1024)  # over the body limit itself: refused by Content-Length
        expect_error(c.post("/api/search/image", files={"image": ("q.png", huge, "image/png")}), 413, "limit")
        ok = c.post("/api/search/image", files={"image": ("q.png", png_bytes(), "image/png")})
        assert ok.status_code == 200

        def chunks() -> object:
            for _ in range(300):
                yield b"x" * 1024

        expect_error(
            c.post("/api/events", content=chunks(), headers={"Content-Type": "application/json"}), 413
        )
    with make_client(site, max_image_pixels=100) as c:
        expect_error(
            c.post("/api/search/image", files={"image": ("q.png", png_bytes(), "image/png")}), 413, "over"
        )


def test_similar(client: TestClient) -> None:
    body = client.get("/api/similar", params={"id": "p0", "k": 4, "space": "image"}).json()
    assert body["kind"] == "similar" and body["query"] == "similar:p0"
    assert len(body["hits"]) == 4 and "p0" not in {h["id"] for h in body["hits"]}
    assert all(h["product"]["attributes"]["baseColour"] == "Red" for h in body["hits"])
    flt = client.get("/api/similar", params={"id": "p0", "filter": "supplier=S2", "space": "image"}).json()
    assert flt["hits"] and all(h["product"]["supplier_id"] == "S2" for h in flt["hits"])
    expect_error(client.get("/api/similar", params={"id": "nope"}), 404, "no product with id 'nope'")
    expect_error(
        client.get("/api/similar", params={"id": "noimg", "space": "image"}), 400, "no vector in space"
    )
    expect_error(client.get("/api/similar", params={"id": "../../etc/passwd"}), 404)


def test_product_detail_and_image(client: TestClient, site: FakeSite) -> None:
    p = client.get("/api/product", params={"id": "p3"}).json()
    assert p["title"] == "men black shirt model 3" and "style number 3" in p["description"]
    assert p["supplier_id"] == "S1" and p["image_url"] == "/api/image?id=p3"
    img = client.get(p["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.content == (site.images / "p3.png").read_bytes()
    expect_error(client.get("/api/product", params={"id": "nope"}), 404)
    expect_error(client.get("/api/image", params={"id": "noimg"}), 404, "no image")
    expect_error(client.get("/api/image", params={"id": "../catalog/catalog.json"}), 404)
    assert client.get("/api/product", params={"id": "noimg"}).json()["image_url"] is None


def test_image_paths_outside_the_store_are_never_served(
    write_client: TestClient, writable_site: FakeSite
) -> None:
    """A catalogue row pointing outside the image store (relative, absolute or via a symlink) is refused."""
    from samestyle.catalog.store import read_catalog, write_catalog
    from samestyle.types import ImageStatus, Product

    secret = writable_site.root / "secret.png"
    secret.write_bytes(png_bytes())
    (writable_site.images / "link.png").symlink_to(secret)
    (writable_site.images / "notes.txt").write_text("not an image")
    catalog = read_catalog(writable_site.catalog)
    evil = {
        "rel": "../secret.png",
        "abs": str(secret),
        "link": "link.png",
        "txt": "notes.txt",
        "dir": ".",
    }
    extra = [Product(id=k, title=f"evil {k}", image=v, image_status=ImageStatus.OK) for k, v in evil.items()]
    write_catalog(writable_site.catalog, [*catalog.products, *extra], image_root=writable_site.images)
    with make_client(writable_site) as c:
        for pid in evil:
            expect_error(c.get("/api/image", params={"id": pid}), 404, "no image")
        assert c.get("/api/image", params={"id": "p1"}).status_code == 200
        for path in (
            "/static/../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/static/..%2fapp.py",
        ):
            resp = c.get(path)
            assert resp.status_code == 404 and "root:" not in resp.text


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert (
        page.status_code == 200
        and 'id="results"' in page.text
        and "text/html" in page.headers["content-type"]
    )
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    expect_error(client.get("/static/nope.js"), 404)
    expect_error(client.get("/no/such/route"), 404)
    expect_error(client.post("/healthz"), 405)


def test_events_are_logged_in_the_click_log_format(client: TestClient, tmp_path: Path) -> None:
    headers = {"X-Visitor-Id": "v-1", "X-Session-Id": "s-1"}
    served = client.get("/api/search", params={"text": "blue dress", "k": 4}, headers=headers).json()
    anon = client.get("/api/search", params={"text": "blue dress", "k": 4}).json()  # no visitor: not logged
    assert anon["variant"] == "default"
    pid = served["hits"][2]["id"]
    click = {"event": "click", "product_id": pid, "visitor_id": "v-1", "request_id": served["request_id"]}
    assert client.post("/api/events", json=click).json() == {"logged": True, "variant": "default"}
    cart = {
        "event": "cart",
        "product_id": pid,
        "visitor_id": "v-1",
        "session_id": "s-1",
        "query": "blue dress",
    }
    assert client.post("/api/events", json=cart).status_code == 200
    expect_error(client.post("/api/events", json={**click, "request_id": "unknown"}), 400, "position")
    expect_error(client.post("/api/events", json={**click, "event": "view"}), 422, "event")
    expect_error(client.post("/api/events", json={**click, "variant": "B"}), 422, "variant")
    expect_error(
        client.post("/api/events", content=b"{not json", headers={"Content-Type": "application/json"}), 422
    )
    events, rejects = read_click_log(tmp_path / "events.jsonl")
    assert not rejects
    kinds = [e.event.value for e in events]
    assert kinds == ["impression"] * 4 + ["click", "cart"]
    assert {e.session_id for e in events} == {"s-1"} and {e.variant for e in events} == {"default"}
    clicked = events[4]
    assert (clicked.product_id, clicked.position, clicked.query) == (pid, 3, "blue dress")


def test_errors_are_json_without_internals(site: FakeSite) -> None:
    with make_client(site) as c:
        c2 = TestClient(c.app, raise_server_exceptions=False)
        service = c.app.state.samestyle.control.service  # type: ignore[attr-defined]

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internal detail")

        service.search_text = boom
        resp = c2.get("/api/search", params={"text": "x"})
        expect_error(resp, 500, "internal error")
        assert "secret" not in resp.text


def test_upsert_and_delete(write_client: TestClient, writable_site: FakeSite) -> None:
    c = write_client
    key = {"X-API-Key": API_KEY}
    product = {
        "title": "women purple dress special",
        "description": "a new one",
        "category": ["Apparel", "Dress"],
        "attributes": {"baseColour": "Purple"},
        "supplier_id": "S9",
        "price": 42.0,
        "image_base64": base64.b64encode(png_bytes("dress", "blue")).decode(),
    }
    resp = c.put("/api/products", params={"id": "new-1"}, json=product, headers=key)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": "new-1",
        "created": True,
        "spaces": ["image", "joint-fused", "joint-image", "joint-text", "text"],
    }
    hits = c.get("/api/search", params={"text": "purple dress special", "k": 1, "space": "text"}).json()[
        "hits"
    ]
    assert hits[0]["id"] == "new-1" and hits[0]["product"]["image_url"] == "/api/image?id=new-1"
    detail = c.get("/api/product", params={"id": "new-1"}).json()
    assert detail["description"] == "a new one" and detail["price"] == 42.0
    assert c.get("/api/image", params={"id": "new-1"}).content == png_bytes("dress", "blue")
    similar = c.get("/api/similar", params={"id": "new-1", "space": "image", "k": 3}).json()["hits"]
    assert all(h["product"]["attributes"].get("baseColour") == "Blue" for h in similar)
    # replace without an image: the image vectors go, the text stays searchable
    again = {"title": "women purple dress renamed", "category": ["Apparel", "Dress"]}
    resp = c.put("/api/products", params={"id": "new-1"}, json=again, headers=key)
    assert resp.json()["created"] is False and "image" not in resp.json()["spaces"]
    expect_error(c.get("/api/similar", params={"id": "new-1", "space": "image"}), 400, "no vector")
    # an image already in the store, by relative path
    resp = c.put(
        "/api/products", params={"id": "new-2"}, json={"title": "copy", "image": "p1.png"}, headers=key
    )
    assert resp.status_code == 200 and "image" in resp.json()["spaces"]
    # persisted: a fresh app over the same folders sees the products
    with make_client(writable_site) as fresh:
        assert (
            fresh.get("/api/product", params={"id": "new-1"}).json()["title"] == "women purple dress renamed"
        )
        assert fresh.get("/api/image", params={"id": "new-2"}).status_code == 200
    assert c.delete("/api/products", params={"id": "new-1"}, headers=key).json() == {
        "id": "new-1",
        "deleted": True,
    }
    expect_error(c.get("/api/product", params={"id": "new-1"}), 404)
    expect_error(c.delete("/api/products", params={"id": "new-1"}, headers=key), 404)
    hits = c.get("/api/search", params={"text": "purple dress renamed", "k": 5, "space": "text"}).json()[
        "hits"
    ]
    assert "new-1" not in {h["id"] for h in hits}


def test_writes_are_protected_and_validated(write_client: TestClient, site: FakeSite) -> None:
    from serve_fakes import bomb_png

    c = write_client
    body = {"title": "x"}
    expect_error(c.put("/api/products", params={"id": "a"}, json=body), 401, "X-API-Key")
    expect_error(
        c.put("/api/products", params={"id": "a"}, json=body, headers={"X-API-Key": "wrong-key-123"}), 401
    )
    expect_error(c.delete("/api/products", params={"id": "p1"}), 401)
    key = {"X-API-Key": API_KEY}

    def put(payload: dict[str, object]) -> object:
        return c.put("/api/products", params={"id": "a"}, json=payload, headers=key)

    expect_error(put({"title": "x", "image_base64": "!!!"}), 400, "base64")
    expect_error(put({"title": "x", "image_base64": base64.b64encode(bomb_png()).decode()}), 413)
    expect_error(put({"title": "x", "image_base64": base64.b64encode(b"plain text").decode()}), 415)
    expect_error(
        put({"title": "x", "image": "../catalog/catalog.json"}), 400, "not in the catalogue's image store"
    )
    expect_error(put({"title": "x", "image": "/etc/passwd"}), 400, "not in the catalogue's image store")
    expect_error(put({"title": "x", "image": "p1.png", "image_base64": "AAAA"}), 400, "not both")
    expect_error(put({"title": ""}), 422, "title")
    expect_error(put({"title": "x", "price": -1}), 422, "price")
    expect_error(put({"title": "x", "unknown": 1}), 422, "unknown")
    assert c.get("/api/product", params={"id": "a"}).status_code == 404
    with make_client(site, api_key=None) as ro:
        expect_error(ro.put("/api/products", params={"id": "a"}, json=body), 403, "SAMESTYLE_API_KEY")
        assert ro.get("/api/info").json()["writes_enabled"] is False


def test_settings_validation() -> None:
    from samestyle.errors import ConfigError
    from samestyle.serve.settings import ServeSettings, VariantSpec

    with pytest.raises(ConfigError, match="max_k"):
        ServeSettings(max_k=0)
    with pytest.raises(ConfigError, match="too short"):
        ServeSettings(api_key="short")
    assert VariantSpec.parse("B=work/idx@text") == VariantSpec("B", Path("work/idx"), "text")
    assert VariantSpec.parse("A=work/idx").space is None
    for bad in ("noequals", "=x", "bad name=x", "A="):
        with pytest.raises(ConfigError, match="variant"):
            VariantSpec.parse(bad)
    with pytest.raises(ConfigError, match="unique"):
        ServeSettings(variants=(VariantSpec("A", Path("x")), VariantSpec("A", Path("y"))))
