from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shop.models import Order


class Command(BaseCommand):
    help = "Save N orders; each save writes an outbox row in the same transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int, nargs="?", default=5)

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        start = Order.objects.count()
        customers = ["Ada", "Grace", "Linus", "Barbara", "Ken"]
        for i in range(start + 1, start + count + 1):
            Order.objects.create(number=f"A-{i:04d}", customer=customers[i % len(customers)], total=f"{9.5 * i:.2f}")
        self.stdout.write(f"saved {count} orders (outbox rows written in the same transactions)")
