"""``samestyle caption``: train the title decoder on the prepared subset, and caption products or new images.

A caption run folder holds ``config.toml`` (resolved), ``model.safetensors`` (the decoder, with its frozen
token table), ``prep.safetensors`` (what a new image needs: ``pca_mean``, ``pca_components``,
``patch_scale``, ``vocab``), ``pieces.json`` (the word piece of each local id) and ``metrics.json``.
So a run captions without flags: a new image goes ``ActivationExtractor("map")`` -> ``kaleido_patches``
-> the stored PCA -> ``/ patch_scale``, exactly as ``pretrain.prepare`` built the training patches.

Training is teacher-forced cross-entropy (optional label smoothing) on the subset's train products, AdamW,
linear warm-up then a linear decay whose progress is the larger of the step fraction and the fraction of
the time budget used (so a run stopped by ``max_minutes`` has decayed). The held-out teacher-forced loss
is logged per epoch; it selects nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.errors import ArtifactError, NotFoundError, SamestyleError
from samestyle.fsio import atomic_path, write_json, write_text
from samestyle.models.base import ImageEncoder
from samestyle.pretrain.caption_model import (
    CaptionDecoder,
    DecoderConfig,
    beam_search,
    greedy,
    image_patches,
    map_extractor,
    pieces_to_text,
)
from samestyle.pretrain.train import PretrainConfig, PretrainDataConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionTrainConfig:
    seed: int = 0
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    label_smoothing: float = 0.0
    threads: int = 1
    max_minutes: float = 12.0


@dataclass(frozen=True)
class CaptionDecodeConfig:
    beam: int = 3  # 1 = greedy
    length_penalty: float = 1.0  # score = sum log p / length ** length_penalty


@dataclass(frozen=True)
class CaptionConfig:
    name: str = "caption"
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    model: DecoderConfig = field(default_factory=lambda: DecoderConfig(dropout=0.0))
    train: CaptionTrainConfig = field(default_factory=CaptionTrainConfig)
    decode: CaptionDecodeConfig = field(default_factory=CaptionDecodeConfig)


def data_file(cfg: CaptionConfig) -> Path:
    """The prepared-subset ``.npz`` of ``cfg.data`` (the one ``samestyle pretrain`` uses)."""
    from samestyle.pretrain.run import data_path

    return data_path(PretrainConfig(data=cfg.data))


def minilm_pieces(vocab: np.ndarray) -> list[str]:
    """The MiniLM word piece of each MiniLM id in ``vocab`` (the tokenizer only, not the model)."""
    from transformers import AutoTokenizer

    from samestyle.models.text import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    return [str(p) for p in tok.convert_ids_to_tokens([int(i) for i in vocab])]


def _teacher_loss(model: CaptionDecoder, tokens: np.ndarray, patches: np.ndarray, bs: int = 256) -> float:
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for s in range(0, len(tokens), bs):
            t, p = (
                torch.from_numpy(tokens[s : s + bs]),
                torch.from_numpy(patches[s : s + bs].astype(np.float32)),
            )
            total += float(model.loss(t, p)) * len(t)
    return total / max(len(tokens), 1)


def train_decoder(model: CaptionDecoder, cfg: CaptionConfig, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Teacher-forced training in place on the ``is_train`` rows; returns the per-epoch history."""
    t = cfg.train
    rng = np.random.default_rng(t.seed)
    rows, test = np.flatnonzero(data["is_train"]), np.flatnonzero(~data["is_train"])
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    per_epoch = max(1, len(rows) // t.batch_size)
    total, budget = per_epoch * t.epochs, 60.0 * t.max_minutes
    history: list[dict[str, float]] = []
    start, step, stopped = time.perf_counter(), 0, False
    for epoch in range(t.epochs):
        model.train()
        perm, loss_sum = rng.permutation(rows), 0.0
        for s in range(per_epoch):
            batch = perm[s * t.batch_size : (s + 1) * t.batch_size]
            progress = max(step / total, (time.perf_counter() - start) / budget)
            for g in opt.param_groups:
                g["lr"] = t.lr * min(1.0, (step + 1) / max(1, t.warmup_steps)) * max(0.02, 1.0 - progress)
            tok = torch.from_numpy(data["tokens"][batch])
            pat = torch.from_numpy(data["patches"][batch].astype(np.float32))
            loss = model.loss(tok, pat, t.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_sum, step = loss_sum + float(loss.detach()), step + 1
            if time.perf_counter() - start > budget:
                stopped = True
                break
        rec = {"epoch": epoch, "steps": s + 1, "train_loss": loss_sum / (s + 1),
               "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        if len(test):
            rec["test_loss"] = _teacher_loss(model, data["tokens"][test], data["patches"][test])
        history.append(rec)
        logger.info("caption epoch %d: %s", epoch, rec)
        if stopped:
            logger.warning("stopped at the time limit (%.1f min) in epoch %d", t.max_minutes, epoch)
            break
    model.eval()
    return {"history": history, "steps": step, "train_seconds": time.perf_counter() - start,
            "stopped_at_time_limit": stopped}  # fmt: skip


def caption_run(
    cfg: CaptionConfig,
    out: str | Path,
    data: dict[str, np.ndarray] | None = None,
    pieces: list[str] | None = None,
) -> dict[str, Any]:
    """Train a decoder per ``cfg`` on the prepared subset and save the run to ``out``; returns its metrics."""
    from safetensors.torch import save_file

    from samestyle.config import dump_toml
    from samestyle.pretrain.run import ensure_data

    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    data = data if data is not None else ensure_data(PretrainConfig(data=cfg.data))
    pieces = pieces if pieces is not None else minilm_pieces(data["vocab"])
    _, n_patch, d = data["patches"].shape
    sizes = {"vocab": len(data["token_table"]), "max_tokens": int(data["tokens"].shape[1])}
    model_cfg = replace(cfg.model, patch_dim=int(d), n_patches=int(n_patch), **sizes)
    cfg = replace(cfg, model=model_cfg)
    model = CaptionDecoder(model_cfg, torch.from_numpy(data["token_table"]))
    metrics = train_decoder(model, cfg, data)
    metrics["n_train_products"] = int(data["is_train"].sum())
    metrics["parameters"] = int(sum(p.numel() for p in model.parameters()))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    prep = {
        k: torch.from_numpy(np.ascontiguousarray(data[k])) for k in ("pca_mean", "pca_components", "vocab")
    }
    prep["patch_scale"] = torch.tensor([float(data["patch_scale"])])
    with atomic_path(out / "prep.safetensors") as tmp:
        save_file(prep, str(tmp))
    write_json(out / "pieces.json", pieces)
    write_text(out / "config.toml", dump_toml(cfg))
    write_json(out / "metrics.json", metrics)
    return metrics


@dataclass
class Caption:
    """One caption request: ``source`` (path or product id) and its ``title``, or the ``error``."""

    source: str
    title: str | None = None
    error: str | None = None


class CaptionRun:
    """A trained caption run folder (see the module doc), loaded in eval mode."""

    def __init__(self, run: str | Path) -> None:
        import tomllib

        from safetensors.torch import load_file

        from samestyle.config import from_dict

        self.path = Path(run)
        need = ("model.safetensors", "prep.safetensors", "pieces.json", "config.toml")
        missing = [n for n in need if not (self.path / n).exists()]
        if missing:
            raise ArtifactError(
                f"{self.path}: no {', '.join(missing)}; is this a finished 'samestyle caption' run?"
            )
        text = (self.path / "config.toml").read_text(encoding="utf-8")
        self.cfg = from_dict(CaptionConfig, tomllib.loads(text), str(self.path / "config.toml"))
        state = load_file(str(self.path / "model.safetensors"))
        self.model = CaptionDecoder(self.cfg.model, state["token_table"])
        self.model.load_state_dict(state)
        self.model.eval()
        prep = load_file(str(self.path / "prep.safetensors"))
        self.pca_mean, self.pca_components = prep["pca_mean"].numpy(), prep["pca_components"].numpy()
        self.patch_scale = float(prep["patch_scale"][0])
        self.pieces: list[str] = json.loads((self.path / "pieces.json").read_text(encoding="utf-8"))

    def text(self, ids: Sequence[int]) -> str:
        return pieces_to_text([self.pieces[i] for i in ids])

    def titles(self, patches: np.ndarray, beam: int | None = None, batch_size: int = 256) -> list[str]:
        """Generated titles of ``[N, 55, D]`` patch sets (``beam`` 1 = greedy; None = the run's default)."""
        beam = self.cfg.decode.beam if beam is None else beam
        if beam < 1:
            raise SamestyleError(f"--beam must be at least 1, got {beam}")
        out: list[str] = []
        for s in range(0, len(patches), batch_size):
            p = torch.from_numpy(np.asarray(patches[s : s + batch_size], dtype=np.float32))
            if beam == 1:
                ids = greedy(self.model, p)
            else:
                ids = beam_search(self.model, p, beam, self.cfg.decode.length_penalty)[0]
            out += [self.text(x) for x in ids]
        return out

    def image_patches(
        self, paths: Sequence[str | Path], extractor: ImageEncoder
    ) -> tuple[np.ndarray, list[str | None]]:
        """``image_patches`` with this run's PCA and scale."""
        return image_patches(paths, extractor, self.pca_mean, self.pca_components, self.patch_scale)

    def caption_images(
        self, paths: Sequence[str | Path], beam: int | None = None, extractor: ImageEncoder | None = None
    ) -> list[Caption]:
        """Titles of image files; an unreadable file gets an error naming it (the others go on)."""
        extractor = extractor if extractor is not None else map_extractor()
        patches, errors = self.image_patches(paths, extractor)
        ok = [i for i, e in enumerate(errors) if e is None]
        titles = dict(zip(ok, self.titles(patches[ok], beam), strict=True)) if ok else {}
        return [Caption(str(p), titles.get(i), errors[i]) for i, p in enumerate(paths)]

    def caption_products(
        self, ids: Sequence[str], beam: int | None = None, extractor: ImageEncoder | None = None
    ) -> list[Caption]:
        """Titles of catalogue products: from the prepared subset's patches, else from the product's image."""
        path = data_file(self.cfg)
        unique = list(dict.fromkeys(ids))
        out: dict[str, Caption] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                pos = {str(p): r for r, p in enumerate(z["ids"])}
                inside = [i for i in unique if i in pos]
                patches = z["patches"][[pos[i] for i in inside]] if inside else None
            if patches is not None:
                out = {i: Caption(i, t) for i, t in zip(inside, self.titles(patches, beam), strict=True)}
        rest = [i for i in unique if i not in out]
        if rest:
            out |= self._from_catalogue(rest, path, beam, extractor)
        return [out[i] for i in ids]

    def _from_catalogue(
        self, ids: list[str], data: Path, beam: int | None, extractor: ImageEncoder | None
    ) -> dict[str, Caption]:
        from samestyle.catalog.store import read_catalog

        root = Path(self.cfg.data.catalog)
        catalog = read_catalog(root) if root.exists() else None
        out: dict[str, Caption] = {}
        images: dict[str, Path] = {}
        for i in ids:
            image = catalog.image_path(catalog.get(i)) if catalog is not None and i in catalog else None
            if image is not None:
                images[i] = image
                continue
            where = f"the catalogue {root}" if catalog is not None else f"a catalogue ({root} is missing)"
            msg = f"product '{i}' is not in the prepared subset {data} nor, with an image, in {where}"
            out[i] = Caption(i, error=str(NotFoundError(msg)))
        if images:
            for i, c in zip(images, self.caption_images(list(images.values()), beam, extractor), strict=True):
                out[i] = Caption(i, c.title, c.error)
        return out
