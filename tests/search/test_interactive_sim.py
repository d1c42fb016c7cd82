"""The simulated-user protocol runs real sessions: success never decreases and the target stays hidden."""

from __future__ import annotations

from search_fakes import Site

from samestyle.eval.interactive import simulate
from samestyle.search.service import SearchService


def test_simulated_sessions(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    targets = service.index.metadata.get(["p3", "p10", "p21"])
    for feedback in (True, False):
        res = simulate(service, targets, rounds=2, k=5, feedback=feedback)
        curve = [res[f"success@5 after {r}"] for r in range(3)]
        assert curve == sorted(curve) and res["n_sessions"] == 3
    assert len(service.sessions) == 6
    for sid in list(service.sessions._sessions):
        session = service.sessions.get(sid)
        assert session.rounds == 3 and len(session.seen) >= 15
