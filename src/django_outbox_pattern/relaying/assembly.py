"""``build_relay()``: the one place a ``Relay`` and its collaborators are assembled.

The relay receives everything it works with (outbox store, producer over a transport, batches,
housekeeper, wake-up notifier, observer); the ``publish`` commands, outboxctl, the test kit and the tests
call this factory and pass in what they want different (a ``testing.MemoryOutbox``, a ``MemoryTransport``,
a clock). Settings come in resolved: flag overrides are applied once, by the caller (``relay_settings()``
for manage.py, outboxctl's bootstrap for the CLI).
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache
from django.db import router
from django.utils import timezone

from django_outbox_pattern import conf, wiring
from django_outbox_pattern.broker import wire
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.relaying import (
    batches,
    housekeeping,
    liveness,
    outbox,
    producer,
    recording,
    relay,
    routing,
    store,
)


def build_relay(
    settings: conf.OutboxSettings | None = None,
    *,
    outbox_store: outbox.Outbox | None = None,
    transport: wire.Transport | None = None,
    observer: observing.Observer | None = None,
    notifier: relay.Notifier | None = None,
    clock: Callable[[], datetime.datetime] = timezone.now,
    cache: BaseCache | None = None,
    rng: random.Random | None = None,
    relay_id: str | None = None,
    max_body_bytes: int = producer.MAX_BODY_BYTES,
    routing_gate: routing.RoutingGate | None = None,
) -> relay.Relay:
    """A relay on ``settings`` (default: Django's). Without ``outbox_store`` it relays the database table
    of DEFAULT_PUBLISHED_CLASS (with the NOTIFY listener when DEFAULT_RELAY_NOTIFY is on); without
    ``transport``, over STOMP."""
    s = settings or conf.get_settings()
    relay_id = relay_id or relay.default_relay_id()
    heartbeat: liveness.Heartbeat | None = None
    if outbox_store is None:
        model = wiring.published_model(s)
        database = store.OutboxStore(model, using=router.db_for_write(model))
        if notifier is None and s.DEFAULT_RELAY_NOTIFY is not False:
            from django_outbox_pattern.relaying import notify

            if s.DEFAULT_RELAY_NOTIFY or notify.available(database.using):  # None: where it works
                notifier = notify.build_listener(database.using)
        heartbeat = liveness.Heartbeat(database, relay_id)  # crash recovery in seconds (liveness.py)
        outbox_store = database
    stomp: Any = None
    if transport is None:
        from django_outbox_pattern.broker import transport as stomp_transport

        stomp = transport = stomp_transport.StompTransport(s)
    shielded = observing.shielded(observer)
    sender = producer.Producer(
        transport, receipt_timeout=s.DEFAULT_RECEIPT_TIMEOUT, max_body_bytes=max_body_bytes
    )
    relay_batches = batches.Batches(
        store=outbox_store, producer=sender, settings=s, observer=shielded, clock=clock, rng=rng
    )
    recorder = None
    if isinstance(outbox_store, store.OutboxStore) and outbox_store.strategy == "returning":
        # PostgreSQL: a landed batch's UPDATEs run on the recording thread while the next batch goes out
        recorder = recording.BackgroundRecorder(relay_batches.record, alias=outbox_store.using)
    built = relay.Relay(
        store=outbox_store,
        producer=sender,
        batches=relay_batches,
        housekeeper=housekeeping.Housekeeper(outbox_store, s, clock=clock, cache=cache),
        settings=s,
        observer=shielded,
        relay_id=relay_id,
        clock=clock,
        rng=rng,
        notifier=notifier,
        heartbeat=heartbeat,
        routing_gate=routing_gate or routing.build_gate(s, shielded),
        recorder=recorder,
    )
    if stomp is not None:  # DEFAULT_PRODUCER_LISTENER_CLASS, registered on every connection (as 3.x)
        listener_class = conf.import_object(s.DEFAULT_PRODUCER_LISTENER_CLASS)
        stomp.set_listener(f"producer-listener-{built.relay_id}", listener_class(built))
    return built


def relay_settings(
    settings: conf.OutboxSettings | None = None,
    *,
    chunk_size: int | None = None,
    poll_interval: float | None = None,
    notify: bool | None = None,
) -> conf.OutboxSettings:
    """``settings`` (default: Django's) with the ``publish`` command's overrides, validated
    (ConfigurationError)."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("DEFAULT_PUBLISHED_CHUNK_SIZE", chunk_size),
            ("DEFAULT_PRODUCER_WAITING_TIME", poll_interval),
            ("DEFAULT_RELAY_NOTIFY", notify),
        )
        if value is not None
    }
    s = settings or conf.get_settings()
    if not overrides:
        return s
    normalised = conf.OutboxSettings.from_mapping(overrides)
    return dataclasses.replace(s, **{key: getattr(normalised, key) for key in overrides})
