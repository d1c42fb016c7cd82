"""Joint-model rows of the grocery protocol (:mod:`samestyle.eval.grocery`): one run, an ensemble of runs,
or a model in memory (model selection on photos carved from train, :mod:`samestyle.train.grocery`).

Queries are the val photos with their class name, the gallery the 81 products (iconic image +
description), projected with :func:`samestyle.pipeline.joint.project` and scored by
:func:`~samestyle.eval.grocery.grocery_table`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from samestyle.errors import SamestyleError
from samestyle.eval.grocery import GroceryFeatures, grocery_table
from samestyle.models.base import l2_normalize
from samestyle.models.joint import JointModel

log = logging.getLogger(__name__)

Vectors = dict[str, np.ndarray]  # modality ("image", "text", "fused") -> [N, D] joint vectors


def _joint_vectors(f: GroceryFeatures, run_dir: str | Path, threads: int = 1) -> tuple[Vectors, Vectors]:
    """A run's joint vectors of the val queries and of the gallery."""
    from samestyle.models.towers import tower_input_kind
    from samestyle.train.run import load_run

    model, cfg = load_run(run_dir)
    if getattr(model, "has_text_tower", False):
        raise SamestyleError(
            f"run {run_dir} has a text tower (it reads MiniLM hidden states); the grocery table feeds "
            "sentence vectors, so only runs without one can be scored here"
        )
    if cfg.model.text_dim != f.gal_txt.shape[1]:
        raise SamestyleError(
            f"run {run_dir} expects {cfg.model.text_dim}-d text features, the text encoder "
            f"{f.encoders['text']} gives {f.gal_txt.shape[1]}"
        )
    kind = tower_input_kind(cfg.tower)
    if kind == "pooled":
        if cfg.model.image_dim != f.gal_img.shape[1]:
            raise SamestyleError(
                f"run {run_dir} expects {cfg.model.image_dim}-d image features, the image encoder "
                f"{f.encoders['image']} gives {f.gal_img.shape[1]}"
            )
        q_in, g_in = f.photo_img, f.gal_img
        q_present = np.ones(len(q_in), dtype=bool)
        g_present = np.ones(len(g_in), dtype=bool)
    else:
        from samestyle.features.activations import ActivationExtractor, query_activations

        log.info(
            "run %s has a %r tower: extracting %s activations (not cached)", run_dir, cfg.tower.kind, kind
        )
        extractor = ActivationExtractor(kind, num_threads=threads)
        q_in, q_present = query_activations(extractor, f.photo_paths)
        g_in, g_present = query_activations(extractor, f.iconic_paths)
    return _project_both(model, q_in, f.query_txt, g_in, f.gal_txt, q_present, g_present)


def _project_both(
    model: JointModel,
    q_in: np.ndarray,
    q_txt: np.ndarray,
    g_in: np.ndarray,
    g_txt: np.ndarray,
    q_present: np.ndarray | None = None,
    g_present: np.ndarray | None = None,
) -> tuple[Vectors, Vectors]:
    from samestyle.pipeline.joint import project

    q_present = np.ones(len(q_in), dtype=bool) if q_present is None else q_present
    g_present = np.ones(len(g_in), dtype=bool) if g_present is None else g_present
    return project(model, q_in, q_txt, q_present), project(model, g_in, g_txt, g_present)


def _score(q: Vectors, g: Vectors, f_groups: tuple[np.ndarray, np.ndarray]) -> dict[str, dict[str, float]]:
    return grocery_table(
        q["image"], q["text"], g["image"], g["text"], g["fused"], q["fused"], f_groups[0], f_groups[1],
    )  # fmt: skip


def joint_table(f: GroceryFeatures, run_dir: str | Path, threads: int = 1) -> dict[str, dict[str, float]]:
    """The ``"joint"`` method: every row of the protocol for one ``samestyle train`` run folder."""
    return _score(*_joint_vectors(f, run_dir, threads), (f.query_groups, f.gallery_groups))


def ensemble_table(
    f: GroceryFeatures, run_dirs: Sequence[str | Path], threads: int = 1
) -> dict[str, dict[str, float]]:
    """The joint rows of an ensemble of runs (e.g. seeds): per modality, the mean of the runs' joint
    vectors, re-normalised (cosine scores averaged up to the norms)."""
    if not run_dirs:
        raise SamestyleError("an ensemble needs at least one run folder")
    parts = [_joint_vectors(f, r, threads) for r in run_dirs]
    q = {m: l2_normalize(np.mean([p[0][m] for p in parts], axis=0)) for m in parts[0][0]}
    g = {m: l2_normalize(np.mean([p[1][m] for p in parts], axis=0)) for m in parts[0][1]}
    return _score(q, g, (f.query_groups, f.gallery_groups))


def model_table(
    model: JointModel,
    query_in: np.ndarray,
    query_txt: np.ndarray,
    query_groups: np.ndarray,
    gal_in: np.ndarray,
    gal_txt: np.ndarray,
    gallery_groups: np.ndarray,
) -> dict[str, dict[str, float]]:
    """All rows of the protocol for a joint model on pooled image inputs: project queries (photo + class
    name) and the gallery (iconic image + description) with :func:`~samestyle.pipeline.joint.project`,
    then score. :mod:`samestyle.train.grocery` selects models with it on photos carved from train; the
    ``"joint"`` method runs the same projection and scoring on val."""
    q, g = _project_both(model, query_in, query_txt, gal_in, gal_txt)
    return _score(q, g, (query_groups, gallery_groups))


__all__ = ["ensemble_table", "joint_table", "model_table"]
