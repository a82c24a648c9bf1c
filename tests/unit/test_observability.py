"""The Observer protocol, its plain forms, build_observer(), and structured logs."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from django_outbox_pattern import exceptions, logformat
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import health, observability

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "django_outbox_pattern"
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
# Log calls in modules owned by others that still lack an action (reported to the lead): path -> messages.
KNOWN_WITHOUT_ACTION: dict[str, set[str]] = {}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def batch_published(
        self, count: int, destination_counts: Mapping[str, int], receipt_latencies_s: Sequence[float]
    ) -> None:
        self.calls.append(("batch_published", (count, dict(destination_counts), list(receipt_latencies_s))))

    def send_failed(self, count: int, reason: str) -> None:
        self.calls.append(("send_failed", (count, reason)))

    def dead_lettered(self, count: int, reason: str) -> None:
        self.calls.append(("dead_lettered", (count, reason)))

    def retried(self, count: int) -> None:
        self.calls.append(("retried", (count,)))

    def consumed(self) -> None:
        self.calls.append(("consumed", ()))

    def duplicate_discarded(self) -> None:
        self.calls.append(("duplicate_discarded", ()))

    def consumer_nacked(self) -> None:
        self.calls.append(("consumer_nacked", ()))

    def relay_up(self, up: bool) -> None:
        self.calls.append(("relay_up", (up,)))

    def consumer_up(self, up: bool) -> None:
        self.calls.append(("consumer_up", (up,)))

    def heartbeat(self) -> None:
        self.calls.append(("heartbeat", ()))


class Exploding(observing.NullObserver):
    def consumed(self) -> None:
        raise RuntimeError("exporter down")


def emit_all(observer: observing.Observer) -> None:
    observer.batch_published(3, {"/queue/a": 2, "/queue/b": 1}, [0.01, 0.02, 0.03])
    observer.send_failed(2, "no receipt")
    observer.dead_lettered(1, "expired")
    observer.retried(2)
    observer.consumed()
    observer.duplicate_discarded()
    observer.consumer_nacked()
    observer.relay_up(True)
    observer.consumer_up(False)
    observer.heartbeat()


EXPECTED_CALLS = [
    ("batch_published", (3, {"/queue/a": 2, "/queue/b": 1}, [0.01, 0.02, 0.03])),
    ("send_failed", (2, "no receipt")),
    ("dead_lettered", (1, "expired")),
    ("retried", (2,)),
    ("consumed", ()),
    ("duplicate_discarded", ()),
    ("consumer_nacked", ()),
    ("relay_up", (True,)),
    ("consumer_up", (False,)),
    ("heartbeat", ()),
]


def test_null_and_multi_observers_satisfy_the_protocol() -> None:
    assert isinstance(observing.NullObserver(), observing.Observer)
    assert isinstance(observing.MultiObserver(), observing.Observer)
    assert isinstance(Recorder(), observing.Observer)
    emit_all(observing.NullObserver())  # does nothing, raises nothing


def test_multi_observer_forwards_every_event_to_each_observer() -> None:
    first, second = Recorder(), Recorder()
    emit_all(observing.MultiObserver(first, second))
    assert first.calls == EXPECTED_CALLS
    assert second.calls == EXPECTED_CALLS


def test_an_observer_that_raises_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    after = Recorder()
    multi = observing.MultiObserver(Exploding(), after)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern.ops.observability"):
        multi.consumed()
    assert after.calls == [("consumed", ())]
    [record] = caplog.records
    assert record.action == "observer_failed"  # type: ignore[attr-defined]
    assert record.event == "consumed"  # type: ignore[attr-defined]
    assert record.exc_info is not None


def test_build_observer_without_options_observes_nothing() -> None:
    assert isinstance(observability.build_observer(), observing.NullObserver)


def test_build_observer_with_a_health_file_writes_it_at_once(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    observer = observability.build_observer(health_file=str(path))
    assert isinstance(observer, observing.MultiObserver)
    assert [type(o) for o in observer.observers] == [health.HeartbeatObserver]
    assert health.read_heartbeat(path, 5).ok


def test_build_observer_with_an_unwritable_health_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(exceptions.ConfigurationError, match="writable path to --health-file"):
        observability.build_observer(health_file=str(tmp_path / "missing-dir" / "alive"))


# --- structured logs ---------------------------------------------------------------------------------------


def _dict_has_action(node: ast.AST) -> bool:
    return isinstance(node, ast.Dict) and any(
        isinstance(key, ast.Constant) and key.value == "action" for key in node.keys
    )


def _calls_without_action(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, message) of logger calls whose ``extra`` lacks "action" (a name bound to such a dict is ok)."""
    missing: list[tuple[int, str]] = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] or [tree]
    seen: set[int] = set()
    for scope in scopes:
        with_action = {
            target.id
            for node in ast.walk(scope)
            if isinstance(node, ast.Assign) and _dict_has_action(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            if node.func.attr not in LOG_METHODS or not (
                isinstance(owner, ast.Name) and owner.id in {"logger", "log", "_logger", "LOGGER"}
            ):
                continue
            if node.lineno in seen:
                continue
            seen.add(node.lineno)
            extra = next((k.value for k in node.keywords if k.arg == "extra"), None)
            ok = extra is not None and (
                _dict_has_action(extra) or (isinstance(extra, ast.Name) and extra.id in with_action)
            )
            if not ok:
                first = node.args[0] if node.args else None
                message = first.value if isinstance(first, ast.Constant) else ast.unparse(first or node)
                missing.append((node.lineno, str(message)))
    return sorted(missing)


def test_every_log_call_of_the_package_carries_an_action() -> None:
    missing: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        if relative.startswith("migrations"):
            continue
        lines = _calls_without_action(ast.parse(path.read_text(), str(path)))
        lines = [(n, m) for n, m in lines if m not in KNOWN_WITHOUT_ACTION.get(relative, set())]
        if lines:
            missing[relative] = lines
    assert not missing, f"logger calls without extra={{'action': ...}}: {missing}"


def test_the_scanner_finds_a_call_without_action() -> None:
    source = "def f():\n    logger.info('x')\n    logger.info('y', extra={'action': 'y_done'})\n"
    assert _calls_without_action(ast.parse(source)) == [(2, "x")]


def test_json_formatter_puts_the_extra_fields_at_the_top_level() -> None:
    record = logging.LogRecord(
        "django_outbox_pattern.relaying.relay", logging.INFO, __file__, 1, "Sent %d", (3,), None
    )
    record.action = "relay_batch_published"
    record.count = 3
    out = json.loads(logformat.JsonFormatter().format(record))
    assert out["message"] == "Sent 3"
    assert out["level"] == "INFO"
    assert out["logger"] == "django_outbox_pattern.relaying.relay"
    assert (out["action"], out["count"]) == ("relay_batch_published", 3)
    assert "args" not in out and "msg" not in out


def test_json_formatter_renders_exceptions_as_text() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(logformat.JsonFormatter().format(record))
    assert "ValueError: boom" in out["exc_info"]
