"""Screenshots of the web page over any index, taken by Playwright driving Debian's chromium on loopback.

For the real Myntra catalogue the pictures go to a git-ignored folder (real catalogue images never go
into the repository); the committed ``docs/screenshot-search.png`` comes from the browser test over the
generated catalogue (``SAMESTYLE_SCREENSHOTS=docs pytest tests/serve/test_serve_browser.py -k screenshot``).

    .venv/bin/python benchmarks/serve_screenshot.py --index .cache/samestyle/work/myntra/index-joint \\
        --catalog .cache/samestyle/work/myntra/catalog --query "men navy blue shirts" \\
        --out-dir .cache/samestyle/screenshots
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from playwright.sync_api import sync_playwright

from samestyle.search.service import SearchService
from samestyle.serve import ServeSettings, create_app
from samestyle.serve.live import running


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--catalog")
    ap.add_argument("--query", default="men navy blue shirts")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out-dir", default=".cache/samestyle/screenshots")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = ServeSettings(catalog_dir=Path(args.catalog) if args.catalog else None, warmup=False)
    app = create_app(SearchService.open(args.index), settings)
    with running(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.fill("#q", args.query)
        page.press("#q", "Enter")
        page.wait_for_selector("#results .card", timeout=120_000)
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.screenshot(path=str(out / "myntra-search.png"))
        page.locator("#results .card .more").first.click()
        page.wait_for_selector("#anchor:not([hidden])")
        page.wait_for_timeout(1500)
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.screenshot(path=str(out / "myntra-more-like-this.png"))
        before = page.locator("#results .card").first.get_attribute("data-id")
        page.locator("#results .card .like").first.click()
        page.wait_for_function(
            "b => document.querySelector('#results .card') && "
            "document.querySelector('#results .card').dataset.id !== b",
            arg=before,
        )
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.screenshot(path=str(out / "myntra-refined.png"))
        browser.close()
    print(f"wrote {', '.join(str(out / n) for n in ('myntra-search.png', 'myntra-more-like-this.png'))}, ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
