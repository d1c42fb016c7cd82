"""The ``samestyle`` command: one sub-command per stage, each a thin shell over the library.

Errors a user can cause (``SamestyleError``) are printed on one line without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from samestyle.errors import ConfigError, SamestyleError

Handler = Callable[[argparse.Namespace], int]


def _cmd_ingest(args: argparse.Namespace) -> int:
    from samestyle.catalog.ingest import ingest
    from samestyle.catalog.validate import ColumnMapping

    mapping = ColumnMapping.parse(args.column or [])
    report = ingest(
        [Path(p) for p in args.files],
        Path(args.out),
        mapping,
        image_root=Path(args.image_root) if args.image_root else None,
        check_images=not args.no_check_images,
        max_pixels=args.max_pixels,
        progress=True,
        workers=args.workers,
    )
    _print_report(report, args.json)
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from samestyle.datasets import build_dataset_catalog

    report = build_dataset_catalog(
        args.name, Path(args.out), data_dir=args.data_dir, images=args.images, limit=args.limit
    )
    _print_report(report, args.json)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from samestyle.catalog.store import read_catalog
    from samestyle.mining.clicklog import write_click_log
    from samestyle.mining.simulator import SimulatorConfig, simulate_clicks

    log = simulate_clicks(read_catalog(args.catalog), SimulatorConfig(sessions=args.sessions, seed=args.seed))
    write_click_log(log.events, args.out)
    print(f"wrote {len(log.events)} SIMULATED events ({args.sessions} sessions) to {args.out}")
    return 0


def _cmd_mine(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from samestyle.catalog.store import read_catalog
    from samestyle.config import parse_override
    from samestyle.mining.clicklog import read_click_log
    from samestyle.mining.miner import MiningConfig, mine_pairs
    from samestyle.mining.pairs import write_pairs

    events, rejects = read_click_log(args.log)
    try:
        cfg = replace(MiningConfig(), **dict(parse_override(o) for o in args.set or []))
    except TypeError as exc:
        raise ConfigError(f"--set: {exc} (see samestyle.mining.miner.MiningConfig for the keys)") from None
    result = mine_pairs(events, read_catalog(args.catalog), cfg)
    write_pairs(result.pairs, args.out)
    for r in rejects[:10]:
        print(f"skipped: {r}", file=sys.stderr)
    print(
        f"mined {len(result.pairs)} pairs from {len(events)} events ({len(rejects)} bad lines) -> {args.out}"
    )
    print(json.dumps(result.stats.to_dict(), indent=2))
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from samestyle.catalog.store import read_catalog
    from samestyle.paths import cache_dir
    from samestyle.pipeline.embed import embed_catalog
    from samestyle.pipeline.encoders import build_encoders

    catalog = read_catalog(args.catalog)
    image_enc, text_enc = build_encoders(args.image_encoder, args.text_encoder, threads=args.threads)
    emb, report = embed_catalog(
        catalog,
        args.out,
        image_enc,
        text_enc,
        None if args.no_cache else Path(args.cache or cache_dir() / "features"),
        batch_size=args.batch_size,
        progress=True,
        encoder_keys={"image": args.image_encoder, "text": args.text_encoder},
    )
    if args.model:
        from samestyle.train.run import apply_run

        apply_run(args.model, catalog, emb).save(args.out)
    print(
        f"embedded {report.products} products ({report.with_image} with an image) into {report.out_dir}: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    )
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from samestyle.catalog.store import read_catalog
    from samestyle.pipeline.build_index import build_index
    from samestyle.pipeline.embeddings import EmbeddingSet

    index = build_index(
        read_catalog(args.catalog), EmbeddingSet.load(args.embeddings), Path(args.out), backend=args.backend
    )
    print(f"indexed {len(index)} products into {args.out}: spaces {', '.join(index.spaces())}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from samestyle.index.metadata import Filter
    from samestyle.search.service import SearchService

    if (args.product_id is not None) == (args.text is not None or args.image is not None):
        raise ConfigError("give --text and/or --image, or --product-id")
    service = SearchService.open(args.index)
    flt = Filter.parse(args.filter) if args.filter else None
    if args.text is not None and args.image is not None:
        hits = service.search_image_text(args.image, args.text, args.k, flt)
    elif args.text is not None:
        hits = service.search_text(args.text, args.k, flt, space=args.space)
    elif args.image is not None:
        hits = service.search_image(args.image, args.k, flt, space=args.space)
    else:
        hits = service.similar(args.product_id, args.k, space=args.space, filter=flt)
    if args.json:
        print(
            json.dumps(
                [
                    {"id": h.id, "score": round(h.score, 6), "title": h.product.title if h.product else None}
                    for h in hits
                ],
                indent=2,
            )
        )
    else:
        for rank, h in enumerate(hits, 1):
            title = h.product.title if h.product else ""
            print(f"{rank:>3}. {h.score:.4f}  {h.id:<12} {title}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from samestyle.config import load_config
    from samestyle.train.run import RunConfig, train_run

    cfg = load_config(RunConfig, args.config, args.set or [])
    metrics = train_run(cfg, args.out, resume=args.resume, progress=True)
    best = f"best epoch {metrics['best_epoch']} (val sum_r {metrics['best_val_sum_r']:.4f})"
    print(
        f"trained {args.out}: {best}, {metrics['train_seconds']:.0f}s; model in {args.out}/model.safetensors"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from samestyle.eval.report import write_report
    from samestyle.eval.runner import run_myntra_eval

    results = run_myntra_eval(
        args.catalog,
        args.embeddings,
        args.method,
        run_dir=args.run,
        split=args.split,
        protocols=args.protocols.split(","),
    )
    _, md_path = write_report(results, args.out, meta={"method": args.method, "run": args.run})
    print(md_path.read_text(encoding="utf-8"))
    return 0


def _print_report(report: object, as_json: bool) -> None:
    from dataclasses import asdict

    data = asdict(report)  # type: ignore[call-overload]
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        for key, value in data.items():
            print(f"{key:>18}: {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samestyle", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ingest", help="catalogue files (CSV/JSONL/Parquet) -> catalogue folder + rejects report"
    )
    p.add_argument("files", nargs="+")
    p.add_argument("--out", required=True, help="catalogue folder to write")
    p.add_argument(
        "--column",
        action="append",
        metavar="FIELD=SOURCE",
        help="map a field to your column(s), e.g. title=name, category=cat1,cat2 (repeatable)",
    )
    p.add_argument("--image-root", help="folder that relative image paths are resolved against")
    p.add_argument("--no-check-images", action="store_true", help="skip opening every image")
    p.add_argument("--max-pixels", type=int, default=50_000_000, help="images above this are rejected")
    p.add_argument("--workers", type=int, default=1, help="threads that check images (1 was fastest here)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("dataset", help="build a catalogue from a public dataset in ../shared/data")
    p.add_argument("name", choices=["myntra", "grocery"])
    p.add_argument("--out", required=True)
    p.add_argument(
        "--data-dir", help="folder with the dataset archives (default: $SAMESTYLE_DATA or ../shared/data)"
    )
    p.add_argument("--images", default="60x80", choices=["60x80", "224"], help="Myntra image set")
    p.add_argument("--limit", type=int, help="only the first N products")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_dataset)

    p = sub.add_parser(
        "simulate-clicks", help="a SIMULATED click log over a catalogue (no real log is available)"
    )
    p.add_argument("--catalog", required=True)
    p.add_argument("--sessions", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="click log to write (.jsonl or .parquet)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("mine", help="click log -> positive pairs under category and relevance constraints")
    p.add_argument("--catalog", required=True)
    p.add_argument("--log", required=True, help="click log (.jsonl or .parquet; see docs/click-logs.md)")
    p.add_argument("--out", required=True, help="pairs.parquet to write")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="MiningConfig override, e.g. use_category=false, min_similarity=0.4 (repeatable)",
    )
    p.set_defaults(func=_cmd_mine)

    p = sub.add_parser("embed", help="catalogue -> frozen image/text features (cached, incremental)")
    p.add_argument("--catalog", required=True)
    p.add_argument("--out", required=True, help="embeddings folder to write")
    p.add_argument("--image-encoder", default="efficientnet-lite0", help="registry name, or 'none'")
    p.add_argument("--text-encoder", default="minilm", help="registry name, or 'none'")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--cache", help="feature cache folder (default: .cache/samestyle/features)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument(
        "--model", help="a trained run folder: also write its joint spaces (joint-image/text/fused)"
    )
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("index", help="embeddings + catalogue -> searchable index folder")
    p.add_argument("--catalog", required=True)
    p.add_argument("--embeddings", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--backend", default="auto", help="exact, faiss-flat, faiss-hnsw or auto (by size)")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("train", help="train the joint model on cached features (config TOML + overrides)")
    p.add_argument("--config", help="a TOML run config (see configs/)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override, e.g. model.dim=128 (repeatable)"
    )
    p.add_argument("--out", required=True, help="run folder (config.toml, model.safetensors, metrics.json)")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint.pt")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="score a method on the held-out Myntra protocols (JSON + Markdown)")
    p.add_argument("--catalog", required=True)
    p.add_argument("--embeddings", required=True, help="frozen features from 'samestyle embed'")
    p.add_argument("--method", default="run", choices=["frozen", "cca", "run"])
    p.add_argument("--run", help="trained run folder (for --method run)")
    p.add_argument("--split", default="myntra", help="myntra, hash or a split JSON file")
    p.add_argument("--protocols", default="same-label,kagl,sample100,category")
    p.add_argument("--out", required=True, help="folder for eval.json and eval.md")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("search", help="query an index by text, image or product id")
    p.add_argument("--index", required=True)
    p.add_argument("--text", help="a text query (with --image: an image+text query in joint-fused)")
    p.add_argument("--image", help="path of a query image")
    p.add_argument("--product-id", help="find products similar to this catalogue product")
    p.add_argument(
        "--space",
        help="space to search; default: joint-image for text/image queries and joint-fused for --product-id "
        "when the index has a trained model, else text/image by query modality (product ids: image)",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--filter",
        action="append",
        help="category=Apparel/Topwear, attr=baseColour:Red, supplier=S1, price=10..50 (repeatable)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler: Handler = args.func
    try:
        return handler(args)
    except SamestyleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
