"""Apply a trained joint model to frozen features: adds spaces "joint-image", "joint-text", "joint-fused"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from samestyle.models.joint import JointModel
from samestyle.pipeline.embeddings import EmbeddingSet

JOINT_SPACES = ("joint-image", "joint-text", "joint-fused")


def project(
    model: JointModel,
    image: np.ndarray | None,
    text: np.ndarray | None,
    image_present: np.ndarray | None = None,
    batch: int = 4096,
) -> dict[str, np.ndarray]:
    """Frozen features -> joint vectors, by modality ("image", "text", "fused"; only those computable).

    ``image`` / ``text`` are what the model's towers read (pooled vectors, or cached activations / hidden
    states, float16 allowed). Behind a text tower, batches are capped at 1024 rows (its activations are
    ``[B, T, 1536]``).
    """
    n = len(image) if image is not None else len(text) if text is not None else 0
    if text is not None and model.has_text_tower:
        batch = min(batch, 1024)
    out: dict[str, list[np.ndarray]] = {}
    model.eval()
    with torch.no_grad():
        for s in range(0, n, batch):
            img = (
                torch.from_numpy(np.asarray(image[s : s + batch], np.float32)) if image is not None else None
            )
            txt = torch.from_numpy(np.asarray(text[s : s + batch], np.float32)) if text is not None else None
            pres = torch.from_numpy(image_present[s : s + batch]) if image_present is not None else None
            res = model(img, txt, pres)
            for name in ("image", "text", "fused"):
                value = getattr(res, name)
                if value is not None:
                    out.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def add_joint_spaces(
    emb: EmbeddingSet,
    model: JointModel,
    run_dir: str | Path,
    image_features: np.ndarray | None = None,
    *,
    text_features: np.ndarray | None = None,
) -> EmbeddingSet:
    """Project every product and add the three joint spaces to ``emb`` (in place); returns it.

    ``image_features``: the image tower's cached inputs aligned with ``emb.ids`` when the run's tower
    is not "pooled" (see :func:`samestyle.train.run.tower_features`); ``text_features`` likewise for a
    text tower (:func:`samestyle.train.run.text_tower_features`).
    """
    present = emb.present["image"]
    image = image_features if image_features is not None else emb.vectors["image"]
    text = text_features if text_features is not None else emb.vectors["text"]
    vecs = project(model, image, text, present)
    name = f"joint:{Path(run_dir).resolve()}"
    emb.add_space("joint-image", vecs["image"], present, name)
    emb.add_space("joint-text", vecs["text"], emb.present["text"], name)
    emb.add_space("joint-fused", vecs["fused"], emb.present["text"], name)
    emb.meta["model_run"] = str(Path(run_dir).resolve())
    return emb
