"""The fixed held-out split of the Myntra catalogue (:func:`myntra_split`), deterministic:

1. Every product in the KAGL text->image ground truth goes to **test** (so the KAGL protocol is always
   scored on products no model was trained on). With ``groups`` given, every product whose group
   contains such a product goes to test too.
2. Every other product: ``b = int(sha1(key.encode("utf-8")).hexdigest(), 16) % 100`` where ``key`` is
   the product's group (``groups[id]``) or, without groups, its id. ``b < 5``: **val**; ``5 <= b < 10``:
   **test**; else **train**. So about 5 % val, 5 % test plus the KAGL products, 90 % train.

:func:`samestyle.datasets.myntra.load_myntra_split` applies it to the real catalogue, grouped by
:func:`title_group`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping

VAL_BUCKETS = 5
TEST_BUCKETS = 5


def title_group(title: str) -> str:
    """The split group of a title: case-folded, whitespace collapsed."""
    return " ".join(title.casefold().split())


def _bucket(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 100


def myntra_split(
    ids: Iterable[str], kagl_ids: Collection[str], groups: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """Split product ids into ``train`` / ``val`` / ``test`` by the fixed rule in the module docstring.

    Args:
        ids: the product ids (duplicates are kept once; order is preserved within each split).
        kagl_ids: ids in the KAGL text->image ground truth; always test.
        groups: optional id -> group key; a group is never split (ids missing here are their own group).
    """
    unique = list(dict.fromkeys(ids))
    groups = groups or {}
    key = {pid: groups.get(pid, pid) for pid in unique}
    kagl = set(kagl_ids)
    test_groups = {key[pid] for pid in unique if pid in kagl}
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for pid in unique:
        if pid in kagl or key[pid] in test_groups:
            split["test"].append(pid)
            continue
        b = _bucket(key[pid])
        split["val" if b < VAL_BUCKETS else "test" if b < VAL_BUCKETS + TEST_BUCKETS else "train"].append(pid)
    return split


__all__ = ["TEST_BUCKETS", "VAL_BUCKETS", "myntra_split", "title_group"]
