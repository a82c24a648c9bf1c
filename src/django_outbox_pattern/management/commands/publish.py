"""``python manage.py publish``: run the relay (outbox rows -> broker) until SIGTERM/SIGINT."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_outbox_pattern import exceptions
from django_outbox_pattern.core import shutdown
from django_outbox_pattern.ops import observability
from django_outbox_pattern.relaying import assembly, batches


class Command(BaseCommand):
    help = "Send the outbox (Published rows) to the broker; each row is marked published on its RECEIPT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--until-empty",
            action="store_true",
            help="Exit once no row is due instead of waiting for new ones.",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Send one batch, wait for its receipts, then exit (also when nothing is due).",
        )
        parser.add_argument("--chunk-size", type=int, help="Rows per batch (DEFAULT_PUBLISHED_CHUNK_SIZE).")
        parser.add_argument(
            "--poll-interval",
            type=float,
            help="Seconds between polls when idle (DEFAULT_PRODUCER_WAITING_TIME).",
        )
        parser.add_argument(
            "--notify",
            action="store_true",
            default=None,
            help="Wake up on PostgreSQL NOTIFY as well as by polling (DEFAULT_RELAY_NOTIFY).",
        )
        observability.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        totals = {"published": 0, "failed": 0, "dead_lettered": 0}

        def count(batch: batches.BatchResult) -> None:
            for key in totals:
                totals[key] += getattr(batch, key)

        try:
            settings = assembly.relay_settings(
                chunk_size=options["chunk_size"],
                poll_interval=options["poll_interval"],
                notify=options["notify"],
            )
            engine = assembly.build_relay(
                settings, observer=observability.observer_from_options(options, component="relay")
            )
            with shutdown.on_stop(engine.stop):
                engine.run(until_empty=options["until_empty"], once=options["once"], on_batch=count)
        except exceptions.OutboxError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(" ".join(f"{key}={value}" for key, value in totals.items()))
