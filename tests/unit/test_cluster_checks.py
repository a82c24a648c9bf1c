"""The queue-type probe of ``outboxctl check --queue`` over scripted broker answers."""

from __future__ import annotations

from typing import Any

import pytest

from django_outbox_pattern import conf
from django_outbox_pattern.ops import cluster

DIFFERS = "precondition_failed: PRECONDITION_FAILED - inequivalent arg '{arg}' for queue 'q' in vhost '/': "


class Scripted:
    """A transport whose SUBSCRIBE is answered by the next scripted ERROR; it records the headers sent."""

    def __init__(self, answers: list[str], sent: list[dict[str, str]]) -> None:
        self._answers, self._sent = answers, sent
        self.last_error: str | None = None

    def connect(self) -> None:
        self.last_error = None

    def subscribe(self, destination: str, sub_id: str, headers: Any, *, ack: str) -> None:
        self._sent.append(dict(headers))
        self.last_error = self._answers.pop(0)

    def wait_for_receipts(self, receipts: Any, timeout: float) -> set[str]:
        return set()

    def disconnect(self) -> None:
        pass


def probe(
    answers: list[str], settings: conf.OutboxSettings | None = None
) -> tuple[Any, list[dict[str, str]]]:
    sent: list[dict[str, str]] = []
    result = cluster.queue_type(
        settings or conf.OutboxSettings(), "q", lambda s, **kw: Scripted(answers, sent)
    )
    return result, sent


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            DIFFERS.format(arg="x-queue-type") + "received 'outboxctl-probe' but current is 'quorum'",
            "quorum queue",
        ),
        (
            DIFFERS.format(arg="x-queue-type")
            + "received the value 'outboxctl-probe' of type 'longstr' but current is none",
            "classic queue",
        ),
        (
            "precondition_failed: invalid arg 'x-queue-type' for queue 'q' in vhost '/': "
            "\"unsupported queue type 'outboxctl-probe'\"",
            "does not exist (a consumer declares it when it starts)",
        ),
    ],
)
def test_the_broker_answer_names_the_type(answer: str, detail: str) -> None:
    result, sent = probe([answer])
    assert (result.status, result.detail.split(" (DEFAULT")[0]) == ("pass", detail)
    assert sent[0]["x-queue-type"] == cluster.PROBE_TYPE and sent[0]["x-dead-letter-routing-key"] == "DLQ.q"


def test_another_argument_that_differs_is_adopted_and_the_probe_asks_again() -> None:
    answers = [
        DIFFERS.format(arg="x-dead-letter-exchange")
        + "received the value '' of type 'longstr' but current is none",
        DIFFERS.format(arg="x-max-length")
        + "received none but current is the value '10' of type 'signedint'",
        DIFFERS.format(arg="x-queue-type") + "received 'outboxctl-probe' but current is 'quorum'",
    ]
    result, sent = probe(answers)
    assert result.detail == "quorum queue (DEFAULT_STOMP_QUEUE_HEADERS asks for classic: precondition_failed)"
    assert "x-dead-letter-exchange" not in sent[1] and sent[2]["x-max-length"] == "10"


def test_an_unexpected_refusal_fails() -> None:
    result, _ = probe(["access_refused: ACCESS_REFUSED - access to queue 'q' refused"])
    assert result.status == "fail" and "access_refused" in result.detail


def test_a_bad_queue_name_fails_without_asking() -> None:
    bad = cluster.queue_type(conf.OutboxSettings(), "amq.nope", lambda s, **kw: pytest.fail("asked"))
    assert bad.status == "fail" and "reserved" in bad.detail


def test_a_single_host_has_no_node_checks() -> None:
    assert cluster.check_nodes(conf.OutboxSettings()) == []
