"""Token buckets on explicit times: burst, continuous refill, fractional rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasksd.model.ratelimit import Bucket, take

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_burst_then_refill() -> None:
    bucket = None
    results = []
    for _ in range(12):
        ok, bucket = take(bucket, T0, rate=10, capacity=10)
        results.append(ok)
    assert results == [True] * 10 + [False] * 2
    ok, bucket = take(bucket, T0 + timedelta(milliseconds=99), rate=10, capacity=10)
    assert not ok
    ok, bucket = take(bucket, T0 + timedelta(milliseconds=101), rate=10, capacity=10)
    assert ok


def test_fractional_rate() -> None:
    ok, bucket = take(None, T0, rate=0.5, capacity=1)
    assert ok
    assert not take(bucket, T0 + timedelta(seconds=1.9), rate=0.5, capacity=1)[0]
    assert take(bucket, T0 + timedelta(seconds=2.0), rate=0.5, capacity=1)[0]


def test_never_above_capacity_and_clock_going_back() -> None:
    ok, bucket = take(Bucket(0, T0), T0 + timedelta(hours=1), rate=10, capacity=3)
    assert ok and bucket.tokens == 2
    ok, back = take(bucket, T0, rate=10, capacity=3)  # an earlier time adds nothing
    assert ok and back.tokens == 1
