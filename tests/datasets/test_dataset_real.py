"""The adapters on the real public data in ../shared/data (skipped when it is absent), on small slices."""

from __future__ import annotations

import pytest
from dataset_fakes import real_data_or_skip

from samestyle.datasets.grocery import grocery_catalog_products, grocery_photos
from samestyle.datasets.kagl import load_kagl
from samestyle.datasets.matching import load_matching
from samestyle.datasets.myntra import load_myntra_split, myntra_products

pytestmark = pytest.mark.real


def test_myntra_slice() -> None:
    data = real_data_or_skip("myntra_styles_full.csv.gz", "myntra_small_images_60x80.tar.gz")
    products, root, _ = myntra_products(data, limit=200)
    assert len(products) == 200 and len({p.id for p in products}) == 200
    assert all(p.id.isdigit() and p.title and len(p.category) == 3 for p in products)
    assert all(p.image == f"{p.id}.jpg" and p.supplier_id is None for p in products)
    assert all(len(p.attributes.get("year", "2011")) == 4 for p in products)
    assert sum((root / p.image).is_file() for p in products if p.image) >= 195  # 44,072 of 44,446 have one
    first = products[0]
    assert first.id == "15970" and first.title == "Turtle Check Men Navy Blue Shirt"
    assert first.category == ("Apparel", "Topwear", "Shirts") and first.attributes["year"] == "2011"


def test_myntra_224_slice() -> None:
    data = real_data_or_skip("myntra_styles_full.csv.gz", "myntra_224_images.tar.gz")
    products, root, _ = myntra_products(data, images="224", limit=200)
    assert len(products) == 200
    assert all(10000 <= int(p.id) <= 21539 and (root / f"{p.id}.jpg").is_file() for p in products)


def test_myntra_resolution_ab_products() -> None:
    """Both arms of the resolution A/B hold the same 9,572 products (11 224 px ids lack a 60x80 photo)."""
    data = real_data_or_skip(
        "myntra_styles_full.csv.gz", "myntra_small_images_60x80.tar.gz", "myntra_224_images.tar.gz"
    )
    arms = {s: myntra_products(data, images=s, only_with_images=("60x80", "224")) for s in ("60x80", "224")}
    ids = {s: [p.id for p in products] for s, (products, _, _) in arms.items()}
    assert ids["60x80"] == ids["224"] and len(ids["224"]) == 9572
    for products, root, _ in arms.values():
        assert all((root / p.image).is_file() for p in products[:50] if p.image)


def test_kagl() -> None:
    data = real_data_or_skip("marqo_kagl_qrels.tar.gz")
    q = load_kagl(data)
    assert len(q.text_to_image) == 2000 and len(q.text_to_image_ids) == 2774
    assert len(q.attribute_tasks) == 6
    assert len(q.attribute_tasks["fine-category-to-product"]) == 142
    assert q.doc_weights("usage-to-product") == {"image": 0.9, "text": 0.1}


def test_split_holds_out_kagl() -> None:
    data = real_data_or_skip("myntra_styles_full.csv.gz", "marqo_kagl_qrels.tar.gz")
    split = load_myntra_split(data)
    kagl = load_kagl(data).text_to_image_ids
    test = set(split["test"])
    assert kagl <= test
    assert sum(len(v) for v in split.values()) == 44_446 - 7  # 7 rows have no title
    assert not set(split["train"]) & (test | set(split["val"]))
    assert 1500 < len(split["val"]) < 2600 and len(test) > len(kagl) + 1500


def test_grocery() -> None:
    data = real_data_or_skip("grocery_trainval.tar.gz")
    products, root, rejects = grocery_catalog_products(data)
    assert len(products) == 81 and not rejects
    assert len({p.category[0] for p in products}) == 43
    assert all(p.description and p.image and (root / p.image).is_file() for p in products)
    train, val = grocery_photos("train", data), grocery_photos("val", data)
    assert (len(train), len(val)) == (2640, 296)
    assert len({p.fine_id for p in train}) == 81 and all(p.path.is_file() for p in val)


@pytest.mark.parametrize(
    ("name", "split", "pairs", "positives"),
    [("abt-buy", "valid", 1916, 206), ("amazon-google", "valid", 2293, 234),
     ("walmart-amazon", "valid", 2049, 193), ("wdc", "valid", 1808, 464), ("wdc", "train", 7230, 1854)],
)  # fmt: skip
def test_matching(name: str, split: str, pairs: int, positives: int) -> None:
    data = real_data_or_skip("ditto_trainvalid.tar.gz")
    s = load_matching(name, split, data)
    assert (len(s.pairs), s.positives, len(s.rejects)) == (pairs, positives, 0)
