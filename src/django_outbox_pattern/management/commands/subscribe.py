"""``python manage.py subscribe dotted.path.to.callback destination [queue_name]``: run a consumer."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_outbox_pattern import exceptions
from django_outbox_pattern.consuming import assembly
from django_outbox_pattern.core import shutdown
from django_outbox_pattern.ops import observability


class Command(BaseCommand):
    help = (
        "Consume messages of a destination with a callback receiving a Payload. SIGTERM/SIGINT finish the "
        "current message and exit 0; a second signal exits at once (130)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "callback", help="dotted path to a function taking a Payload, e.g. myapp.callbacks.handle"
        )
        parser.add_argument(
            "destination", help="/topic/<key>, /queue/<name>, /exchange/<name>[/<key>] or /amq/queue/<name>"
        )
        parser.add_argument(
            "queue_name",
            nargs="?",
            default=None,
            help="queue to consume (default: last segment of the destination)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            help="Messages whose callbacks share one transaction, acked after its commit "
            "(DEFAULT_CONSUMER_BATCH_SIZE, 1 to 1000).",
        )
        observability.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            observer = observability.observer_from_options(options, component="consumer")
            settings = assembly.consumer_settings(batch_size=options["batch_size"])
            consumer = assembly.build_consumer(
                options["callback"],
                options["destination"],
                options["queue_name"],
                settings=settings,
                observer=observer,
            )
        except exceptions.OutboxError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Consuming {consumer.destination} from queue {consumer.queue}; Ctrl-C to stop.")
        try:
            with shutdown.on_stop(consumer.stop):
                consumer.run()
        except exceptions.OutboxError as exc:
            raise CommandError(str(exc)) from exc
