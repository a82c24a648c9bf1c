"""recording.BackgroundRecorder: landed batches recorded on one thread of its own, in order."""

from __future__ import annotations

import threading
from typing import cast

import pytest
from django.db import transaction

from django_outbox_pattern import exceptions
from django_outbox_pattern.relaying import batches, recording


def _result(n: int) -> batches.BatchResult:
    return batches.BatchResult(published=n, failed=0, retried=0, dead_lettered=0, elapsed=0.0)


def _collected(n: int) -> batches.Collected:
    return cast(batches.Collected, n)  # the recorder only hands it to the record function


def _record_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("outbox-relay-record")]


class _Record:
    """A record function that notes its thread and may be held back or fail."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.failing: set[int] = set()

    def __call__(self, collected: batches.Collected) -> batches.BatchResult:
        n = cast(int, collected)
        self.threads.append(threading.current_thread().name)
        self.started.set()
        assert self.release.wait(30)
        if n in self.failing:
            raise exceptions.StorageError(f"record {n} failed")
        return _result(n)


def test_records_run_in_order_on_their_own_thread_and_close_ends_it() -> None:
    record = _Record()
    recorder = recording.BackgroundRecorder(record, alias="default")
    for n in range(1, 6):
        recorder.submit(_collected(n))
    done = recorder.finished(keep=0)
    assert [result.published for _, result in done] == [1, 2, 3, 4, 5]
    assert [cast(int, collected) for collected, _ in done] == [1, 2, 3, 4, 5]
    assert set(record.threads) == {record.threads[0]}
    assert record.threads[0] != threading.current_thread().name
    assert recorder.pending == 0
    recorder.close()
    assert _record_threads() == []


def test_finished_without_keep_returns_only_what_is_done_and_keep_waits() -> None:
    record = _Record()
    record.release.clear()
    recorder = recording.BackgroundRecorder(record, alias="default")
    try:
        recorder.submit(_collected(1))
        recorder.submit(_collected(2))
        assert record.started.wait(30)
        assert recorder.finished() == []  # the first is held back: nothing is done yet
        assert recorder.pending == 2
        record.release.set()
        assert [r.published for _, r in recorder.finished(keep=1)] in ([1], [1, 2])
        assert [r.published for _, r in recorder.finished(keep=0)] in ([], [2])
        assert recorder.pending == 0
    finally:
        record.release.set()
        recorder.close()


def test_a_failed_record_raises_in_the_caller_and_the_later_ones_stay_collectable() -> None:
    record = _Record()
    record.failing = {2}
    recorder = recording.BackgroundRecorder(record, alias="default")
    for n in (1, 2, 3):
        recorder.submit(_collected(n))
    with pytest.raises(exceptions.StorageError, match="record 2 failed"):
        recorder.finished(keep=0)
    assert [r.published for _, r in recorder.finished(keep=0)] == [3]
    recorder.close()


def test_close_drops_a_failing_record_without_raising() -> None:
    record = _Record()
    record.failing = {1}
    recorder = recording.BackgroundRecorder(record, alias="default")
    recorder.submit(_collected(1))
    recorder.close()
    assert recorder.pending == 0
    assert _record_threads() == []


@pytest.mark.django_db(transaction=True)
def test_not_usable_inside_a_transaction_of_the_caller() -> None:
    recorder = recording.BackgroundRecorder(_Record(), alias="default")
    assert recorder.usable()
    with transaction.atomic():
        assert not recorder.usable()  # another connection would not see the rows claimed here
