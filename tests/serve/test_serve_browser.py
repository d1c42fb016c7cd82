"""The web page in a real browser: Playwright drives Debian's chromium against the app on loopback.

Set ``SAMESTYLE_SCREENSHOTS=docs`` to write ``docs/screenshot-search.png`` (the README's picture) from
:func:`test_like_refines_the_results`; by default the screenshot goes to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_fakes import FakeSite, make_client, png_bytes

from samestyle.mining.clicklog import read_click_log

CHROMIUM = os.environ.get("SAMESTYLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (the 'serve' extra)"
)
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no chromium at {CHROMIUM}: install it with 'apt-get install chromium' (.ci/run does this)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def live(site: FakeSite, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from samestyle.serve.live import running

    events = tmp_path / "events.jsonl"
    with make_client(site, text_space="text", events_path=events) as client, running(client.app) as url:  # type: ignore[arg-type]
        yield url, events


@pytest.fixture
def page(browser: Any, live: tuple[str, Path]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(live[0] + "/")
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _cards(page: Any) -> list[str]:
    return [c.get_attribute("data-id") for c in page.query_selector_all("#results .card")]


def _search(page: Any, text: str) -> list[str]:
    page.select_option("#f-k", "12")
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_selector("#results .card")
    return _cards(page)


def test_type_a_query_and_see_results(page: Any, live: tuple[str, Path]) -> None:
    ids = _search(page, "yellow watch")
    assert len(ids) == 12
    titles = page.locator("#results .card .title").all_inner_texts()
    assert sum("yellow" in t or "watch" in t for t in titles) >= 6
    assert page.locator("#results .card img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "12 results" in page.inner_text("#status")
    assert not page.is_visible("#anchor") and not page.is_visible("#liked")
    assert page.locator("#results .card .chip").first.inner_text().startswith("text ")
    page.locator("#results .card .title").first.click()  # a click on a result is logged
    page.wait_for_timeout(300)
    events, _ = read_click_log(live[1])
    assert [e.event.value for e in events].count("click") == 1 and events[-1].query == "yellow watch"


def test_upload_an_image(page: Any, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes("dress", "green"))
    page.select_option("#f-k", "12")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#results .card")
    assert page.is_visible("#anchor") and "photo" in page.inner_text("#anchor-title")
    assert len(_cards(page)) == 12


def test_more_like_this(page: Any) -> None:
    first = _search(page, "red shirt")
    anchor = first[0]
    page.locator("#results .card .more").first.click()
    page.wait_for_function(
        "id => !Array.from(document.querySelectorAll('#results .card')).some(c => c.dataset.id === id)",
        arg=anchor,
    )
    after = _cards(page)
    assert after and anchor not in after and after != first
    assert page.is_visible("#anchor")


def test_like_refines_the_results(page: Any) -> None:
    before = _search(page, "blue dress")
    page.locator("#results .card .like").nth(1).click()
    page.wait_for_function(
        "before => { const ids = Array.from(document.querySelectorAll('#results .card'))"
        ".map(c => c.dataset.id);"
        " return ids.length > 0 && ids.join() !== before.join(); }",
        arg=before,
    )
    after = _cards(page)
    assert not set(after) & set(before)  # refinement shows new products, not the ones already seen
    assert page.is_visible("#liked")


def test_screenshot(page: Any, tmp_path: Path) -> None:
    """The README's picture: a text search over the generated catalogue."""
    out = Path(os.environ.get("SAMESTYLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.select_option("#f-k", "12")
    _search(page, "red dress")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    path = out / "screenshot-search.png"
    page.screenshot(path=str(path), full_page=False)
    from PIL import Image

    with Image.open(path) as im:
        assert (
            im.size == (1280, 900) and len(im.convert("L").getcolors(maxcolors=4096) or ()) > 20
        )  # not a blank page
