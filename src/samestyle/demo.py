"""``make demo``: Myntra catalogue -> embeddings -> index -> a few example queries.

Run as ``python -m samestyle.demo [--limit N] [--work DIR]``. Every stage is cached in the work folder,
so a second run only answers the queries.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from samestyle.errors import SamestyleError
from samestyle.paths import cache_dir, shared_data_dir
from samestyle.types import Hit

if TYPE_CHECKING:
    from samestyle.catalog.store import Catalog
    from samestyle.search.service import SearchService

DATA_HELP = """\
No dataset found at {data}.

samestyle's demo builds a catalogue from the public Myntra fashion data. Either
  * put the data folder beside this checkout as ../shared/data (it holds myntra_styles_full.csv.gz and
    myntra_small_images_60x80.tar.gz), or
  * point at it:  SAMESTYLE_DATA=/path/to/data make demo
To use your own catalogue instead (CSV/JSONL/Parquet with id, title, image columns):
  .venv/bin/samestyle ingest products.csv --out work/catalog --image-root images/
  .venv/bin/samestyle embed --catalog work/catalog --out work/emb
  .venv/bin/samestyle index --catalog work/catalog --embeddings work/emb --out work/index
  .venv/bin/samestyle search --index work/index --text "red summer dress"
"""


def _stage(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def run(limit: int | None, work: Path, epochs: int) -> None:
    from samestyle.catalog.store import read_catalog
    from samestyle.config import load_config
    from samestyle.datasets import build_dataset_catalog
    from samestyle.pipeline.build_index import build_index
    from samestyle.pipeline.embed import embed_catalog
    from samestyle.pipeline.encoders import build_encoders
    from samestyle.search.service import SearchService
    from samestyle.train.run import RunConfig, apply_run, train_run

    cat_dir, emb_dir, idx_dir, run_dir = work / "catalog", work / "emb", work / "index", work / "run"
    t = _stage(f"ingest: Myntra catalogue ({'all' if limit is None else limit} products) -> {cat_dir}")
    report = build_dataset_catalog("myntra", cat_dir, limit=limit)
    print(
        f"   {report.products_written} products, {report.rows_rejected} rows rejected "
        f"(see {cat_dir / 'rejects.csv'}), {time.perf_counter() - t:.1f}s"
    )
    catalog = read_catalog(cat_dir)

    t = _stage("embed: EfficientNet-Lite0 (ONNX) images + all-MiniLM-L6-v2 titles, cached by content hash")
    image_enc, text_enc = build_encoders("efficientnet-lite0", "minilm")
    emb, _ = embed_catalog(
        catalog,
        emb_dir,
        image_enc,
        text_enc,
        cache_dir() / "features",
        encoder_keys={"image": "efficientnet-lite0", "text": "minilm"},
    )
    print(f"   {time.perf_counter() - t:.1f}s")

    t = _stage(f"train: the joint image/text/image+text model, {epochs} epochs -> {run_dir}")
    if not (run_dir / "metrics.json").exists():
        cfg = load_config(
            RunConfig,
            Path("configs/myntra.toml") if Path("configs/myntra.toml").exists() else None,
            [
                f'data.catalog="{cat_dir}"',
                f'data.embeddings="{emb_dir}"',
                'data.split="hash"',
                f"train.epochs={epochs}",
                "train.patience=3",
            ],
        )
        metrics = train_run(cfg, run_dir, progress=True)
        print(
            f"   best epoch {metrics['best_epoch']}, val sample-100 SumR {metrics['best_val_sum_r']:.2f} / 6"
        )
    print(f"   {time.perf_counter() - t:.1f}s")
    apply_run(run_dir, catalog, emb).save(emb_dir)

    t = _stage(f"index -> {idx_dir}")
    build_index(catalog, emb, idx_dir)
    print(f"   {time.perf_counter() - t:.1f}s")

    service = SearchService.open(idx_dir)
    service.text_encoder, service.image_encoder = text_enc, image_enc  # reuse the loaded models
    _categories(service, catalog, work, run_dir)
    _queries(service, catalog, idx_dir)


def _categories(service: SearchService, catalog: Catalog, work: Path, run_dir: Path) -> None:
    from samestyle.models.recognizer import CategoryRecognizer
    from samestyle.pipeline.recognize import fit_recognizer
    from samestyle.search.categorize import categorize

    rec_dir = work / "recognizer"
    t = _stage(
        f"category recogniser: title words + joint-fused vector, fitted on the train split -> {rec_dir}"
    )
    metrics = fit_recognizer(work / "catalog", work / "emb", rec_dir, run_dir=run_dir, split="hash")
    for level, name in (("category2", "subCategory"), ("category3", "articleType")):
        print(f"   held-out {name} accuracy {metrics[f'test/{level}']['acc']:.3f}")
    print(f"   {time.perf_counter() - t:.1f}s")
    query = next(p for p in catalog if p.has_image and "Shoes" in p.title)
    top = categorize(
        service, CategoryRecognizer.load(rec_dir), text=query.title, image=catalog.image_path(query), k=2
    )
    print(f"\n-- categories of a new product: its title ({query.title!r}) and photo")
    for level, best in top.items():
        print(f"   {level}: " + ", ".join(f"{c} ({s:+.2f})" for c, s in best))


def _show(title: str, hits: list[Hit]) -> None:
    print(f"\n-- {title}")
    for rank, h in enumerate(hits, 1):
        print(f"   {rank:>2}. {h.score:.3f}  {h.id:<8} {h.product.title if h.product else ''}")


def _queries(service: SearchService, catalog: Catalog, idx_dir: Path) -> None:
    text = "navy blue checked casual shirt for men"
    _show(f'text -> image (joint space): "{text}"', service.search_text(text, k=5))
    _show(f'text -> text (frozen MiniLM): "{text}"', service.search_text(text, k=5, space="text"))
    query = next(p for p in catalog if p.has_image and "Watch" in p.title)
    _show(
        f"image -> image: the photo of {query.id} ({query.title})",
        service.search_image(catalog.image_path(query) or "", k=5),
    )
    query = next(p for p in catalog if p.has_image and "Tshirt" in p.title)
    _show(
        f'like {query.id} ({query.title}), but "in white" (composed query)',
        service.compose(modifier="in white", product_id=query.id, k=5),
    )
    query = next(p for p in catalog if p.has_image and "Kurta" in p.title)
    _show(f"same-style products to {query.id} ({query.title}), image+text", service.similar(query.id, k=5))
    rec = idx_dir.parent / "recognizer"
    print(f"""
Query further (the index holds frozen and joint spaces; see --space and docs/search.md):
  .venv/bin/samestyle search --index {idx_dir} --text "black leather wallet" --k 10 --explain
  .venv/bin/samestyle search --index {idx_dir} --image path/to/photo.jpg --modifier "in red"
  .venv/bin/samestyle search --index {idx_dir} --product-id {query.id} --filter attr=baseColour:Red
  .venv/bin/samestyle dedupe --index {idx_dir} --out duplicates.csv
  .venv/bin/samestyle categorize --index {idx_dir} --recognizer {rec} --product-id {query.id}
  .venv/bin/samestyle serve --index {idx_dir}        # the web page at http://127.0.0.1:8000/
""")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samestyle.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5000, help="products to use (0 = the whole catalogue)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the joint model")
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder (default: .cache/samestyle/demo)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data = shared_data_dir()
    if not (data / "myntra_styles_full.csv.gz").exists():
        print(DATA_HELP.format(data=data), file=sys.stderr)
        return 1
    limit = None if args.limit == 0 else args.limit
    work = args.work or cache_dir() / "demo" / f"myntra-{'all' if limit is None else limit}"
    try:
        run(limit, work, args.epochs)
    except SamestyleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
