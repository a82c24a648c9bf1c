"""Repairs in the admin need their own permissions; every repair there is audited (LogEntry + Repair).

A staff user who may only view the outbox and inbox is offered no repair, and posting the action form
directly changes nothing; a non-superuser granted a repair permission can run exactly that repair.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, Received, Repair, RepairedRow
from tests.cli.factories import make_published, make_received

pytestmark = pytest.mark.django_db
OUTBOX = "admin:django_outbox_pattern_published_changelist"
INBOX = "admin:django_outbox_pattern_received_changelist"
OUTBOX_REPAIRS = ("replay", "dead_letter", "purge")
INBOX_REPAIRS = ("reprocess", "purge")
REPAIR_PERMISSIONS = (
    "replay_published",
    "dead_letter_published",
    "purge_published",
    "reprocess_received",
    "purge_received",
)


def staff(username: str, *codenames: str) -> Client:
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_outbox_pattern", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer() -> Client:
    return staff("viewer", "view_published", "view_received")


def offered(client: Client, url: str) -> set[str]:
    response = client.get(reverse(url))
    assert response.status_code == 200
    return {
        name
        for name in ("replay", "dead_letter", "purge", "reprocess", "delete_selected")
        if f'value="{name}"'.encode() in response.content
    }


def post_action(client: Client, url: str, action: str, rows: list[Any]) -> Any:
    return client.post(reverse(url), {"action": action, "_selected_action": [str(r.pk) for r in rows]})


def snapshot() -> list[tuple[Any, ...]]:
    outbox = list(Published.objects.order_by("id").values_list("id", "status", "retry", "last_error"))
    inbox = list(Received.objects.order_by("id").values_list("id", "msg_id"))
    return [*outbox, *inbox]


def old_rows() -> tuple[list[Published], list[Received]]:
    rows = [
        *make_published(1, status=StatusChoice.FAILED, retry=9),
        *make_published(1),
        *make_published(1, status=StatusChoice.SUCCEEDED),
    ]
    return rows, make_received(2, age=timedelta(days=400))


def test_a_view_only_user_is_offered_no_repair(viewer: Client) -> None:
    old_rows()
    assert offered(viewer, OUTBOX) == set()
    assert offered(viewer, INBOX) == set()


def test_default_model_permissions_grant_no_repair() -> None:
    """add/change/delete/view on both models: still no repair, and no bulk delete around the guards."""
    codenames = [
        f"{verb}_{model}"
        for verb in ("add", "change", "delete", "view")
        for model in ("published", "received")
    ]
    client = staff("crud", *codenames)
    old_rows()
    assert offered(client, OUTBOX) == set()
    assert offered(client, INBOX) == set()


@pytest.mark.parametrize(
    ("url", "action"), [(OUTBOX, a) for a in OUTBOX_REPAIRS] + [(INBOX, a) for a in INBOX_REPAIRS]
)
def test_posting_the_action_form_without_permission_changes_nothing(
    viewer: Client, url: str, action: str
) -> None:
    outbox, inbox = old_rows()
    before = snapshot()
    response = post_action(viewer, url, action, outbox if url == OUTBOX else inbox)
    assert response.status_code in (200, 302)
    assert snapshot() == before
    assert not Repair.objects.exists()
    assert not LogEntry.objects.exists()


def test_each_permission_offers_exactly_its_repair() -> None:
    old_rows()  # an empty changelist shows no actions at all
    for codename, url, action in (
        ("replay_published", OUTBOX, "replay"),
        ("dead_letter_published", OUTBOX, "dead_letter"),
        ("purge_published", OUTBOX, "purge"),
        ("reprocess_received", INBOX, "reprocess"),
        ("purge_received", INBOX, "purge"),
    ):
        client = staff(codename, "view_published", "view_received", codename)
        assert offered(client, url) == {action}, codename
        assert offered(client, INBOX if url == OUTBOX else OUTBOX) == set(), codename


def test_a_permitted_non_superuser_runs_every_outbox_repair_and_each_is_audited() -> None:
    client = staff("ops", "view_published", *REPAIR_PERMISSIONS)
    failed = make_published(2, status=StatusChoice.FAILED, retry=9)
    pending = make_published(1)
    sent = make_published(1, status=StatusChoice.SUCCEEDED)

    post_action(client, OUTBOX, "replay", failed + sent)
    assert set(Published.objects.filter(id__in=[r.id for r in failed]).values_list("status", flat=True)) == {
        StatusChoice.SCHEDULE
    }
    post_action(client, OUTBOX, "dead_letter", pending)
    assert Published.objects.get(id=pending[0].id).status == StatusChoice.FAILED
    post_action(client, OUTBOX, "purge", sent)
    assert not Published.objects.filter(id=sent[0].id).exists()

    repairs = list(Repair.objects.order_by("id").values_list("action", "table", "via", "actor", "count"))
    user = User.objects.get(username="ops")
    actor = f"ops (id {user.pk})"
    assert repairs == [
        ("replayed", "outbox", "admin", actor, 2),
        ("dead_lettered", "outbox", "admin", actor, 1),
        ("purged", "outbox", "admin", actor, 1),
    ]
    assert Repair.objects.get(action="replayed").selection["id_count"] == 3  # two failed and one sent
    entries = {(e.object_id, e.action_flag) for e in LogEntry.objects.filter(user=user)}
    assert entries == {
        *((str(r.id), CHANGE) for r in failed),
        (str(pending[0].id), CHANGE),
        (str(sent[0].id), DELETION),
    }
    assert "ops" in Published.objects.get(id=pending[0].id).last_error


def test_inbox_reprocess_forgets_the_message_id_and_records_it() -> None:
    client = staff("ops", "view_received", "reprocess_received")
    keep, forget = make_received(2)
    response = post_action(client, INBOX, "reprocess", [forget])
    assert response.status_code == 302
    assert list(Received.objects.values_list("msg_id", flat=True)) == [keep.msg_id]
    assert list(RepairedRow.objects.values_list("row_id", "msg_id", "repair__action")) == [
        (str(forget.id), forget.msg_id, "reprocessed")
    ]
    assert LogEntry.objects.get().action_flag == DELETION


def test_inbox_purge_keeps_rows_inside_the_retention_period(settings: Any) -> None:
    settings.DJANGO_OUTBOX_PATTERN = {**settings.DJANGO_OUTBOX_PATTERN, "DAYS_TO_KEEP_DATA": 30}
    client = staff("ops", "view_received", "purge_received")
    old = make_received(2, age=timedelta(days=31))
    young = make_received(1, age=timedelta(days=29))
    response = client.post(
        reverse(INBOX),
        {"action": "purge", "_selected_action": [str(r.pk) for r in old + young]},
        follow=True,
    )
    message = " ".join(str(m) for m in response.context["messages"])
    assert message == "2 message(s) deleted. 1 are younger than the retention period (30 days) and were kept."
    assert list(Received.objects.values_list("id", flat=True)) == [young[0].id]
    assert Repair.objects.get().count == 2
    assert not RepairedRow.objects.exists()  # purges keep the count only: the rows are gone


def test_the_audit_trail_is_read_only_in_the_admin(admin_client: Client) -> None:
    make_published(1, status=StatusChoice.FAILED)
    post_action(admin_client, OUTBOX, "replay", list(Published.objects.all()))
    repair = Repair.objects.get()
    listing = admin_client.get(reverse("admin:django_outbox_pattern_repair_changelist"))
    assert listing.status_code == 200 and b"replayed" in listing.content
    assert b'value="delete_selected"' not in listing.content
    delete = reverse("admin:django_outbox_pattern_repair_delete", args=[repair.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Repair.objects.filter(pk=repair.pk).exists()
