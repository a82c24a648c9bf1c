"""batches.retry_delay: how the spec's retry settings map onto per-row backoff."""

from __future__ import annotations

import random

import pytest

from django_outbox_pattern import conf
from django_outbox_pattern.relaying import batches

DEFAULTS = conf.OutboxSettings()


class Top(random.Random):
    """Always draws the top of the jitter range, to read the nominal delays."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_default_schedule_two_quick_tries_a_pause_then_steady_retries() -> None:
    nominal = [batches.retry_delay(n, DEFAULTS, rng=Top()) for n in range(1, 9)]
    assert nominal == [1, 2, 240, 8, 16, 32, 60, 60]


def test_defaults_retry_for_most_of_an_hour_before_giving_up() -> None:
    total = sum(
        batches.retry_delay(n, DEFAULTS, rng=Top()) for n in range(1, DEFAULTS.DEFAULT_MAXIMUM_RETRY_ATTEMPTS)
    )
    assert 40 * 60 < total < 55 * 60


@pytest.mark.parametrize("attempts", [1, 3, 5, 30])
def test_jitter_stays_between_half_and_the_full_delay(attempts: int) -> None:
    nominal = batches.retry_delay(attempts, DEFAULTS, rng=Top())
    rng = random.Random(attempts)
    draws = [batches.retry_delay(attempts, DEFAULTS, rng=rng) for _ in range(200)]
    assert all(nominal / 2 <= d <= nominal for d in draws)
    assert len(set(draws)) > 100  # really spread: relays retrying together do not stay in lockstep


def test_settings_change_the_schedule() -> None:
    custom = conf.OutboxSettings.from_mapping(
        {"DEFAULT_RETRY_BASE_DELAY": 0.5, "DEFAULT_PAUSE_FOR_RETRY": 10, "DEFAULT_WAIT_RETRY": 3}
    )
    assert [batches.retry_delay(n, custom, rng=Top()) for n in range(1, 7)] == [0.5, 1, 10, 3, 3, 3]


def test_zero_delays_retry_at_once() -> None:
    zero = conf.OutboxSettings.from_mapping(
        {"DEFAULT_RETRY_BASE_DELAY": 0, "DEFAULT_PAUSE_FOR_RETRY": 0, "DEFAULT_WAIT_RETRY": 0}
    )
    assert {batches.retry_delay(n, zero) for n in range(1, 10)} == {0.0}
