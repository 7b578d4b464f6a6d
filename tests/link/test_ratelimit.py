"""The token bucket: a steady rate passes, bursts up to the bound pass, a flood does not."""

import pytest

from sv2proxy.link.ratelimit import TokenBucket


def test_burst_then_refill():
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert all(bucket.take(0.0) for _ in range(20))
    assert not bucket.take(0.0)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert not bucket.take(0.1)


def test_a_steady_rate_at_the_limit_always_passes():
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert all(bucket.take(i / 10) for i in range(1000))


def test_bad_parameters():
    with pytest.raises(ValueError):
        TokenBucket(0, 10, 0.0)
