"""batching.py: what a batch remembers, and the messages that may no longer share one."""

from __future__ import annotations

from django_outbox_pattern.consuming import batching


def test_a_batch_keeps_the_first_abort_and_its_culprit() -> None:
    batch = batching.Batch()
    ran: list[str] = []
    batch.after_commit(lambda: ran.append("ack"))
    batch.abort("database error on message m-1", "m-1")
    batch.abort("a later error", "m-2")
    assert (batch.aborted, batch.culprit) == ("database error on message m-1", "m-1")
    assert ran == []  # nothing runs until the worker commits the batch


def test_suspects_are_remembered_up_to_a_limit_oldest_forgotten_first() -> None:
    suspects = batching.Suspects(limit=2)
    for msg_id in ("a", "b", "c"):
        suspects.add(msg_id)
    assert "a" not in suspects
    assert "b" in suspects and "c" in suspects
