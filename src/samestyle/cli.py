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
from typing import Any

from samestyle.errors import ConfigError, SamestyleError
from samestyle.search.compose import METHODS as COMPOSE_METHODS

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
        args.name, Path(args.out), data_dir=args.data_dir, images=args.images, limit=args.limit,
        only_with_images=[s for s in (args.only_with_images or "").split(",") if s],
    )  # fmt: skip
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
    cache = None if args.no_cache else Path(args.cache or cache_dir() / "features")
    keys = {"image": args.image_encoder, "text": args.text_encoder}
    if args.engine == "ray":
        from samestyle.pipeline.ray_engine import embed_catalog_ray

        emb, report = embed_catalog_ray(
            catalog, args.out, args.image_encoder, args.text_encoder, cache, workers=args.ray_workers,
            threads_per_worker=args.threads or 1, batch_size=args.batch_size, address=args.ray_address,
            encoder_keys=keys, collect=args.ray_collect, parts_dir=args.ray_parts_dir,
        )  # fmt: skip
        print(f"embedded {report.products} products (Ray, {args.ray_workers} workers) in {report.out_dir}")
        if args.model:
            from samestyle.train.run import apply_run

            apply_run(args.model, catalog, emb).save(args.out)
        return 0
    image_enc, text_enc = build_encoders(args.image_encoder, args.text_encoder, threads=args.threads)
    emb, report = embed_catalog(
        catalog,
        args.out,
        image_enc,
        text_enc,
        cache,
        batch_size=args.batch_size,
        progress=True,
        encoder_keys=keys,
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
        read_catalog(args.catalog),
        EmbeddingSet.load(args.embeddings),
        Path(args.out),
        backend=args.backend,
        catalog_dir=args.catalog,
    )
    print(f"indexed {len(index)} products into {args.out}: spaces {', '.join(index.spaces())}")
    return 0


def _hit_record(h: Any) -> dict[str, Any]:
    p = h.product
    return {
        "id": h.id,
        "score": round(h.score, 6),
        "title": p.title if p else None,
        "category": "/".join(p.category) if p else None,
        "supplier_id": p.supplier_id if p else None,
        "scores": dict(h.scores),
        "shared": dict(h.shared),
    }


def _cmd_search(args: argparse.Namespace) -> int:
    from samestyle.index.metadata import Filter
    from samestyle.search.service import SearchService

    if (args.product_id is not None) == (args.text is not None or args.image is not None):
        raise ConfigError("give --text and/or --image, or --product-id")
    if args.modifier is not None and args.text is not None:
        raise ConfigError("--modifier composes with --image or --product-id; do not also give --text")
    one_query = (args.text is None) != (args.image is None)
    if args.rerank and (args.product_id is not None or args.modifier is not None or not one_query):
        raise ConfigError("--rerank re-scores a --text query or an --image query (not both, not a product)")
    if args.rerank and not args.cross_run:
        raise ConfigError("--rerank needs --cross-run: a 'samestyle pretrain' run with a matching head")
    service = SearchService.open(args.index)
    flt = Filter.parse(args.filter) if args.filter else None
    k_final, args.k = args.k, max(args.k, args.rerank or 0)
    if args.modifier is not None:
        hits = service.compose(
            modifier=args.modifier,
            product_id=args.product_id,
            image=args.image,
            k=args.k,
            method=args.compose,
            filter=flt,
            space=args.space or "joint-image",
        )
    elif args.text is not None and args.image is not None:
        hits = service.search_image_text(
            args.image, args.text, args.k, flt, space=args.space or "joint-fused"
        )
    elif args.text is not None:
        hits = service.search_text(args.text, args.k, flt, space=args.space)
    elif args.image is not None:
        hits = service.search_image(args.image, args.k, flt, space=args.space)
    else:
        hits = service.similar(
            args.product_id,
            args.k,
            space=args.space,
            filter=flt,
            other_suppliers=args.other_suppliers,
            query_space=args.query_space,
        )
    if args.rerank:
        hits = _rerank(service, hits, args)
    hits = hits[:k_final]
    if args.json:
        print(json.dumps([_hit_record(h) for h in hits], indent=2))
        return 0
    for rank, h in enumerate(hits, 1):
        title = h.product.title if h.product else ""
        print(f"{rank:>3}. {h.score:.4f}  {h.id:<12} {title}")
        if args.explain:
            sims = ", ".join(f"{m} {v:.3f}" for m, v in h.scores.items())
            shared = ", ".join(f"{k}={v}" for k, v in h.shared.items())
            print(f"       similarity: {sims}" + (f"; shared: {shared}" if shared else ""))
    return 0


def _rerank(service: Any, hits: list[Any], args: argparse.Namespace) -> list[Any]:
    """The top ``--rerank`` hits re-ordered by the cross-encoder of ``--cross-run``."""
    from samestyle.pretrain.search_rerank import CrossReranker

    catalog_dir = service.index.manifest.get("meta", {}).get("catalog")
    root = None
    if catalog_dir and Path(catalog_dir).exists():
        from samestyle.catalog.store import read_catalog

        root = read_catalog(catalog_dir).image_root
    reranker = CrossReranker(args.cross_run, image_root=root)
    return reranker.rerank(hits, args.rerank, text=args.text, image=args.image)


def _cmd_dedupe(args: argparse.Namespace) -> int:
    from samestyle.search.dedupe import DedupeConfig
    from samestyle.search.dedupe_io import read_labels, write_dedupe
    from samestyle.search.service import SearchService

    thresholds = {}
    for spec in args.threshold or []:
        name, _, value = spec.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"bad --threshold '{spec}': write MODALITY=VALUE, e.g. image=0.9") from None
    base = DedupeConfig()
    config = DedupeConfig(
        thresholds=thresholds or dict(base.thresholds),
        k=args.k,
        min_one_margin=args.min_one_margin,
        blend_k=args.blend_k,
        max_group=args.max_group,
    )
    service = SearchService.open(args.index)
    if args.calibrate:
        config, f1 = service.calibrate_dedupe(read_labels(args.calibrate), config)
        chosen = ", ".join(f"{m}={t:.2f}" for m, t in config.thresholds.items())
        print(
            f"calibrated on {args.calibrate}: {chosen} (mean per-item F1 {f1:.3f} on the labelled products)"
        )
    result = service.duplicates(args.supplier, config)
    groups_path, links_path = write_dedupe(result, args.out)
    in_groups = sum(len(g) for g in result.groups)
    print(
        f"{len(result.groups)} duplicate groups ({in_groups} listings), {len(result.links)} links: "
        f"{groups_path}, {links_path}"
    )
    return 0


def _train_kind(path: str | None, overrides: Sequence[str]) -> str:
    """``"cross"`` for a cross-encoder config (top-level ``kind = "cross"``), ``"grocery"`` for a
    grocery-photo run (``kind = "grocery"``), ``"joint"`` without a kind."""
    from samestyle.config import read_config_data

    data = read_config_data(path, overrides)
    kind = data.get("kind")
    where = path or "--set"
    cross_keys = sorted({"tasks", "masking", "residual", "late"} & set(data))
    if kind is None and cross_keys:
        raise ConfigError(
            f"{where}: looks like a cross-encoder config (it has '{cross_keys[0]}'); add kind = \"cross\" "
            "to train it with 'samestyle train', or run 'samestyle pretrain'"
        )
    if kind not in (None, "cross", "grocery"):
        raise ConfigError(
            f'{where}: kind = {kind!r} is unknown; use kind = "cross" (cross-encoder, '
            'configs/cross_finetune.toml), kind = "grocery" (grocery photos, configs/grocery.toml) '
            "or no kind (the joint model, configs/myntra.toml)"
        )
    return "joint" if kind is None else str(kind)


def _cmd_train(args: argparse.Namespace) -> int:
    from samestyle.config import load_config
    from samestyle.train.run import RunConfig, train_run

    kind = _train_kind(args.config, args.set or [])
    if kind == "cross":
        if args.resume:
            raise ConfigError('--resume is for joint-model runs; a cross-encoder run (kind = "cross") cannot')
        return _cmd_pretrain(args)
    if kind == "grocery":
        from samestyle.train.grocery import GroceryRunConfig, grocery_train_run

        if args.resume:
            raise ConfigError('--resume is not supported for grocery runs (kind = "grocery"); start again')
        gm = grocery_train_run(load_config(GroceryRunConfig, args.config, args.set or []), args.out)
        best = f"best epoch {gm['best_epoch']} (carved-train mean MRR {gm['best_val_mean_mrr']:.4f})"
        took = f"{gm['train_seconds']:.0f}s"
        print(f"trained {args.out}: {best}, {took}; model in {args.out}/model.safetensors")
        return 0
    cfg = load_config(RunConfig, args.config, args.set or [])
    metrics = train_run(cfg, args.out, resume=args.resume, progress=True)
    best = f"best epoch {metrics['best_epoch']} (val sum_r {metrics['best_val_sum_r']:.4f})"
    print(
        f"trained {args.out}: {best}, {metrics['train_seconds']:.0f}s; model in {args.out}/model.safetensors"
    )
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from samestyle.config import load_config
    from samestyle.pretrain.run import pretrain_run
    from samestyle.pretrain.train import PretrainConfig

    cfg = load_config(PretrainConfig, args.config, args.set or [])
    metrics = pretrain_run(cfg, args.out)
    last = metrics["history"][-1]["loss"] if metrics["history"] else {}
    losses = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
    took = f"{metrics['steps']} steps, {metrics['train_seconds']:.0f}s"
    print(f"pre-trained {args.out}: {took}; last epoch {losses}")
    return 0


def _cmd_caption(args: argparse.Namespace) -> int:
    from samestyle.config import load_config
    from samestyle.pretrain.caption import CaptionConfig, CaptionRun, caption_run

    if args.out is None and args.run is None:
        raise ConfigError("give --run RUN to caption, or --out RUN (with --config) to train a caption run")
    if args.out is not None and args.run is not None:
        raise ConfigError("give either --run (an existing caption run) or --out (train a new one), not both")
    if args.run is not None and not (args.image or args.product):
        raise ConfigError("give --image PATH and/or --product ID to caption (repeatable)")
    if args.out is not None:
        metrics = caption_run(load_config(CaptionConfig, args.config, args.set or []), args.out)
        last = metrics["history"][-1] if metrics["history"] else {}
        print(
            f"trained {args.out}: {metrics['steps']} steps, {metrics['train_seconds']:.0f}s; "
            f"last epoch train loss {last.get('train_loss', float('nan')):.3f}, "
            f"held-out {last.get('test_loss', float('nan')):.3f}"
        )
    run = CaptionRun(args.run or args.out)
    results = (run.caption_images(args.image, args.beam) if args.image else []) + (
        run.caption_products(args.product, args.beam) if args.product else []
    )
    for r in results:
        if r.error is not None:
            print(f"error: {r.error}", file=sys.stderr)
        else:
            print(f"{r.source}\t{r.title}")
    return 2 if any(r.error is not None for r in results) else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from samestyle.eval.report import write_report
    from samestyle.eval.runner import PROTOCOLS, run_cross_eval, run_myntra_eval

    if args.cross_run:
        if args.run or args.protocols or args.catalog:
            raise ConfigError("--cross-run evaluates cross-encoder runs: drop --catalog, --run, --protocols")
        results, meta = run_cross_eval(
            args.cross_run, args.embeddings, rerank_k=args.rerank or [10], queries=args.queries,
            cross_queries=args.cross_queries, draws=args.draws,
        )  # fmt: skip
        _, md_path = write_report(results, args.out, meta=meta)
        print(md_path.read_text(encoding="utf-8"))
        return 0
    if args.rerank:
        raise ConfigError("--rerank K re-ranks with a cross-encoder: give --cross-run RUN")
    if not args.catalog or not args.embeddings:
        raise ConfigError("give --catalog and --embeddings (or --cross-run RUN for a cross-encoder run)")
    results = run_myntra_eval(
        args.catalog,
        args.embeddings,
        args.method,
        run_dir=args.run,
        split=args.split,
        protocols=(args.protocols or ",".join(PROTOCOLS)).split(","),
        kagl_restricted=args.kagl_restricted,
    )
    meta = {"method": args.method, "run": args.run}
    if args.kagl_restricted:
        meta["kagl"] = "restricted to this catalogue's queries and products (not the full-gallery protocol)"
    _, md_path = write_report(results, args.out, meta=meta)
    print(md_path.read_text(encoding="utf-8"))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from samestyle.serve.settings import ServeSettings, VariantSpec

    try:
        import fastapi  # noqa: F401 - the 'serve' extra
        import uvicorn

        from samestyle.serve.app import create_app
        from samestyle.serve.state import open_variants
    except ImportError as exc:
        raise ConfigError(
            f"serve needs the 'serve' extra ({exc.name} is missing): pip install -e '.[serve]'"
        ) from None
    variants = tuple(VariantSpec.parse(v) for v in args.variant or [])
    if not variants and not args.index:
        raise ConfigError("give --index DIR (or A/B arms with --variant NAME=INDEX_DIR[@SPACE])")
    settings = ServeSettings(
        catalog_dir=Path(args.catalog) if args.catalog else None,
        host=args.host,
        port=args.port,
        api_key=ServeSettings.api_key_from_env(),
        max_k=args.max_k,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
        events_path=Path(args.events) if args.events else None,
        variants=variants,
        experiment=args.experiment,
        warmup=not args.no_warmup,
        recognizer=Path(args.recognizer) if args.recognizer else None,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("listening on %s: reachable beyond this machine", args.host)
    if args.engine == "ray":  # the same app in N Ray Serve replicas (docs/serving.md)
        from samestyle.serve.ray_serve import RayServeOptions, deploy

        options = RayServeOptions(
            replicas=args.replicas,
            address=args.ray_address,
            route_prefix=args.route_prefix,
            threads=args.threads,
            access_log=bool(args.verbose),
        )
        print(f"samestyle: {args.replicas} Ray Serve replica(s) on {args.host}:{args.port}", flush=True)
        deploy(args.index, settings, options, blocking=True)
        return 0
    app = create_app(open_variants(Path(args.index) if args.index else Path(), settings), settings)
    print(f"samestyle serving on http://{args.host}:{args.port}/ (API schema at /openapi.json)", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info" if args.verbose else "warning",
        timeout_keep_alive=args.keep_alive,
    )
    return 0


def _cmd_ab_report(args: argparse.Namespace) -> int:
    from samestyle.mining.clicklog import read_click_log
    from samestyle.serve.abtest import ab_report

    events, rejects = read_click_log(args.log)
    report = ab_report(events, control=args.control)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_markdown())
    if rejects:
        print(f"skipped {len(rejects)} bad line(s), first: {rejects[0]}", file=sys.stderr)
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
    p.add_argument(
        "--images", default="60x80", choices=["60x80", "224", "best"],
        help="Myntra image set; best = the 224 px photo where there is one, else 60x80",
    )  # fmt: skip
    p.add_argument(
        "--only-with-images", metavar="SETS",
        help="Myntra: keep only products with a photo in every listed image set, e.g. 60x80,224",
    )  # fmt: skip
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
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="local process or Ray Data")
    p.add_argument("--ray-workers", type=int, default=2, help="--engine ray: encoder actors")
    p.add_argument("--ray-address", default=None, help="--engine ray: cluster address (default: local Ray)")
    p.add_argument(
        "--ray-collect", choices=["auto", "store", "disk"], default="auto",
        help="--engine ray: actors return vectors through Ray's object store or as .npz parts on disk "
        "(auto: disk on a local Ray, store on a cluster)",
    )  # fmt: skip
    p.add_argument(
        "--ray-parts-dir", default=None, help="--ray-collect disk: scratch folder (shared on a cluster)"
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

    p = sub.add_parser("pretrain", help="pre-train the Kaleido-BERT-style cross-encoder on a product subset")
    p.add_argument("--config", help="a TOML pretrain config (see configs/pretrain.toml)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.epochs=1 (repeatable)"
    )
    p.add_argument("--out", required=True, help="run folder (config.toml, model.safetensors, metrics.json)")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser(
        "caption", help="generate product titles from images with a trained caption run (or train one)"
    )
    p.add_argument("--run", help="a caption run folder (from 'samestyle caption --out')")
    p.add_argument("--image", action="append", metavar="PATH", help="an image file to caption (repeatable)")
    p.add_argument("--product", action="append", metavar="ID", help="a catalogue product id (repeatable)")
    p.add_argument("--beam", type=int, help="beam width (1: greedy; default: the run's decode.beam)")
    p.add_argument("--config", help="train: a TOML caption config (see configs/caption.toml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="train: override, e.g. train.epochs=5")
    p.add_argument("--out", help="train a new caption run into this folder (then caption any inputs with it)")
    p.set_defaults(func=_cmd_caption)

    p = sub.add_parser("eval", help="score a method on the held-out Myntra protocols (JSON + Markdown)")
    p.add_argument("--catalog", help="catalogue folder (not with --cross-run)")
    p.add_argument(
        "--embeddings",
        help="frozen features from 'samestyle embed'; with --cross-run: joint vectors (default: the run's "
        "data.joint_embeddings)",
    )
    p.add_argument("--method", default="run", choices=["frozen", "cca", "run"])
    p.add_argument("--run", help="trained run folder (for --method run)")
    p.add_argument("--split", default="myntra", help="myntra, hash or a split JSON file")
    p.add_argument("--protocols", help="comma-separated (default: same-label,kagl,sample100,category)")
    p.add_argument(
        "--kagl-restricted", action="store_true",
        help="KAGL on a sub-catalogue: only the queries whose products are in it, with it as the gallery "
        "(not comparable with the full-gallery KAGL numbers)",
    )  # fmt: skip
    p.add_argument(
        "--cross-run",
        nargs="+",
        metavar="RUN",
        help="cross-encoder run(s) ('samestyle pretrain' / 'train' with kind = \"cross\"): sample-100 of the "
        "bi-encoder, re-ranking and the cross-encoder alone, categories, on the run's held-out subset",
    )
    p.add_argument("--rerank", type=int, nargs="+", metavar="K", help="--cross-run: re-rank depths (10)")
    p.add_argument("--queries", type=int, default=300, help="--cross-run: sample-100 queries a draw")
    p.add_argument(
        "--draws", type=int, default=1, help="--cross-run: sample-100 draws (the protocol: 1,000 queries x 5)"
    )
    p.add_argument(
        "--cross-queries", type=int, default=100, help="--cross-run: cross-encoder-alone queries (0: skip)"
    )
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
    p.add_argument(
        "--modifier",
        help='"like this but ...": a text that moves an --image or --product-id query (e.g. "in white")',
    )
    p.add_argument(
        "--compose",
        default="auto",
        choices=["auto", *COMPOSE_METHODS],
        help="how --modifier composes (auto: delta for --product-id, fused for --image; see docs/search.md)",
    )
    p.add_argument(
        "--other-suppliers",
        action="store_true",
        help="with --product-id: leave out the product's own supplier",
    )
    p.add_argument(
        "--query-space",
        help="with --product-id: which of its vectors queries (e.g. joint-image vs --space joint-text)",
    )
    p.add_argument("--explain", action="store_true", help="per-modality similarity and shared attributes")
    p.add_argument("--json", action="store_true", help="hits as JSON (with scores and shared attributes)")
    p.add_argument(
        "--rerank",
        type=int,
        metavar="K",
        help="re-order the top K hits of a --text or --image query by the cross-encoder (--cross-run)",
    )
    p.add_argument("--cross-run", help="a 'samestyle pretrain' run (with a matching head) for --rerank")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("dedupe", help="group duplicate listings (whole catalogue or one supplier)")
    p.add_argument("--index", required=True)
    p.add_argument("--out", required=True, help="groups file to write (.parquet or .csv; links beside it)")
    p.add_argument("--supplier", help="only this supplier's listings")
    p.add_argument(
        "--threshold",
        action="append",
        metavar="MODALITY=VALUE",
        help="match threshold per modality (image, text, fused; repeatable; default 0.9 each)",
    )
    p.add_argument("--k", type=int, default=20, help="neighbours per listing")
    p.add_argument("--min-one-margin", type=float, default=0.05, help="keep-one slack; negative: off")
    p.add_argument("--blend-k", type=int, default=0, help="neighbourhood blending size (0: off)")
    p.add_argument("--max-group", type=int, default=50)
    p.add_argument(
        "--calibrate",
        metavar="LABELS.csv",
        help="tune the thresholds first on labelled products: a CSV with columns product_id,group",
    )
    p.set_defaults(func=_cmd_dedupe)

    p = sub.add_parser("serve", help="HTTP API + web page over an index (127.0.0.1 by default)")
    p.add_argument("--index", help="index folder (or give A/B arms with --variant)")
    p.add_argument(
        "--catalog", help="catalogue folder (images, descriptions); default: the one recorded in the index"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--events", help="click log to append impressions/clicks/carts/orders to (.jsonl)")
    p.add_argument(
        "--variant",
        action="append",
        metavar="NAME=INDEX_DIR[@SPACE]",
        help="an A/B arm (repeatable; the first is the control); visitors are split by a hash of their id",
    )
    p.add_argument("--experiment", default="exp1", help="salt of the visitor hash (new name: new split)")
    p.add_argument("--max-k", type=int, default=100)
    p.add_argument("--max-upload-mb", type=float, default=8.0)
    p.add_argument("--max-image-pixels", type=int, default=25_000_000)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch default)")
    p.add_argument("--no-warmup", action="store_true", help="do not load encoders before answering /readyz")
    p.add_argument("--recognizer", help="a 'samestyle recognizer' folder: enables /api/categorize")
    p.add_argument("--keep-alive", type=int, default=30, help="seconds an idle keep-alive connection is kept")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="uvicorn here, or Ray Serve")
    p.add_argument("--replicas", type=int, default=1, help="--engine ray: app replicas (each loads it all)")
    p.add_argument("--ray-address", default=None, help="--engine ray: cluster address (default: local Ray)")
    p.add_argument("--route-prefix", default="/", help="--engine ray: path the app is mounted under")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("ab-report", help="CTR and conversion per A/B variant (95%% CIs) from a click log")
    p.add_argument("--log", required=True, help="click log written by 'samestyle serve --events'")
    p.add_argument("--control", help="the baseline variant (default: the first name in sorted order)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ab_report)

    from samestyle.cli_recognize import add_parsers

    add_parsers(sub)
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
