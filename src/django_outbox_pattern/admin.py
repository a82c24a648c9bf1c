"""Read-mostly admin for the outbox, the inbox and the repairs' audit trail.

Repair actions call the same ``operations`` functions as the CLI. Each needs its own permission
(``Meta.permissions`` of ``Published``/``Received``), checked by Django's action permission hooks: a user
without it neither sees the action nor can run it by posting the form. Every row an action changes gets an
admin ``LogEntry`` (its history page), written in the batch's transaction, next to the audit ``Repair``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import HttpRequest

from django_outbox_pattern import conf, sequencing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, Received, Repair
from django_outbox_pattern.ops import audit, operations


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through the purge actions, which keep what must be kept

    def _may(self, request: HttpRequest, codename: str) -> bool:
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    def _logger(
        self, request: HttpRequest, reprs: dict[Any, str], flag: int, message: str
    ) -> Callable[[list[Any]], None]:
        """An ``on_rows`` hook writing one LogEntry per changed row (in the batch's transaction)."""
        content_type = ContentType.objects.get_for_model(self.model, for_concrete_model=False)
        user_id: Any = request.user.pk  # a logged-in staff user: the admin checked it

        def log(ids: list[Any]) -> None:
            LogEntry.objects.bulk_create(
                [
                    LogEntry(
                        user_id=user_id,
                        content_type_id=content_type.pk,
                        object_id=str(pk),
                        object_repr=reprs.get(pk, str(pk))[:200],
                        action_flag=flag,
                        change_message=message,
                    )
                    for pk in ids
                ]
            )

        return log


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.admin_actor(request.user)


def _summary(done: int, selected: int, verb: str, skipped: str) -> str:
    text = f"{done} message(s) {verb}."
    return text if done == selected else f"{text} {selected - done} {skipped}."


class OrderingFilter(admin.SimpleListFilter):
    """Rows of ordering keys that a failed row holds (docs/ordering.md)."""

    title = "ordering"
    parameter_name = "key_state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("holding", "Failed, holding its key"),
            ("held", "Waiting behind a failed row"),
            ("keyed", "Has an ordering key"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "holding":
            holding = queryset.filter(status=StatusChoice.FAILED, ordering_key__isnull=False)
            return holding.exclude(ordering_seq=None)
        if self.value() == "held":
            held = queryset.filter(status=StatusChoice.SCHEDULE)
            return held.filter(last_error__startswith=sequencing.HELD_PREFIX)
        if self.value() == "keyed":
            return queryset.filter(ordering_key__isnull=False)
        return queryset


@admin.register(Published)
class PublishedAdmin(_ReadOnly):
    list_display = (
        "id",
        "destination",
        "ordering_key",
        "status",
        "retry",
        "added",
        "available_at",
        "published_at",
        "last_error",
    )
    list_filter = ("status", OrderingFilter, "destination", "added", "retry")
    search_fields = ("id", "destination", "=ordering_key")
    readonly_fields = [f.name for f in Published._meta.fields]
    date_hierarchy = "added"
    actions = ["replay", "dead_letter", "purge"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "replay_published")

    def has_dead_letter_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "dead_letter_published")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "purge_published")

    @admin.action(
        permissions=["replay"],
        description="Replay: send again (failed rows back to Schedule, attempts reset)",
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        reprs = _reprs(queryset)
        log = self._logger(request, reprs, CHANGE, "Replayed: failed -> pending, attempts reset.")
        count = operations.replay(list(reprs), actor=_actor(request), on_rows=log)
        self.message_user(
            request, _summary(count, len(reprs), "scheduled again", "were not failed"), messages.SUCCESS
        )

    @admin.action(
        permissions=["dead_letter"],
        description="Dead-letter: park pending rows as Failed so the relay skips them (a failed row that "
        "holds its ordering key lets the key go on)",
    )
    def dead_letter(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        reprs = _reprs(queryset)
        reason = f"parked from the admin by {request.user.get_username()}"
        log = self._logger(request, reprs, CHANGE, f"Dead-lettered: pending -> failed ({reason}).")
        count = operations.dead_letter(list(reprs), reason=reason, actor=_actor(request), on_rows=log)
        skipped = "were not pending or are in flight"
        self.message_user(request, _summary(count, len(reprs), "parked as failed", skipped), messages.SUCCESS)

    @admin.action(
        permissions=["purge"], description="Purge: delete (sent or failed rows only; unsent rows are kept)"
    )
    def purge(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        reprs = _reprs(queryset)
        log = self._logger(request, reprs, DELETION, "Purged from the admin.")
        count = operations.purge_outbox_ids(list(reprs), actor=_actor(request), on_rows=log)
        self.message_user(
            request, _summary(count, len(reprs), "deleted", "are unsent and were kept"), messages.SUCCESS
        )


def _reprs(queryset: QuerySet[Any]) -> dict[Any, str]:
    """Selected ids -> a short text for LogEntry.object_repr (never the body: it may hold personal data)."""
    if queryset.model is Received:
        return {pk: f"message {msg_id} ({pk})" for pk, msg_id in queryset.values_list("pk", "msg_id")}
    return {pk: f"{destination} ({pk})" for pk, destination in queryset.values_list("pk", "destination")}


@admin.register(Received)
class ReceivedAdmin(_ReadOnly):
    list_display = ("id", "msg_id", "destination", "status", "added")
    list_filter = ("status", "added")
    search_fields = ("msg_id",)
    readonly_fields = [f.name for f in Received._meta.fields]
    date_hierarchy = "added"
    actions = ["reprocess", "purge"]

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "reprocess_received")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "purge_received")

    @admin.action(
        permissions=["reprocess"],
        description="Reprocess: forget these message ids, so their next delivery is processed again",
    )
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Received]) -> None:
        reprs = _reprs(queryset)
        log = self._logger(
            request, reprs, DELETION, "Forgotten for reprocessing: the next delivery runs again."
        )
        count = operations.reprocess(list(reprs), actor=_actor(request), on_rows=log)
        self.message_user(
            request,
            f"{count} message id(s) forgotten: each is processed again when it is delivered again "
            "(replay the producer's outbox row, or requeue it from the dead-letter queue).",
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["purge"], description="Purge: delete rows older than the retention (DAYS_TO_KEEP_DATA)"
    )
    def purge(self, request: HttpRequest, queryset: QuerySet[Received]) -> None:
        reprs = _reprs(queryset)
        log = self._logger(request, reprs, DELETION, "Purged from the admin (past the retention period).")
        count = operations.purge_inbox_ids(list(reprs), actor=_actor(request), on_rows=log)
        days = conf.get_settings().DAYS_TO_KEEP_DATA
        skipped = f"are younger than the retention period ({days} days) and were kept"
        self.message_user(request, _summary(count, len(reprs), "deleted", skipped), messages.SUCCESS)


@admin.register(Repair)
class RepairAdmin(_ReadOnly):
    """The audit trail, read-only: nobody edits or deletes it from the admin."""

    list_display = ("at", "table", "action", "via", "actor", "count")
    list_filter = ("table", "action", "via", "at")
    search_fields = ("actor",)
    readonly_fields = [f.name for f in Repair._meta.fields]
    date_hierarchy = "at"
    actions = None  # the audit trail offers no action, not even bulk delete
