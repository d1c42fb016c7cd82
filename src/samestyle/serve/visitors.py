"""SIMULATED visitors driving the live service: issue B's click simulator with the real engine in the loop.

The user model is :mod:`samestyle.mining.simulator`'s (queries from a random intent product's attributes,
relevance = having every field value of the query, position-biased examination, click / cart / order
probabilities), but the result lists come from the running service over HTTP, so each A/B arm's ranking
decides what the simulated users see and click. The service logs impressions and assigns arms itself;
the visitors only search and post their clicks, carts and orders (``POST /api/events``).

Because the simulator knows the true relevance, the run also measures each arm *offline*: the share of
relevant products among those shown (precision@k). The online test must agree with it: the arm that
shows more relevant products must win on CTR. All data here is simulated; see ``docs/serving.md``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from samestyle.catalog.store import Catalog
from samestyle.errors import SamestyleError
from samestyle.mining.simulator import QueryEngine as QueryModel  # the simulator's query generator + truth
from samestyle.mining.simulator import SimulatorConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisitorConfig:
    """How many simulated sessions and visitors; the user model's parameters come from ``user``."""

    sessions: int = 2000
    visitors: int | None = None  # None: sessions // 3 + 1 returning visitors
    k: int = 20
    seed: int = 0
    user: SimulatorConfig = field(default_factory=SimulatorConfig)


@dataclass
class ArmStats:
    searches: int = 0
    shown: int = 0
    relevant_shown: int = 0
    clicks: int = 0
    carts: int = 0
    orders: int = 0

    @property
    def precision(self) -> float:
        """Offline: relevant products / products shown (the simulator's ground truth)."""
        return self.relevant_shown / self.shown if self.shown else 0.0


@dataclass
class VisitorRun:
    arms: dict[str, ArmStats]
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "errors": self.errors,
            "arms": {
                name: {**vars(a), "precision_at_k": round(a.precision, 4)}
                for name, a in sorted(self.arms.items())
            },
        }


def _post_event(http: httpx.Client, payload: dict[str, Any]) -> bool:
    return http.post("/api/events", json=payload).status_code == 200


def simulate_visitors(
    http: httpx.Client,
    catalog: Catalog,
    config: VisitorConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> VisitorRun:
    """Run simulated sessions against the service behind ``http`` (an ``httpx.Client`` with a base URL,
    or FastAPI's ``TestClient``). Returns per-arm counts and offline precision; the service's event log
    holds the impressions, clicks, carts and orders for ``samestyle ab-report`` and ``samestyle mine``.
    """
    cfg = config or VisitorConfig()
    user = cfg.user
    rng = random.Random(cfg.seed)
    model = QueryModel(catalog, user, rng)
    if not model.intents:
        raise SamestyleError(
            "no catalogue product has the fields of any query template: cannot simulate queries"
        )
    n_visitors = cfg.visitors or cfg.sessions // 3 + 1
    run = VisitorRun({})
    for s in range(cfg.sessions):
        visitor = f"sim-v{rng.randrange(n_visitors):06d}"
        headers = {"X-Visitor-Id": visitor, "X-Session-Id": f"sim-s{s:07d}"}
        for _ in range(rng.randint(1, user.queries_per_session)):
            query = model.query()
            resp = http.get("/api/search", params={"text": query, "k": cfg.k}, headers=headers)
            if resp.status_code != 200:
                run.errors += 1
                continue
            body = resp.json()
            arm = run.arms.setdefault(body["variant"], ArmStats())
            relevant, leaf = model.relevant[query], model.leaf_of[query]
            arm.searches += 1
            arm.shown += len(body["hits"])
            arm.relevant_shown += sum(h["id"] in relevant for h in body["hits"])
            for hit in body["hits"]:
                r, pid = hit["position"], hit["id"]
                if rng.random() >= 1.0 / r**user.eta:
                    continue
                near = leaf is not None and model.leaf_by_id.get(pid) == leaf
                p_click = (
                    user.click_relevant if pid in relevant else user.click_near if near else user.click_other
                )
                if rng.random() >= p_click:
                    continue
                event = {"product_id": pid, "visitor_id": visitor, "request_id": body["request_id"]}
                ok = _post_event(http, {**event, "event": "click"})
                arm.clicks += ok
                boost = 1.0 if pid in relevant else 0.25
                if rng.random() < user.cart_given_click * boost:
                    arm.carts += _post_event(http, {**event, "event": "cart"})
                    if rng.random() < user.order_given_cart:
                        arm.orders += _post_event(http, {**event, "event": "order"})
                run.errors += not ok
        if progress is not None:
            progress(s + 1)
    log.info("simulated %d sessions (SIMULATED visitors): %s", cfg.sessions, run.to_dict())
    return run


__all__ = ["ArmStats", "VisitorConfig", "VisitorRun", "simulate_visitors"]
