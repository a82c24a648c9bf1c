"""Pure backoff arithmetic shared by the relay (per-row retries) and both supervisors (reconnects)."""

from __future__ import annotations

import random


def compute_backoff(
    attempts: int, *, base: float, cap: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt number ``attempts + 1``: ``base * 2**(attempts-1)``, capped at ``cap``.

    With ``jitter`` the result is drawn uniformly from [delay/2, delay] ("equal jitter"), so retries from
    many relays or consumers spread out but never wait less than half the nominal delay.
    """
    if attempts <= 0 or base <= 0 or cap <= 0:
        return 0.0
    exponent = min(attempts - 1, 62)
    delay = min(cap, base * (2.0**exponent))
    if not jitter:
        return float(delay)
    draw = (rng or random).uniform(0.5, 1.0)
    return float(delay * draw)
