"""Kaleido-BERT / FashionBERT-style cross-modal pre-training on cached frozen features (see docs/pretrain.md).

Submodules are imported on use (torch-heavy): ``patches``, ``data``, ``prepare``, ``model``, ``tasks``,
``train``, ``run``, ``rerank``, ``categories``, ``category_task``, ``evaluate``.
"""
