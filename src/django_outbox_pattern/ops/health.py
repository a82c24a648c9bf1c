"""Liveness and readiness for the relay and the consumer.

Liveness: the running loop writes a heartbeat file (``--health-file``) on its passes, at most once per
``HEARTBEAT_INTERVAL_S``; a probe (``outboxctl check --liveness``, or a Kubernetes command probe) reads it
and fails when it is older than a maximum age. A consumer also writes the age of its oldest unsettled
message and its ``DEFAULT_CONSUMER_STALL_THRESHOLD``: the probe fails when that message is older (a
stalled queue, although the process is alive). Readiness (the database answers ``SELECT 1``
and the broker accepts a STOMP CONNECT) is ``probes.readiness()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django_outbox_pattern import exceptions
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import probes

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0  # at most one file write per second
DEFAULT_MAX_AGE_S = 60.0  # a heartbeat older than this fails liveness


def write_heartbeat(
    path: str | os.PathLike[str],
    *,
    component: str = "",
    now: float | None = None,
    extra: dict[str, float] | None = None,
) -> None:
    """Atomically replace ``path`` with the current time (JSON: time, pid, component, and ``extra``)."""
    target = Path(path)
    content = json.dumps(
        {
            "time": time.time() if now is None else now,
            "pid": os.getpid(),
            "component": component,
            **(extra or {}),
        }
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_heartbeat(
    path: str | os.PathLike[str], max_age_s: float = DEFAULT_MAX_AGE_S, *, now: float | None = None
) -> probes.CheckResult:
    """Liveness: ok when ``path`` holds a heartbeat at most ``max_age_s`` seconds old."""
    target = Path(path)
    data: dict[str, Any] = {}
    try:
        text = target.read_text()
        data = json.loads(text) if text.strip() else {"time": target.stat().st_mtime}
        stamp_s = float(data["time"])
    except FileNotFoundError:
        detail = f"no heartbeat file at {target}: is the process running with --health-file?"
        return probes.CheckResult("liveness", "fail", detail)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return probes.CheckResult("liveness", "fail", f"cannot read the heartbeat file {target}: {exc}")
    age_s = max(0.0, (time.time() if now is None else now) - stamp_s)
    if age_s > max_age_s:
        detail = f"last heartbeat {age_s:.1f}s ago (over {max_age_s:g}s): stuck or stopped"
        return probes.CheckResult("liveness", "fail", detail, age_s=age_s)
    stalled = _stalled(data)
    if stalled:
        return probes.CheckResult(
            "liveness", "fail", f"last heartbeat {age_s:.1f}s ago, but {stalled}", age_s=age_s
        )
    return probes.CheckResult("liveness", "pass", f"last heartbeat {age_s:.1f}s ago", age_s=age_s)


def _stalled(data: dict[str, Any]) -> str:
    """Why the consumer that wrote ``data`` counts as stalled, or "" when it does not."""
    try:
        unsettled_s = float(data.get("unsettled_age_s", 0.0))
        threshold_s = float(data.get("stall_threshold_s", 0.0))
    except (TypeError, ValueError):
        return ""
    if threshold_s > 0 and unsettled_s > threshold_s:
        return (
            f"its oldest unsettled message is {unsettled_s:.0f}s old (over DEFAULT_CONSUMER_STALL_THRESHOLD "
            f"{threshold_s:g}s): a stuck callback or a stalled queue"
        )
    return ""


class HeartbeatObserver(observing.NullObserver):
    """Writes the heartbeat file on ``heartbeat()``, at most every ``interval_s``. Checks the path at once."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        component: str = "",
        interval_s: float = HEARTBEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.component = component
        self._interval_s = interval_s
        self._clock = clock
        self._failing = False
        self._extra: dict[str, float] = {}
        self._stamp = time.time()
        try:
            write_heartbeat(self.path, component=component, now=self._stamp)
        except OSError as exc:
            raise exceptions.ConfigurationError(
                f"Cannot write the health file {self.path} ({exc}): give a writable path to --health-file."
            ) from exc
        self._last = clock()

    def __repr__(self) -> str:
        return f"<HeartbeatObserver {self.path}>"

    def heartbeat(self) -> None:
        now = self._clock()
        if now - self._last < self._interval_s:
            return
        self._last = now
        self._stamp = time.time()
        try:
            write_heartbeat(self.path, component=self.component, now=self._stamp, extra=self._extra)
        except OSError as exc:
            if not self._failing:  # say it once, not on every pass
                logger.warning(
                    "Cannot write the health file %s: %s",
                    self.path,
                    exc,
                    extra={"action": "heartbeat_failed"},
                )
            self._failing = True
            return
        self._failing = False

    def consumer_unsettled_age(self, age_s: float, threshold_s: float) -> None:
        """Written with the next heartbeat; at once (keeping the last heartbeat's time) when the consumer
        becomes stalled or recovers, since a stuck worker writes no heartbeat."""
        was_stalled = bool(_stalled(self._extra))
        self._extra = {"unsettled_age_s": round(age_s, 3), "stall_threshold_s": threshold_s}
        if bool(_stalled(self._extra)) != was_stalled:
            with contextlib.suppress(OSError):
                write_heartbeat(self.path, component=self.component, now=self._stamp, extra=self._extra)
