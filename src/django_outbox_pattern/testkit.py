"""Test helpers for projects that publish through the outbox (the ``outbox`` pytest fixture uses these).

    def test_order_is_announced(outbox):
        Order.objects.create(number="A-1")
        outbox.assert_published("/topic/orders.created", body={"id": 1, "number": "A-1"})
        sent = outbox.drain()           # the real relay, synchronously, into an in-memory broker
        assert sent[0].headers["dop-msg-destination"] == "/topic/orders.created"

Works in any test with database access (pytest-django's ``db``/``transactional_db``, or Django's
``TestCase``): ``OutboxTestHelper()`` needs no pytest.
"""

from __future__ import annotations

import difflib
import json
import pprint
from collections.abc import Mapping
from typing import Any

from django.db import router

from django_outbox_pattern import conf, testing, wiring
from django_outbox_pattern.choices import StatusChoice

MAX_DRAIN_PASSES = 10_000  # a drain that needs more passes than this is stuck: fail instead of hanging
_ANY: Any = object()


class OutboxTestHelper:
    """Look at the outbox rows a test wrote, assert on them, and relay them into a ``MemoryBroker``."""

    def __init__(
        self, broker: testing.MemoryBroker | None = None, *, settings: conf.OutboxSettings | None = None
    ) -> None:
        self.broker = broker or testing.MemoryBroker()
        self._settings = settings

    @property
    def settings(self) -> conf.OutboxSettings:
        return self._settings or conf.get_settings()

    @property
    def model(self) -> Any:
        return wiring.published_model(self.settings)

    @property
    def sent(self) -> list[testing.SentMessage]:
        """Every message the drains sent so far (also what anything else sent to ``broker``)."""
        return list(self.broker.sent)

    def published(self, destination: str | None = None, *, status: int | None = None) -> list[Any]:
        """Outbox rows (any status unless given), oldest first; only those for ``destination`` if given."""
        qs = self.model.objects.all()
        if destination is not None:
            qs = qs.filter(destination=destination)
        if status is not None:
            qs = qs.filter(status=status)
        return list(qs.order_by("added", "pk"))

    def pending(self, destination: str | None = None) -> list[Any]:
        """Rows the relay has not sent yet."""
        return self.published(destination, status=StatusChoice.SCHEDULE)

    def assert_published(
        self,
        destination: str,
        body: Any = _ANY,
        count: int | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """Assert that rows for ``destination`` exist, matching ``body`` (equal) and ``headers`` (subset).

        With ``count`` exactly that many must match; otherwise at least one. Returns the matching rows.
        On failure the message lists the rows written and diffs the expected body against the closest one.
        """
        rows = self.published(destination)
        matching = [
            row for row in rows if _body_matches(row.body, body) and _headers_match(row.headers, headers)
        ]
        if (count is None and matching) or (count is not None and len(matching) == count):
            return matching
        wanted = "at least one" if count is None else f"{count}"
        lines = [f"expected {wanted} outbox row(s) for {destination!r}, found {len(matching)} matching."]
        if body is not _ANY:
            lines.append(f"  body:    {body!r}")
        if headers:
            lines.append(f"  headers: {dict(headers)!r}")
        lines.extend(self._explain(destination, rows, body))
        raise AssertionError("\n".join(lines))

    def _explain(self, destination: str, rows: list[Any], body: Any) -> list[str]:
        if not rows:
            everything = self.published()
            if not everything:
                return ["The outbox is empty: was the model saved, and is it decorated with @publish?"]
            destinations = sorted({row.destination for row in everything})
            hint = [f"Rows exist for other destinations: {', '.join(destinations)}"]
            versioned = [d for d in destinations if d.startswith(destination + ".")]
            if versioned:
                hint.append(f"(a Config version is appended to the destination: {versioned[0]!r}?)")
            return hint
        out = [f"Rows for {destination!r}:"]
        out.extend(
            f"  {index}. body={row.body!r} headers={_user_headers(row.headers)!r}"
            for index, row in enumerate(rows)
        )
        if body is not _ANY:
            closest = max(rows, key=lambda row: _similarity(row.body, body))
            out.append("Diff of the expected body (-) against the closest row (+):")
            out.extend(
                "  " + line.rstrip("\n")
                for line in difflib.unified_diff(
                    _pretty(body), _pretty(closest.body), "expected", "actual", n=2
                )
            )
        return out

    def drain(self) -> list[testing.SentMessage]:
        """Run the relay synchronously until no row is due; return the messages it sent.

        The real ``relay.Relay`` sends over a ``MemoryTransport``, so rows end up SUCCEEDED (or retried,
        or FAILED) exactly as in production; broker errors are raised to the test.
        """
        from django_outbox_pattern.relaying import assembly, store

        model = self.model
        outbox = store.OutboxStore(model, using=router.db_for_write(model))
        engine = assembly.build_relay(
            self.settings, outbox_store=outbox, transport=testing.MemoryTransport(self.broker)
        )
        before = len(self.broker.sent)
        try:
            for _ in range(MAX_DRAIN_PASSES):
                if engine.run_once() == 0:
                    break
            else:
                raise AssertionError(f"The outbox did not drain in {MAX_DRAIN_PASSES} relay passes.")
        finally:
            engine.close()
        return self.broker.sent[before:]


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _body_matches(actual: Any, expected: Any) -> bool:
    return expected is _ANY or actual == expected or _loads(actual) == _loads(expected)


def _headers_match(actual: Any, expected: Mapping[str, Any] | None) -> bool:
    if not expected:
        return True
    actual = actual or {}
    return all(key in actual and str(actual[key]) == str(value) for key, value in expected.items())


def _user_headers(headers: Any) -> Any:
    """Headers without the generated dop-msg-* ones, which differ on every row."""
    if not isinstance(headers, Mapping):
        return headers
    return {k: v for k, v in headers.items() if not str(k).startswith("dop-")}


def _pretty(value: Any) -> list[str]:
    value = _loads(value)
    try:
        text = json.dumps(value, indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = pprint.pformat(value)
    return [line + "\n" for line in text.splitlines()]


def _similarity(actual: Any, expected: Any) -> float:
    return difflib.SequenceMatcher(None, "".join(_pretty(expected)), "".join(_pretty(actual))).ratio()
