"""The retry schedule and the stop rule, for several configurations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasksd.engine.retry import retry_delay, should_retry
from tasksd.model.queue import RetryConfig

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def config(
    min_s: float, max_s: float, doublings: int, attempts: int = 100, duration_s: float = 0
) -> RetryConfig:
    return RetryConfig(
        attempts, timedelta(seconds=duration_s), timedelta(seconds=min_s), timedelta(seconds=max_s), doublings
    )


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (config(10, 300, 3), [10, 20, 40, 80, 160, 240, 300, 300]),  # the documented example
        (config(0.1, 3600, 16), [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8]),  # the defaults
        (config(1, 10, 0), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]),  # linear from the start
        (config(2, 2, 5), [2, 2, 2]),
        (config(5, 100, 1), [5, 10, 20, 30, 40]),
    ],
)
def test_schedule(cfg: RetryConfig, expected: list[float]) -> None:
    got = [retry_delay(n, cfg).total_seconds() for n in range(1, len(expected) + 1)]
    assert got == pytest.approx(expected)


def test_stop_needs_both_limits() -> None:
    cfg = config(1, 10, 2, attempts=3, duration_s=60)
    assert should_retry(cfg, 3, T0, T0 + timedelta(seconds=30))  # attempts used, time left
    assert should_retry(cfg, 1, T0, T0 + timedelta(seconds=90))  # time used, attempts left
    assert not should_retry(cfg, 3, T0, T0 + timedelta(seconds=61))


def test_no_time_limit_and_unlimited_attempts() -> None:
    assert not should_retry(config(1, 10, 2, attempts=3), 3, T0, T0)
    assert should_retry(config(1, 10, 2, attempts=3), 2, T0, T0 + timedelta(days=30))
    assert should_retry(config(1, 10, 2, attempts=-1), 10_000, T0, T0 + timedelta(days=30))
