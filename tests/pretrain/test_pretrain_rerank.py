import numpy as np
import torch
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.eval.protocols import sample100
from samestyle.pretrain.rerank import CrossScorer, dot_score_fn, rerank_latency, rerank_score_fn
from samestyle.pretrain.train import PretrainConfig, Pretrainer


def _scorer() -> tuple[CrossScorer, Pretrainer, dict[str, np.ndarray]]:
    torch.manual_seed(0)
    data = tiny_data()
    cfg = PretrainConfig(model=tiny_model_config(data))
    model = Pretrainer(cfg, torch.from_numpy(data["token_table"]))
    return CrossScorer(model, data["tokens"], data["patches"], batch_size=5), model, data


def test_cross_scorer_matches_a_per_pair_loop() -> None:
    scorer, model, data = _scorer()
    q = np.array([0, 3], dtype=np.int64)
    cand = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
    for direction in ("i2t", "t2i"):
        got = scorer(q, cand, direction)
        for b in range(2):
            for c in range(3):
                t, i = (cand[b, c], q[b]) if direction == "i2t" else (q[b], cand[b, c])
                with torch.inference_mode():
                    ref = model.itm_score(
                        torch.from_numpy(data["tokens"][t : t + 1]),
                        torch.from_numpy(data["patches"][i : i + 1].astype(np.float32)),
                    )
                assert abs(float(ref[0]) - got[b, c]) < 1e-4


def test_rerank_orders_only_the_bi_encoder_top_k() -> None:
    bi = lambda q, c, d: -c.astype(float)  # noqa: E731  bi order: smaller index first
    cross = lambda q, c, d: c.astype(float)  # noqa: E731  cross order: larger index first
    cand = np.array([[5, 1, 9, 3, 7]], dtype=np.int64)
    s = rerank_score_fn(bi, cross, 3)(np.array([0]), cand, "i2t")
    order = cand[0][np.argsort(-s[0])].tolist()
    assert order == [5, 3, 1, 7, 9]  # top-3 of bi {1, 3, 5} reversed by cross, then 7, 9 in bi order


def test_rerank_rescores_every_candidate_tied_with_the_kth() -> None:
    bi_scores = np.array([[0.5, 0.9, 0.5, 0.1]])  # candidates 0 and 2 tie at position 2
    bi = lambda q, c, d: bi_scores  # noqa: E731
    seen: list[list[int]] = []

    def cross(q: np.ndarray, c: np.ndarray, d: str) -> np.ndarray:
        seen.append(sorted(c[0].tolist()))
        return np.zeros(c.shape)  # a cross-encoder that cannot tell them apart

    s = rerank_score_fn(bi, cross, 2)(np.array([0]), np.array([[10, 11, 12, 13]]), "i2t")
    assert seen == [[10, 11, 12]]  # both tied candidates re-scored, not just the first in sort order
    assert s[0, 0] == s[0, 1] == s[0, 2] > s[0, 3]  # still tied: a pessimistic rank stays pessimistic


def test_rerank_with_k_all_equals_cross_alone_in_sample100() -> None:
    scorer, _, data = _scorer()
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(24, 4)), rng.normal(size=(24, 4))
    kw = dict(n_queries=8, n_negatives=10, draws=1, seed=0, groups=data["sub"])
    alone = sample100(img, txt, score_fn=scorer, **kw)
    full = sample100(img, txt, score_fn=rerank_score_fn(dot_score_fn(img, txt), scorer, 11), **kw)
    assert alone["sum_r"] == full["sum_r"]
    lat = rerank_latency(scorer, 4, n_queries=3)
    assert lat["k"] == 4 and lat["median_s"] > 0


def test_linear_probe_on_cls_features_learns_separable_labels() -> None:
    from samestyle.pretrain.categories import cls_features, linear_probe

    _, model, data = _scorer()
    feats = cls_features(model, data["tokens"], data["patches"], batch_size=7)
    assert feats.shape == (24, 16)
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 5)) + 4.0 * np.eye(5)[y]
    got = linear_probe(x[:40], y[:40], x[40:], y[40:])
    assert got["acc"] > 0.9 and got["macro_f1"] > 0.9
    shuffled = linear_probe(x[:40], rng.permutation(y[:40]), x[40:], y[40:])
    assert shuffled["acc"] < got["acc"]
