"""Django system checks. Ids never change meaning:

E001 a DJANGO_OUTBOX_PATTERN value nothing can use; E002 a class or function setting does not import;
E003 a @publish serializer method is missing; E004 a @publish field does not exist;
W001 relaying from SQLite (no row locks between relays: run one relay per database);
W010 an unknown DJANGO_OUTBOX_PATTERN key (ignored, as 3.x did); W011 a value read as another one, the
way 3.x coerced it (a string port, float heart-beats, a truthy flag, an SSL version name).
W012 a 3.x setting that is accepted but has no effect here (NO_EFFECT says why).
E005 a database given to ``check --database`` is not reachable (the probe of ops/probes.py).
E010 a quorum queue that is exclusive; E011 a quorum queue that is auto-delete or not durable;
E012 an ``x-queue-type`` the consumer cannot use (only classic and quorum).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connections

from django_outbox_pattern import coercion, conf, decorators

TAG = "django_outbox_pattern"
# 3.x settings this project accepts without acting on them, and why (W010 when one is set).
NO_EFFECT = {
    "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND": "callbacks always run on the consumer's worker thread, "
    "never on stomp.py's receiver thread (3.x's behaviour with True), so heart-beats keep flowing",
}


def register() -> None:
    checks.register(check_settings, TAG)
    checks.register(check_publish_configs, TAG)
    checks.register(check_queue_type, TAG)
    checks.register(check_database, TAG, checks.Tags.database)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    mapping = getattr(settings, conf.SETTINGS_NAME, None) or {}
    found = conf.review(mapping, coercion.top_level_settings())
    warnings: list[checks.CheckMessage] = [
        checks.Warning(f"{conf.SETTINGS_NAME}[{key!r}] {message}", hint=hint, id=f"{TAG}.{code}")
        for code, problems in (("W010", found.unknown), ("W011", found.coerced))
        for key, message, hint in problems
    ]
    errors: list[checks.CheckMessage] = [
        checks.Error(f"{conf.SETTINGS_NAME}[{key!r}] {message}", hint=hint, id=f"{TAG}.E001")
        for key, message, hint in found.errors
    ]
    warnings.extend(
        checks.Warning(
            f"{conf.SETTINGS_NAME}[{key!r}] has no effect: {why}.",
            hint="Remove it from DJANGO_OUTBOX_PATTERN.",
            id=f"{TAG}.W012",
        )
        for key, why in NO_EFFECT.items()
        if key in mapping
    )
    if errors:
        return errors + warnings
    current = conf.OutboxSettings.from_mapping(mapping)
    for key in (
        "DEFAULT_CONNECTION_CLASS",
        "DEFAULT_CONSUMER_LISTENER_CLASS",
        "DEFAULT_PRODUCER_LISTENER_CLASS",
        "DEFAULT_GENERATE_HEADERS",
        "DEFAULT_PUBLISHED_CLASS",
        "DEFAULT_RECEIVED_CLASS",
        "DEFAULT_STOMP_CERT_VALIDATOR",
    ):
        value = getattr(current, key)
        if value is None:
            continue
        try:
            conf.import_object(value)
        except Exception as exc:
            errors.append(
                checks.Error(
                    f"{conf.SETTINGS_NAME}[{key!r}] = {value!r} cannot be imported: {exc}",
                    hint="Give a dotted path to an importable object.",
                    id=f"{TAG}.E002",
                )
            )
    return errors + warnings


QUEUE_TYPES = ("classic", "quorum")


def check_queue_type(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E010-E012: queue properties RabbitMQ refuses for the ``x-queue-type`` of DEFAULT_STOMP_QUEUE_HEADERS
    (it would answer the consumer's SUBSCRIBE with an ERROR and close the connection, again and again)."""
    mapping = getattr(settings, conf.SETTINGS_NAME, None) or {}
    if conf.validate(mapping):
        return []  # E001 reports those
    return queue_type_problems(conf.OutboxSettings.from_mapping(mapping))


def queue_type_problems(current: conf.OutboxSettings) -> list[checks.CheckMessage]:
    headers = {k.lower(): str(v).lower() for k, v in current.DEFAULT_STOMP_QUEUE_HEADERS.items()}
    kind = headers.get("x-queue-type", "classic")
    key = f"{conf.SETTINGS_NAME}['DEFAULT_STOMP_QUEUE_HEADERS']"
    if kind not in QUEUE_TYPES:
        return [
            checks.Error(
                f"{key} has x-queue-type {kind!r}: consumers use classic or quorum queues only.",
                hint="Set 'x-queue-type' to 'quorum' (replicated) or 'classic', or remove it (classic).",
                id=f"{TAG}.E012",
            )
        ]
    if kind != "quorum":
        return []
    errors: list[checks.CheckMessage] = []
    if current.DEFAULT_EXCLUSIVE_QUEUE or headers.get("exclusive") == "true":
        errors.append(
            checks.Error(
                "A quorum queue cannot be exclusive: RabbitMQ refuses to declare it.",
                hint="Set DEFAULT_EXCLUSIVE_QUEUE to False (and drop an 'exclusive' header), or use "
                "x-queue-type 'classic'.",
                id=f"{TAG}.E010",
            )
        )
    if headers.get("auto-delete") == "true" or headers.get("durable") != "true":
        errors.append(
            checks.Error(
                f"{key}: a quorum queue must be durable and not auto-delete: RabbitMQ refuses to declare it.",
                hint="Use 'durable': 'true' and 'auto-delete': 'false' (the defaults) with x-queue-type "
                "'quorum'.",
                id=f"{TAG}.E011",
            )
        )
    return errors


def check_publish_configs(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        errors.extend(check_model_configs(model))
    return errors


def check_model_configs(model: Any) -> list[checks.CheckMessage]:
    """E003/E004/E006 for one model's @publish configs."""
    errors: list[checks.CheckMessage] = []
    for config in model.__dict__.get(decorators.CONFIGS_ATTR, ()):
        if config.serializer is not None and not callable(getattr(model, config.serializer, None)):
            errors.append(
                checks.Error(
                    f"@publish on {model.__name__}: serializer {config.serializer!r} is not a method "
                    "of the model.",
                    hint=f"Define {model.__name__}.{config.serializer}(self) returning the body, "
                    "or drop serializer=.",
                    obj=model,
                    id=f"{TAG}.E003",
                )
            )
        names = {f.name for f in model._meta.get_fields()} | {f.attname for f in model._meta.concrete_fields}
        for field in config.fields or ():
            if field not in names:
                errors.append(
                    checks.Error(
                        f"@publish on {model.__name__}: field {field!r} does not exist.",
                        hint=f"Fields of {model.__name__}: {', '.join(sorted(names))}.",
                        obj=model,
                        id=f"{TAG}.E004",
                    )
                )
        if config.ordering_key is not None and not hasattr(model, config.ordering_key):
            errors.append(
                checks.Error(
                    f"@publish on {model.__name__}: ordering_key {config.ordering_key!r} is no field, "
                    "attribute or method of the model.",
                    hint='Name the field whose value identifies the entity, e.g. ordering_key="customer_id".',
                    obj=model,
                    id=f"{TAG}.E006",
                )
            )
    return errors


def check_database(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    from django_outbox_pattern.ops import probes

    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        probe = probes.database(alias)
        if not probe.ok:
            messages.append(checks.Error(probe.detail, hint=probe.hint, id=f"{TAG}.E005"))
    if "default" not in connections or connections["default"].vendor != "sqlite":
        return messages
    return [
        *messages,
        checks.Warning(
            "The outbox is on SQLite: relays cannot lock rows between processes.",
            hint="Run one relay per SQLite database (a second one is serialised by leases, not parallel); "
            "use PostgreSQL or MariaDB/MySQL for several relays.",
            id=f"{TAG}.W001",
        ),
    ]
