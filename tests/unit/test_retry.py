from __future__ import annotations

import pytest

from durable import Retry


def test_exponential_backoff_is_capped():
    r = Retry(max_attempts=10, backoff="exponential", base=1.0, max_delay=10.0)
    assert [r.delay_seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_linear_and_constant():
    assert [Retry(backoff="linear", base=2).delay_seconds(n) for n in (1, 2, 3)] == [2, 4, 6]
    assert [Retry(backoff="constant", base=3).delay_seconds(n) for n in (1, 5)] == [3, 3]


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 8.0), (0.5, 6.0), (0.999999, 4.000004)])
def test_jitter_spreads_within_half(rand, expected):
    r = Retry(backoff="constant", base=8, jitter=True)
    assert r.delay_seconds(1, rand) == pytest.approx(expected)


def test_jitter_fraction():
    r = Retry(backoff="constant", base=10, jitter=0.1)
    assert 9.0 <= r.delay_seconds(1, 0.99) <= 10.0
