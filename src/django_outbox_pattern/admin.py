"""Read-mostly admin for the outbox and the inbox; repair actions call the same engine code as the CLI."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from django_outbox_pattern import operations
from django_outbox_pattern.models import Published, Received


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Published)
class PublishedAdmin(_ReadOnly):
    list_display = ("id", "destination", "status", "retry", "added", "available_at", "published_at")
    list_filter = ("status", "destination", "added", "retry")
    search_fields = ("id", "destination")
    readonly_fields = [f.name for f in Published._meta.fields]
    date_hierarchy = "added"
    actions = ["replay", "dead_letter", "purge"]

    @admin.action(description="Replay: send again (back to Schedule, attempts reset)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        count = operations.replay(queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} message(s) scheduled again.", messages.SUCCESS)

    @admin.action(description="Dead-letter: park as Failed so the relay skips them")
    def dead_letter(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        count = operations.dead_letter(queryset.values_list("id", flat=True), reason="parked from the admin")
        self.message_user(request, f"{count} message(s) parked as failed.", messages.SUCCESS)

    @admin.action(description="Purge: delete (sent or failed rows only)")
    def purge(self, request: HttpRequest, queryset: QuerySet[Published]) -> None:
        count = operations.purge_outbox_ids(queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} message(s) deleted; unsent rows were kept.", messages.SUCCESS)


@admin.register(Received)
class ReceivedAdmin(_ReadOnly):
    list_display = ("id", "msg_id", "destination", "status", "added")
    list_filter = ("status", "added")
    search_fields = ("msg_id",)
    readonly_fields = [f.name for f in Received._meta.fields]
    date_hierarchy = "added"
