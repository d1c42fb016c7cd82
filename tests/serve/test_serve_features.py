"""Issue D's features over HTTP: "like this but ...", refinement sessions, duplicates, other suppliers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serve_fakes import expect_error, make_client, png_bytes


def test_other_suppliers_and_shared_attributes(client: TestClient) -> None:
    hits = client.get("/api/similar", params={"id": "p0", "other_suppliers": True, "k": 8}).json()["hits"]
    assert len(hits) == 8 and all(h["product"]["supplier_id"] != "S1" for h in hits)  # p0 is S1's
    own = client.get("/api/similar", params={"id": "p0", "k": 30}).json()["hits"]
    assert any(h["product"]["supplier_id"] == "S1" for h in own)
    shared = [h["shared"] for h in own if h["shared"]]
    assert shared and all(set(s) <= {"baseColour", "gender", "category"} for s in shared)
    assert any(s.get("category") == "Apparel/Shirt" for s in shared)


def test_compose_by_product_and_by_image(client: TestClient) -> None:
    body = {"product_id": "p0", "modifier": "in blue", "k": 5}
    resp = client.post("/api/search/compose", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["kind"] == "compose" and out["query"] == "in blue" and len(out["hits"]) == 5
    assert "p0" not in {h["id"] for h in out["hits"]}
    for method in ("delta", "sum"):
        assert client.post("/api/search/compose", json={**body, "method": method}).status_code == 200
    expect_error(client.post("/api/search/compose", json={**body, "method": "nope"}), 400, "fused")
    expect_error(client.post("/api/search/compose", json={**body, "product_id": "zz"}), 404)
    expect_error(client.post("/api/search/compose", json={**body, "modifier": ""}), 422, "modifier")
    files = {"image": ("q.png", png_bytes("shoe", "green"), "image/png")}
    resp = client.post("/api/search/compose/image", files=files, data={"modifier": "in black", "k": "4"})
    assert resp.status_code == 200 and len(resp.json()["hits"]) == 4
    expect_error(
        client.post("/api/search/compose/image", files=files, data={"modifier": "x", "method": "delta"}), 400
    )
    bad = {"image": ("q.png", b"not an image", "image/png")}
    expect_error(client.post("/api/search/compose/image", files=bad, data={"modifier": "x"}), 415)


def test_refinement_session(client: TestClient) -> None:
    start = client.post("/api/sessions", json={"text": "blue dress", "k": 6}).json()
    sid = start["session_id"]
    assert sid and start["kind"] == "session" and len(start["hits"]) == 6
    shown = {h["id"] for h in start["hits"]}
    liked = start["hits"][0]["id"]
    r1 = client.post(f"/api/sessions/{sid}/refine", json={"liked": [liked], "k": 6})
    assert r1.status_code == 200, r1.text
    round1 = r1.json()
    assert round1["kind"] == "refine" and round1["query"] == "blue dress" and round1["session_id"] == sid
    assert len(round1["hits"]) == 6 and not shown & {h["id"] for h in round1["hits"]}
    shown |= {h["id"] for h in round1["hits"]}
    disliked = round1["hits"][0]["id"]
    round2 = client.post(f"/api/sessions/{sid}/refine", json={"disliked": [disliked], "k": 6}).json()
    assert not shown & {h["id"] for h in round2["hits"]}
    expect_error(client.post("/api/sessions/nope/refine", json={"liked": []}), 404, "session")
    expect_error(client.post(f"/api/sessions/{sid}/refine", json={"liked": ["zz"]}), 404, "zz")
    expect_error(client.post("/api/sessions", json={"text": "x", "product_id": "p1"}), 400, "exactly one")
    expect_error(client.post("/api/sessions", json={}), 400, "exactly one")
    expect_error(client.post("/api/sessions", json={"product_id": "zz"}), 404)
    by_product = client.post("/api/sessions", json={"product_id": "p3", "k": 4}).json()
    assert by_product["query"] == "similar:p3" and "p3" not in {h["id"] for h in by_product["hits"]}
    files = {"image": ("q.png", png_bytes("watch", "yellow"), "image/png")}
    by_image = client.post("/api/sessions/image", files=files, data={"k": "4"})
    assert by_image.status_code == 200 and by_image.json()["session_id"]


def test_refine_in_the_arms_text_space(site: object) -> None:
    """An A/B arm's own text space is used by text sessions too (start_session knows only the default)."""

    with make_client(site, text_space="text") as c:  # type: ignore[arg-type]
        start = c.post("/api/sessions", json={"text": "green shoe", "k": 5}).json()
        assert all("green" in h["product"]["title"] or "shoe" in h["product"]["title"] for h in start["hits"])
        sid = start["session_id"]
        liked = next(h["id"] for h in start["hits"] if "green shoe" in h["product"]["title"])
        more = c.post(f"/api/sessions/{sid}/refine", json={"liked": [liked], "k": 5}).json()["hits"]
        assert sum("green" in h["product"]["title"] for h in more) >= 3


@pytest.mark.parametrize("supplier", [None, "S2"])
def test_duplicates(client: TestClient, supplier: str | None) -> None:
    params = {"limit": 5} if supplier is None else {"limit": 5, "supplier": supplier}
    resp = client.get("/api/duplicates", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["offset"] == 0 and len(body["groups"]) <= 5 and body["total_groups"] >= len(body["groups"])
    for group in body["groups"]:
        assert len(group["ids"]) >= 2 and [p["id"] for p in group["products"]] == group["ids"]
        if supplier:
            assert all(p["supplier_id"] == supplier for p in group["products"])
    ids = {i for g in body["groups"] for i in g["ids"]}
    assert all(link["a"] in ids and link["b"] in ids for link in body["links"])
    if body["total_groups"] > 1:
        page2 = client.get("/api/duplicates", params={**params, "offset": 1, "limit": 1}).json()
        assert page2["groups"][0]["ids"] == body["groups"][1]["ids"]
    expect_error(client.get("/api/duplicates", params={"limit": 0}), 422)
