"""The admin's repair actions go through ``operations`` and keep its guarantees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import operations
from tests.cli.factories import make_published

pytestmark = pytest.mark.django_db
URL = "admin:django_outbox_pattern_published_changelist"


def act(client, action: str, rows: list[Published]) -> str:
    response = client.post(
        reverse(URL), {"action": action, "_selected_action": [str(r.id) for r in rows]}, follow=True
    )
    assert response.status_code == 200
    return " ".join(str(m) for m in response.context["messages"])


def status(row: Published) -> int:
    row.refresh_from_db()
    return row.status


def test_replay_action(admin_client, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = operations.replay
    monkeypatch.setattr(
        operations, "replay", lambda ids, **kw: calls.append(len(list(ids))) or real(ids, **kw)
    )
    failed = make_published(2, status=StatusChoice.FAILED, retry=50)
    pending = make_published(1)
    message = act(admin_client, "replay", failed + pending)
    assert calls == [3]
    assert message == "2 message(s) scheduled again. 1 were not failed."
    assert [status(r) for r in failed] == [StatusChoice.SCHEDULE] * 2


def test_dead_letter_action_skips_rows_in_flight(admin_client, admin_user) -> None:
    free = make_published(1)
    leased = make_published(1, locked_by="relay-1", available_at=timezone.now() + timedelta(minutes=1))
    message = act(admin_client, "dead_letter", free + leased)
    assert message == "1 message(s) parked as failed. 1 were not pending or are in flight."
    free[0].refresh_from_db()
    assert (free[0].status, free[0].last_error) == (
        StatusChoice.FAILED,
        f"parked from the admin by {admin_user.username}",
    )
    assert status(leased[0]) == StatusChoice.SCHEDULE


def test_purge_action_keeps_unsent_rows(admin_client) -> None:
    sent = make_published(2, status=StatusChoice.SUCCEEDED)
    unsent = make_published(1)
    message = act(admin_client, "purge", sent + unsent)
    assert message == "2 message(s) deleted. 1 are unsent and were kept."
    assert list(Published.objects.values_list("id", flat=True)) == [unsent[0].id]


def test_no_bulk_delete_that_would_bypass_the_guard(admin_client) -> None:
    row = make_published(1)[0]
    response = admin_client.get(reverse(URL))
    assert b'value="delete_selected"' not in response.content
    assert b'value="purge"' in response.content
    assert (
        admin_client.post(reverse("admin:django_outbox_pattern_published_delete", args=[row.id])).status_code
        == 403
    )


def test_the_ordering_filter_shows_failed_rows_holding_their_key_and_the_rows_they_hold(admin_client) -> None:
    from django_outbox_pattern.relaying import store

    blocker = Published.objects.create(destination="/queue/o", body={}, ordering_key="k-1")
    waiting = Published.objects.create(destination="/queue/o", body={}, ordering_key="k-1")
    other = Published.objects.create(destination="/queue/o", body={}, ordering_key="k-2")
    outbox, now = store.OutboxStore(), timezone.now()
    outbox.claim("t#1", limit=10, now=now, lease_until=now + timedelta(minutes=2))
    outbox.dead_letter([blocker.pk], token="t#1", reason="poison")
    holding = admin_client.get(reverse(URL), {"key_state": "holding"}).content.decode()
    held = admin_client.get(reverse(URL), {"key_state": "held"}).content.decode()
    assert str(blocker.pk) in holding and str(waiting.pk) not in holding
    assert str(waiting.pk) in held and str(other.pk) not in held
    assert f"held behind row {blocker.pk}" in held  # the waiting row's last error names the failed row
