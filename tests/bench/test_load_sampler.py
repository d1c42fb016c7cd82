import time

import pytest

from samestyle.bench.load import LoadSampler


def test_load_sampler_samples_in_the_background_and_summarises(monkeypatch: pytest.MonkeyPatch) -> None:
    values = iter([1.0, 3.0, 2.0] + [2.0] * 1000)
    monkeypatch.setattr("samestyle.bench.load.os.getloadavg", lambda: (next(values), 0.0, 0.0))
    with LoadSampler(every=0.01) as load:
        deadline = time.monotonic() + 5
        while len(load.samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    got = load.summary()
    assert load.samples[:3] == [1.0, 3.0, 2.0] and got["min"] == 1.0 and got["max"] == 3.0
    assert got["samples"] == len(load.samples) >= 3


def test_load_sampler_without_samples_reports_the_current_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("samestyle.bench.load.os.getloadavg", lambda: (0.5, 0.0, 0.0))
    assert LoadSampler(every=60).summary() == {"min": 0.5, "median": 0.5, "max": 0.5, "samples": 1}
