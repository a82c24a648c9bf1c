"""Read-mostly admin for the outbox and the inbox; repair actions call the same engine code as the CLI."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from django_outbox_pattern.models import Published, Received
from django_outbox_pattern.ops import operations


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Published)
class PublishedAdmin(_ReadOnly):
    list_display = (
        "id",
        "destination",
        "status",
        "retry",
        "added",
        "available_at",
        "published_at",
        "last_error",
    )
    list_filter = ("status", "destination", "added", "retry")
    search_fields = ("id", "destination")
    readonly_fields = [f.name for f in Published._meta.fields]
    date_hierarchy = "added"
    actions = ["replay", "dead_letter", "purge"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through the purge action, which keeps unsent rows

    @admin.action(description="Replay: send again (failed rows back to Schedule, attempts reset)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        count = operations.replay(ids)
        self.message_user(
            request, _summary(count, len(ids), "scheduled again", "were not failed"), messages.SUCCESS
        )

    @admin.action(description="Dead-letter: park pending rows as Failed so the relay skips them")
    def dead_letter(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        user = getattr(request, "user", None)
        reason = f"parked from the admin by {getattr(user, 'get_username', lambda: 'an admin')()}"
        count = operations.dead_letter(ids, reason=reason)
        skipped = "were not pending or are in flight"
        self.message_user(request, _summary(count, len(ids), "parked as failed", skipped), messages.SUCCESS)

    @admin.action(description="Purge: delete (sent or failed rows only; unsent rows are kept)")
    def purge(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        count = operations.purge_outbox_ids(ids)
        self.message_user(
            request, _summary(count, len(ids), "deleted", "are unsent and were kept"), messages.SUCCESS
        )


def _summary(done: int, selected: int, verb: str, skipped: str) -> str:
    text = f"{done} message(s) {verb}."
    return text if done == selected else f"{text} {selected - done} {skipped}."


@admin.register(Received)
class ReceivedAdmin(_ReadOnly):
    list_display = ("id", "msg_id", "destination", "status", "added")
    list_filter = ("status", "added")
    search_fields = ("msg_id",)
    readonly_fields = [f.name for f in Received._meta.fields]
    date_hierarchy = "added"
