"""Click logs -> same-style positive pairs: the log format, a documented SIMULATED log, the miner.

Example:
    >>> from samestyle.mining import MiningConfig, mine_pairs, read_click_log  # doctest: +SKIP
    >>> events, rejects = read_click_log("clicks.jsonl")  # doctest: +SKIP
    >>> result = mine_pairs(events, catalog, MiningConfig())  # doctest: +SKIP
    >>> write_pairs(result.pairs, "pairs.parquet")  # doctest: +SKIP
"""

from samestyle.mining.clicklog import ClickLogError, normalize_query, read_click_log, write_click_log
from samestyle.mining.events import ClickEvent, EventType
from samestyle.mining.miner import MiningConfig, MiningResult, MiningStats, mine_pairs
from samestyle.mining.pairs import PositivePair, pairs_from_groups, read_pairs, self_pairs, write_pairs
from samestyle.mining.relevance import QueryTokenOverlap, TitleJaccard
from samestyle.mining.simulator import GroundTruth, SimulatedLog, SimulatorConfig, simulate_clicks

__all__ = [
    "ClickEvent",
    "ClickLogError",
    "EventType",
    "GroundTruth",
    "MiningConfig",
    "MiningResult",
    "MiningStats",
    "PositivePair",
    "QueryTokenOverlap",
    "SimulatedLog",
    "SimulatorConfig",
    "TitleJaccard",
    "mine_pairs",
    "normalize_query",
    "pairs_from_groups",
    "read_click_log",
    "read_pairs",
    "self_pairs",
    "simulate_clicks",
    "write_click_log",
    "write_pairs",
]
