"""Runs django-outbox-pattern 3.2.1 (inside the side venv) for tests/compat: one command, JSON on stdout.

    python driver.py signatures
    python driver.py write '{"destination": "/topic/x", "bodies": [{"n": 1}]}'    -> {"ids": [...]}
    python driver.py relay                                                          -> {"published": n}
    python driver.py declare '{"destination": "/topic/x", "queue": "q"}'           -> {"connected": bool}
    python driver.py consume '{"destination": ..., "queue": ..., "expect": 2, "timeout": 10}'
        prints {"started": true} once subscribed, then {"handled": n, "called": [dop-msg-ids]}

This file must import only 3.2.1's package and Django (its PYTHONPATH is this directory alone).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upstream_settings")

import django

django.setup()

from django_outbox_pattern.listeners import ConsumerListener  # noqa: E402

HANDLED = threading.Semaphore(0)
RECEIPTS = set()
ERRORS = []
CHANGED = threading.Condition()


class CountingListener(ConsumerListener):
    """3.2.1's listener, counting the messages it handed to the consumer (duplicates included) and
    recording RECEIPT and ERROR frames."""

    def on_message(self, frame):
        super().on_message(frame)
        HANDLED.release()

    def on_receipt(self, frame):
        with CHANGED:
            RECEIPTS.add(frame.headers.get("receipt-id"))
            CHANGED.notify_all()

    def on_error(self, frame):
        super().on_error(frame)
        with CHANGED:
            ERRORS.append(frame.headers.get("message", "ERROR"))
            CHANGED.notify_all()


def subscribed(consumer):
    """True once the broker processed 3.2.1's SUBSCRIBE without an ERROR (3.2.1 asks no receipt: a
    receipted SEND after it, which the broker handles in order, proves it)."""
    receipt = f"sync-{time.monotonic_ns()}"
    try:
        consumer.connection.send("/topic/dop-compat-sync", "", receipt=receipt)
    except Exception:
        return False
    with CHANGED:
        CHANGED.wait_for(lambda: receipt in RECEIPTS or ERRORS, timeout=10)
        return receipt in RECEIPTS and not ERRORS


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(obj):
    params = []
    for p in inspect.signature(obj).parameters.values():
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        params.append({"name": p.name, "kind": p.kind.name, "default": default})
    return params


def signatures(_):
    from django_outbox_pattern import bases, consumers, exceptions, factories, headers, payloads, producers
    from django_outbox_pattern import settings as dop_settings

    names = {
        "bases.Base": bases.Base,
        "consumers.Consumer": consumers.Consumer,
        "producers.Producer": producers.Producer,
        "payloads.Payload": payloads.Payload,
        "exceptions.ExceededSendAttemptsException": exceptions.ExceededSendAttemptsException,
        "factories.factory_connection": factories.factory_connection,
        "factories.factory_consumer": factories.factory_consumer,
        "factories.factory_producer": factories.factory_producer,
        "headers.get_message_headers": headers.get_message_headers,
        "headers.generate_headers": headers.generate_headers,
    }
    result = {"callables": {k: describe(v) for k, v in names.items()}, "methods": {}}
    for cls_name, cls in (
        ("bases.Base", bases.Base),
        ("consumers.Consumer", consumers.Consumer),
        ("producers.Producer", producers.Producer),
        ("payloads.Payload", payloads.Payload),
    ):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                result["methods"][f"{cls_name}.{name}"] = describe(member)
    result["settings"] = sorted(n for n in dir(dop_settings) if n.isupper())
    out(result)


def write(args):
    from django_outbox_pattern.models import Published

    rows = [Published.objects.create(destination=args["destination"], body=b) for b in args["bodies"]]
    out({"ids": [str(r.id) for r in rows]})


def relay(_):
    from django_outbox_pattern.choices import StatusChoice
    from django_outbox_pattern.factories import factory_producer
    from django_outbox_pattern.models import Published

    before = Published.objects.filter(status=StatusChoice.SUCCEEDED).count()
    factory_producer().publish_message_from_database()
    out({"published": Published.objects.filter(status=StatusChoice.SUCCEEDED).count() - before})


def declare(args):
    from django_outbox_pattern.factories import factory_consumer

    consumer = factory_consumer()
    consumer.start(lambda payload: payload.save(), args["destination"], args.get("queue"))
    out({"connected": subscribed(consumer), "errors": ERRORS})
    consumer.stop()


def consume(args):
    from django_outbox_pattern.factories import factory_consumer

    called = []

    def callback(payload):
        called.append(payload.headers.get("dop-msg-id"))
        payload.save()

    consumer = factory_consumer()
    consumer.start(callback, args["destination"], args.get("queue"))
    out({"started": subscribed(consumer), "errors": ERRORS})
    deadline = time.monotonic() + args.get("timeout", 10)
    handled = 0
    while handled < args["expect"] and HANDLED.acquire(timeout=max(0.0, deadline - time.monotonic())):
        handled += 1
    out({"handled": handled, "called": called})


def main() -> None:
    command = sys.argv[1]
    arguments = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    commands = {
        "signatures": signatures,
        "write": write,
        "relay": relay,
        "declare": declare,
        "consume": consume,
    }
    commands[command](arguments)
    sys.stdout.flush()
    os._exit(0)  # 3.2.1's listener threads may reconnect for ever after a refused subscription


if __name__ == "__main__":
    # Run as the module ``driver``, whose CountingListener the settings name: one copy of its state.
    import driver

    driver.main()
