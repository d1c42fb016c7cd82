"""The ``recognizer`` and ``categorize`` commands (category recognition); registered by ``samestyle.cli``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from samestyle.errors import ConfigError


def _cmd_recognizer(args: argparse.Namespace) -> int:
    from samestyle.models.recognizer import RecognizerConfig
    from samestyle.pipeline.recognize import fit_recognizer

    attributes = tuple(a for a in (args.attributes or "").split(",") if a)
    dense_norm = 0.0 if args.words_only else args.dense_norm
    cfg = RecognizerConfig(C=args.C, dense_norm=dense_norm, attributes=attributes)
    levels = args.level or ["category2", "category3"]
    metrics = fit_recognizer(
        args.catalog, args.embeddings, args.out, run_dir=args.run, split=args.split, levels=levels, cfg=cfg
    )
    for key, value in metrics.items():
        if isinstance(value, dict) and "acc" in value:
            acc, f1, n = value["acc"], value["macro_f1"], value["n"]
            print(f"{key:>20}: accuracy {acc:.4f}, macro-F1 {f1:.4f} (n={n:.0f})")
    print(f"wrote {args.out}/recognizer.safetensors and metrics.json")
    return 0


def _cmd_categorize(args: argparse.Namespace) -> int:
    from samestyle.models.recognizer import CategoryRecognizer
    from samestyle.search.categorize import categorize
    from samestyle.search.service import SearchService

    if args.image is not None and args.text is None:
        raise ConfigError("--image needs --text: a new product is categorised by its title and photo")
    if (args.out is not None) != (args.product_id is None and args.text is None):
        raise ConfigError("give --product-id, or --text (+ --image), or --out FILE for every product")
    service = SearchService.open(args.index)
    recognizer = CategoryRecognizer.load(args.recognizer)
    if args.out is not None:
        return _categorize_all(service, recognizer, args.out)
    attributes = _attributes(args.attribute or [])  # with a product id, categorize says they go with --text
    top = categorize(
        service, recognizer, product_id=args.product_id, text=args.text, image=args.image,
        attributes=attributes, k=args.k,
    )  # fmt: skip
    if args.json:
        out: dict[str, Any] = {lv: [{"label": c, "score": s} for c, s in best] for lv, best in top.items()}
        print(json.dumps(out, indent=2))
        return 0
    for level, best in top.items():
        print(f"{level}: " + ", ".join(f"{c} ({s:+.2f})" for c, s in best))
    return 0


def _attributes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--attribute takes NAME=VALUE, not {pair!r}")
        out[name.strip()] = value.strip()
    return out


def _categorize_all(service: Any, recognizer: Any, out: str) -> int:
    from samestyle.search.categorize import categorize_index, write_table

    table = categorize_index(service, recognizer)
    write_table(table, out)
    rows = table.to_pylist()
    for level in recognizer.levels:
        mine = [r for r in rows if r["level"] == level and r["label"]]
        agree = sum(r["agrees"] for r in mine)
        print(f"{level}: the catalogue's label agrees on {agree} of {len(mine)} labelled products")
        for r in [r for r in mine if not r["agrees"]][:5]:
            said = f"catalogue {r['label']!r}, recognised {r['predicted']!r} ({r['margin']:+.2f})"
            print(f"   {r['product_id']}: {said}")
    print(f"wrote {out}: one row per product and level, the most confident disagreements first")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``recognizer`` and ``categorize`` to the ``samestyle`` sub-command parser."""
    p = sub.add_parser(
        "recognizer", help="fit the category recogniser (title words + embedding) on the train split"
    )
    p.add_argument("--catalog", required=True)
    p.add_argument("--embeddings", required=True, help="folder from 'samestyle embed'")
    p.add_argument(
        "--run", help="a trained run: its joint-fused vectors (default: frozen image+text features)"
    )
    p.add_argument("--split", default="myntra", help="myntra, hash or a split JSON file (fits on 'train')")
    p.add_argument(
        "--level", action="append", help="category1/2/3 (repeatable; default: category2, category3)"
    )
    p.add_argument("--C", type=float, default=0.5, help="SVM inverse regularisation (default 0.5)")
    p.add_argument("--dense-norm", type=float, default=0.5, help="embedding block weight (default 0.5)")
    p.add_argument("--words-only", action="store_true", help="title words alone, no embedding block")
    p.add_argument(
        "--attributes", metavar="NAMES",
        help="catalogue attributes read as words beside the title, e.g. usage,gender (default: none)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="folder for recognizer.safetensors and metrics.json")
    p.set_defaults(func=_cmd_recognizer)

    p = sub.add_parser(
        "categorize", help="a product's categories: by id, a new title (+ photo), or all (--out)"
    )
    p.add_argument("--index", required=True)
    p.add_argument("--recognizer", required=True, help="folder or file from 'samestyle recognizer'")
    p.add_argument("--product-id", help="a product of the index")
    p.add_argument("--text", help="a new product's title")
    p.add_argument("--image", help="the new product's photo (with --text)")
    p.add_argument(
        "--attribute", action="append", metavar="NAME=VALUE",
        help="a new product's attribute (with --text; repeatable), for recognizers fitted with attributes",
    )  # fmt: skip
    p.add_argument("--k", type=int, default=3, help="classes per level (default 3)")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--out",
        help="every product of the index instead: .parquet or .csv, disagreements with the catalogue first",
    )
    p.set_defaults(func=_cmd_categorize)


__all__ = ["add_parsers"]
