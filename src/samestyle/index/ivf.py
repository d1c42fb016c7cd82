"""``faiss-ivf``: an inverted-file index with compressed codes (SQ8, fp16, PQ or raw floats).

Vectors go into ``nlist`` k-means cells; a query scans the ``nprobe`` nearest cells. Codes shrink the
vector store: at 256-d a product costs 1024 B as floats, 512 B as fp16, 256 B as SQ8 (one byte a dim)
and ``pq_m`` bytes as PQ, plus 8 B of label and the inverted-list overhead.

Parameters follow the catalogue: ``nlist`` (0 = auto) is picked at training time from the vector count
(:func:`auto_nlist`), and ``nprobe`` (0 = auto) is calibrated right after training: a sample of stored
vectors is searched exactly and with a growing ``nprobe`` until recall@10 (each sample's own row left
out) reaches ``target_recall``. The chosen value is saved with the index.

Until ``min_train`` vectors have arrived there is nothing to train on: vectors wait in an exact flat
buffer, which is searched exactly. Filtered searches (:mod:`samestyle.index.ivf_cells`) score small
allowed sets exhaustively from their decoded codes; larger ones probe only the cells that hold allowed
vectors, nearest first, until those cells hold ``filtered_target`` allowed vectors (calibrated after
training like ``nprobe``) and then while they stay within a scan budget, with an ``IDSelector`` inside
the FAISS scan. Removes are real (``remove_ids`` through a hash-table direct map).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ConfigError
from samestyle.fsio import read_json, write_json
from samestyle.index.base import INDEX_BACKENDS, VectorIndex
from samestyle.index.exact import exact_topk
from samestyle.index.faiss_backend import FAISS_FILE, _faiss, _write_faiss, make_selector
from samestyle.index.ivf_cells import CellMap, calibrate_target, probe_filtered
from samestyle.index.labels import AllowList

log = logging.getLogger(__name__)

STATE_FILE = "ivf.json"
CODECS = ("flat", "fp16", "sq8", "pq")
CALIBRATION_QUERIES = 500
PLATEAU = 0.005  # recall gained over 3 steps below this: more cells stop paying
CALIBRATION_MARGIN = 0.5  # aim for target + half the gap to 1: self-queries are easier than real ones
CALIBRATION_K = 10
FILTER_CALIBRATION_SHARE = 0.1  # the random allow-list of the filtered calibration (ivf_cells)
BUDGET_FACTOR = 4.0  # filtered scan budget: 4x the vectors an unfiltered search scans


def auto_nlist(n: int) -> int:
    """Cells for ``n`` vectors: the power of two nearest ``4 * sqrt(n)``, with at least 39 training
    points a cell (FAISS's k-means floor) and at least 1 cell. 1M vectors -> 4096 cells of ~244."""
    if n < 39:
        return 1
    target = 2 ** round(math.log2(4 * math.sqrt(n)))
    return int(max(1, min(target, 2 ** math.floor(math.log2(n // 39)))))


def default_filtered_target(nprobe: int, n: int, nlist: int) -> int:
    """Allowed vectors a filtered search probes for when none was calibrated (indexes saved before the
    calibration existed): a tenth of what an unfiltered search scans, at least 50. At 1M x 256 the
    calibration chose 653 (benchmarks/bench_scale.py), and nprobe 23 x 244 / 10 = 561."""
    return max(50, round(nprobe * n / max(nlist, 1) / 10))


@dataclass(frozen=True)
class IVFConfig:
    """IVF settings.

    Attributes:
        codec: ``sq8`` (default: 1 byte a dim, near-exact ranking), ``fp16``, ``pq`` or ``flat``.
        nlist: k-means cells; 0 = :func:`auto_nlist` of the count at training time.
        nprobe: cells scanned per query; 0 = calibrated after training to reach ``target_recall``.
        target_recall: recall@10 the nprobe calibration aims for (measured against exact search).
        pq_m: PQ sub-quantizers (bytes a vector, 8 bits each); 0 = dim // 4. Must divide dim.
        min_train: vectors kept in an exact flat buffer until this many have arrived.
        train_sample: at most this many vectors train k-means (and the SQ / PQ codebooks).
        exact_filter_max: filtered searches allowing at most this many vectors score them all from
            their decoded codes instead of walking the cells.
        filtered_target: a filtered search probes cells holding allowed vectors, nearest first, until
            they hold this many allowed vectors; 0 = calibrated after training for ``target_recall``.
        filtered_scan_budget: past ``filtered_target``, it goes on probing such cells while they hold
            at most this many vectors in all (allowed or not), which answers a concentrated filter
            (a category) nearly exactly; 0 = 4x the vectors an unfiltered search scans.
        max_filtered_nprobe: unused since filtered searches walk the cells that hold allowed vectors
            (it widened nprobe by 1 / allowed share); kept so that older saved indexes load.
    """

    codec: str = "sq8"
    nlist: int = 0
    nprobe: int = 0
    target_recall: float = 0.95
    pq_m: int = 0
    min_train: int = 1000
    train_sample: int = 100_000
    exact_filter_max: int = 1000
    filtered_target: int = 0
    filtered_scan_budget: int = 0
    max_filtered_nprobe: int = 1024

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ConfigError(f"IVF codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        knobs = (self.nlist, self.nprobe, self.pq_m, self.filtered_target, self.filtered_scan_budget)
        if min(*knobs, self.exact_filter_max) < 0 or min(self.min_train, self.train_sample) < 1:
            raise ConfigError(f"IVF counts must be >= 0 and min_train/train_sample >= 1: {self}")
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError(f"target_recall must be in (0, 1], got {self.target_recall}")


class FaissIVFIndex(VectorIndex):
    """``IndexIVF{ScalarQuantizer,PQ,Flat}`` (inner product); FAISS ids are the labels.

    ``reconstruct_atol`` is the largest per-dimension error of :meth:`get_vectors` on unit vectors
    (SQ8 and PQ decode approximately).
    """

    backend = "faiss-ivf"
    config_class = IVFConfig
    config: IVFConfig

    def __init__(self, dim: int, config: IVFConfig | None = None) -> None:
        super().__init__(dim, config)
        if self.config.codec == "pq" and self.dim % self._pq_m() != 0:
            raise ConfigError(f"pq_m={self._pq_m()} must divide the dimension {self.dim}")
        faiss = _faiss()
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))  # buffer until trained
        self._trained = False
        self._nlist = 0
        self._nprobe = 0
        self._filtered_target = 0
        self._cells = CellMap()

    @property
    def reconstruct_atol(self) -> float:
        return (
            {"flat": 1e-6, "fp16": 1e-3, "sq8": 2e-2, "pq": 1.0}[self.config.codec] if self._trained else 1e-6
        )

    @property
    def trained(self) -> bool:
        return self._trained

    @property
    def nlist(self) -> int:
        return self._nlist

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @property
    def filtered_target(self) -> int:
        """Allowed vectors the cells probed by a filtered search hold (at least)."""
        return self._filtered_target

    def _pq_m(self) -> int:
        return self.config.pq_m or max(1, self.dim // 4)

    # ---- training -----------------------------------------------------------------------------
    def _new_ivf(self, nlist: int) -> Any:
        faiss = _faiss()
        quantizer = faiss.IndexFlatIP(self.dim)
        ip = faiss.METRIC_INNER_PRODUCT
        codec = self.config.codec
        if codec == "flat":
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, ip)
        elif codec == "pq":
            index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self._pq_m(), 8, ip)
        else:
            qtype = faiss.ScalarQuantizer.QT_8bit if codec == "sq8" else faiss.ScalarQuantizer.QT_fp16
            index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, qtype, ip)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index now frees its quantizer
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index

    def train(self) -> None:
        """Train on the buffered vectors, move them into the IVF index and calibrate ``nprobe``."""
        flat = self._index
        n = int(flat.ntotal)
        labels = _faiss().vector_to_array(flat.id_map).astype(np.int64)
        vectors = np.asarray(flat.reconstruct_batch(labels), np.float32)
        self._nlist = self.config.nlist or auto_nlist(n)
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, min(n, self.config.train_sample), replace=False))]
        index = self._new_ivf(self._nlist)
        index.cp.min_points_per_centroid = 1  # quiet: auto_nlist already leaves >= 39 points a cell
        index.train(sample)
        index.add_with_ids(vectors, labels)
        self._index, self._trained = index, True
        self._cells.reset()
        self._nprobe = self.config.nprobe or self._calibrate(vectors, labels, rng)
        self._filtered_target = self.config.filtered_target or self._calibrate_filtered(vectors, labels, rng)
        log.info(
            "IVF(%s): trained %d cells on %d vectors; nprobe=%d, filtered_target=%d",
            self.config.codec, self._nlist, n, self._nprobe, self._filtered_target,
        )  # fmt: skip

    def _calibrate(self, vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> int:
        """Smallest nprobe (steps of ~sqrt 2) whose recall@10 on stored sample vectors meets the target.

        Each sample vector is a query; its exact neighbours (itself left out) are the reference.
        """
        n = len(vectors)
        k = min(CALIBRATION_K, n - 1)
        if k < 1:
            return 1
        pick = rng.choice(n, min(n, CALIBRATION_QUERIES), replace=False)
        queries = np.ascontiguousarray(vectors[pick])
        _, pos = _faiss().knn(queries, vectors, k + 1, metric=_faiss().METRIC_INNER_PRODUCT)  # [Q, k+1]
        want = [
            set(labels[[p for p in row if p != own][:k]].tolist()) for row, own in zip(pos, pick, strict=True)
        ]
        own_labels = labels[pick]
        aim = self.config.target_recall + CALIBRATION_MARGIN * (1.0 - self.config.target_recall)
        seen: list[tuple[int, float]] = []
        nprobe = 1
        while True:
            got = self._ivf_search(queries, k + 1, nprobe, None)[1]
            hits = [
                len(set(g[g != o][:k].tolist()) & w) for g, o, w in zip(got, own_labels, want, strict=True)
            ]
            recall = sum(hits) / (k * len(want))
            seen.append((min(nprobe, self._nlist), recall))
            if recall >= aim:
                return min(nprobe, self._nlist)
            if nprobe >= self._nlist or (len(seen) >= 4 and recall - seen[-4][1] < PLATEAU):
                # the codes cap recall below the aim (PQ): stop where more cells stop paying
                best = max(r for _, r in seen)
                chosen = next(p for p, r in seen if r >= best - PLATEAU)
                log.warning(
                    "IVF(%s): recall@%d plateaus at %.3f, below the aim %.3f; nprobe=%d",
                    self.config.codec, k, best, aim, chosen,
                )  # fmt: skip
                return chosen
            nprobe = max(nprobe + 1, round(nprobe * math.sqrt(2)))

    def _calibrate_filtered(self, vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> int:
        """``filtered_target`` for the same aim as :meth:`_calibrate` (:func:`calibrate_target`)."""
        fallback = default_filtered_target(self._nprobe, len(vectors), self._nlist)
        if len(vectors) * FILTER_CALIBRATION_SHARE <= max(self.config.exact_filter_max, 4 * CALIBRATION_K):
            return fallback  # filters this small are answered exactly
        self._cells.build(self._index)
        aim = self.config.target_recall + CALIBRATION_MARGIN * (1.0 - self.config.target_recall)
        return calibrate_target(
            self._index,
            self._cells,
            vectors,
            labels,
            rng,
            CALIBRATION_K,
            aim,
            PLATEAU,
            FILTER_CALIBRATION_SHARE,
        )

    # ---- hooks --------------------------------------------------------------------------------
    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if not self._trained:
            self._index.add_with_ids(vectors, labels)
            if self._index.ntotal >= self.config.min_train:
                self.train()
            return
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        cells = np.ascontiguousarray(self._index.quantizer.assign(vectors, 1).reshape(-1), dtype=np.int64)
        sp = _faiss().swig_ptr  # add_with_ids would assign again; the cell map needs the same cells
        self._index.add_core(len(labels), sp(vectors), sp(labels), sp(cells))
        self._cells.assigned(labels, cells.astype(np.int32))

    def _remove(self, labels: np.ndarray) -> None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        faiss = _faiss()  # a hash-table direct map removes only through an IDSelectorArray
        sel = (
            faiss.IDSelectorArray(len(labels), faiss.swig_ptr(labels))
            if self._trained
            else faiss.IDSelectorBatch(labels)
        )
        self._index.remove_ids(sel)
        self._cells.removed(labels)

    def _get(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(self._index.reconstruct_batch(labels))

    def _ivf_search(
        self, queries: np.ndarray, k: int, nprobe: int, sel: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        params = _faiss().SearchParametersIVF(nprobe=max(1, min(nprobe, self._nlist)))
        if sel is not None:
            params.sel = sel
        scores, labels = self._index.search(queries, k, params=params)
        return scores, labels

    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self._trained:  # the exact buffer
            params = (
                None
                if allowed is None
                else _faiss().SearchParameters(sel=make_selector(allowed.labels, self._map.next_label))
            )
            scores, labels = self._index.search(queries, k, params=params)
            return scores, labels
        if allowed is not None:
            return self._filtered_search(queries, k, allowed)
        scores, labels = self._ivf_search(queries, k, self._nprobe, None)
        short = (labels >= 0).sum(axis=1) < min(k, len(self))
        if short.any():  # the probed cells held fewer than k vectors: scan every cell
            scores[short], labels[short] = self._ivf_search(queries[short], k, self._nlist, None)
            log.debug("IVF: %d of %d queries short of k=%d, rescanned every cell", short.sum(), len(short), k)
        return scores, labels

    def _filtered_search(
        self, queries: np.ndarray, k: int, allowed: AllowList
    ) -> tuple[np.ndarray, np.ndarray]:
        """Small allowed sets exactly from their codes, larger ones by walking the cells that hold them."""
        if not self._cells.built:
            self._cells.build(self._index)
        slots = self._cells.slots(allowed.labels)
        counts = np.bincount(slots, minlength=self._nlist + 1)  # [0]: allowed labels not stored
        if len(slots) - counts[0] <= self.config.exact_filter_max:
            return self._exact_labels(queries, k, allowed.labels[slots > 0])
        target = self._filtered_target or default_filtered_target(self._nprobe, len(self), self._nlist)
        budget = self.config.filtered_scan_budget or round(
            BUDGET_FACTOR * self._nprobe * len(self) / self._nlist
        )
        return probe_filtered(
            self._index, self._cells, queries, k, allowed.labels, slots, counts[1:], target, budget,
            self._map.next_label,
        )  # fmt: skip

    def _exact_labels(self, queries: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every vector of ``labels`` (all stored) scored from its decoded code."""
        vectors = (
            np.asarray(self._index.reconstruct_batch(labels)) if len(labels) else np.zeros((0, self.dim))
        )
        scores, pos = exact_topk(queries, vectors.astype(np.float32, copy=False), k)
        return scores, labels[pos]

    # ---- persistence --------------------------------------------------------------------------
    def _save_data(self, directory: Path) -> None:
        _write_faiss(self._index, directory / FAISS_FILE)
        state = {"trained": self._trained, "nlist": self._nlist, "nprobe": self._nprobe}
        write_json(directory / STATE_FILE, {**state, "filtered_target": self._filtered_target})

    def _load_data(self, directory: Path) -> None:
        state = read_json(directory / STATE_FILE)
        index = _faiss().read_index(str(directory / FAISS_FILE))
        if index.ntotal != len(self._map) or index.d != self.dim:
            raise ValueError(f"{FAISS_FILE} holds {index.ntotal} x {index.d}-d vectors")
        if state["trained"]:
            index.set_direct_map_type(_faiss().DirectMap.Hashtable)
        self._index, self._trained = index, bool(state["trained"])
        self._nlist, self._nprobe = int(state["nlist"]), int(state["nprobe"])
        self._filtered_target = int(state.get("filtered_target", 0))  # 0 (older saves): the default rule
        self._cells.reset()


INDEX_BACKENDS.register("faiss-ivf")(FaissIVFIndex)
