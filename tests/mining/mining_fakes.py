"""Small generated catalogues and hand-made click logs for the mining tests (nothing is downloaded)."""

from __future__ import annotations

import itertools
import random

from samestyle.catalog.store import Catalog
from samestyle.mining.clicklog import ClickEvent, EventType
from samestyle.types import Product

GENDERS = ("Men", "Women")
COLOURS = ("Blue", "Black", "Red", "White")
LEAVES = (
    ("Apparel", "Topwear", "Shirts"),
    ("Apparel", "Topwear", "Tshirts"),
    ("Footwear", "Shoes", "Sneakers"),
)
USAGES = ("Casual", "Formal")
BRANDS = ("Acme", "Zeta", "Orbit", "Nova", "Peak", "Lumen")


def generated_catalog(per_cell: int = 3, seed: int = 0) -> Catalog:
    """Products for every gender x colour x leaf x usage cell, Myntra-like titles ("Acme Men Blue Shirt")."""
    rng = random.Random(seed)
    products: list[Product] = []
    cells = itertools.product(GENDERS, COLOURS, LEAVES, USAGES)
    for n, (gender, colour, leaf, usage) in enumerate(cells):
        for k in range(per_cell):
            brand = rng.choice(BRANDS)
            noun = leaf[-1].rstrip("s")
            products.append(
                Product(
                    id=f"p{n:03d}-{k}",
                    title=f"{brand} {gender} {colour} {usage} {noun}",
                    category=leaf,
                    attributes={"gender": gender, "baseColour": colour, "usage": usage},
                )
            )
    return Catalog(products)


def hand_catalog() -> Catalog:
    """Six products for the hand-made log in ``hand_log`` (see test_mining_miner.py for what each is for)."""
    shirts = ("Apparel", "Topwear", "Shirts")
    men_blue = {"gender": "Men", "baseColour": "Blue"}
    return Catalog(
        [
            Product("s1", "Acme Men Blue Shirt", category=shirts, attributes=men_blue),
            Product("s2", "Zeta Men Blue Shirt", category=shirts, attributes=men_blue),
            Product("s4", "Orbit Classic Men Blue Oxford Formal Shirt", category=shirts, attributes=men_blue),
            Product("s5", "Orbit Classic Oxford Formal Slim Fit Shirt", category=shirts, attributes=men_blue),
            Product(
                "w1",
                "Acme Women Red Shirt",
                category=shirts,
                attributes={"gender": "Women", "baseColour": "Red"},
            ),
            Product(
                "m1",
                "Zeta Men Blue Shirt Tee",
                category=("Apparel", "Topwear", "Tshirts"),
                attributes=men_blue,
            ),
        ]
    )


def _ev(session: str, query: str, pid: str, event: str, t: float, pos: int | None = 1) -> ClickEvent:
    return ClickEvent(session, query, pid, EventType(event), t, pos, "v1", "A")


def hand_log() -> list[ClickEvent]:
    """A log whose mined pairs are known exactly (documented in test_mining_miner.py)."""
    q = "Men Blue Shirts"
    return [
        _ev("S1", q, "s1", "impression", 0.0),
        _ev("S1", q, "s2", "impression", 0.0, 2),
        _ev("S1", q, "s1", "click", 1.0),
        _ev("S1", q, "s2", "click", 2.0, 2),
        _ev("S2", "men  blue shirts!", "s1", "click", 10.0),  # same query after normalisation
        _ev("S2", q, "s2", "click", 11.0, 2),
        _ev("S2", q, "s2", "cart", 12.0, None),
        _ev("S2", q, "s2", "order", 13.0, None),
        _ev("S3", q, "s1", "click", 20.0),
        _ev("S3", q, "w1", "click", 21.0, 3),  # near miss: removed by query relevance only
        _ev("S4", q, "s2", "click", 30.0),
        _ev("S4", q, "m1", "click", 31.0, 4),  # other leaf category: removed by the category constraint only
        _ev("S5", q, "s1", "click", 40.0),
        _ev("S5", q, "s4", "click", 41.0, 5),  # kept: relevant, same category, title Jaccard 3/8
        _ev("S5", q, "s5", "click", 42.0, 6),  # removed by title similarity only (Jaccard 1/10 with s1)
        _ev("S6", "blue shirt", "s1", "click", 50.0),  # a second query: weights add up
        _ev("S6", "blue shirt", "s2", "click", 51.0, 2),
        _ev("S7", "", "s1", "click", 60.0),  # browse: ignored
        _ev("S7", "", "s2", "click", 61.0, 2),
        _ev("S8", q, "s1", "click", 70.0),
        _ev("S8", q, "zz-unknown", "click", 71.0, 2),  # not in the catalogue: counted, skipped
    ]
