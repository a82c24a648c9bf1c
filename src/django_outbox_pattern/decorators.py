"""The ``publish`` decorator: saving a model also writes its outbox rows, in the same transaction.

The decorator returns the model class itself (not a proxy). It wraps the class's own ``save`` and the
``bulk_create`` of its managers' querysets. ``obj.save(stop=True)`` (as in 2.x) or the
``publishing_disabled()`` context manager save without publishing.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.utils.encoding import is_protected_type

CONFIGS_ATTR = "_outbox_configs"
_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("dop_publishing_disabled", default=False)
_in_save: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("dop_in_save", default=frozenset())

ModelT = TypeVar("ModelT", bound=type[models.Model])


class Config(NamedTuple):
    destination: str
    fields: list[str] | None = None
    serializer: str | None = None
    version: str | None = None
    # A field, attribute or method of the model whose value orders its messages (docs/ordering.md): the
    # messages of one value go out one at a time, in the order they were written. None: no ordering.
    ordering_key: str | None = None


@contextlib.contextmanager
def publishing_disabled() -> Iterator[None]:
    """Within this block, saving or bulk-creating decorated models writes no outbox rows."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def publish(configs: Sequence[Config]) -> Callable[[ModelT], ModelT]:
    """Decorate a model so each save writes one ``Published`` row per ``Config``."""
    configs = tuple(configs)
    for config in configs:
        if not isinstance(config, Config):
            raise TypeError(f"publish() takes a list of Config, got {config!r}")

    def wrapper(cls: ModelT) -> ModelT:
        setattr(cls, CONFIGS_ATTR, configs)
        if not getattr(cls.save, "_dop_wrapped", False):
            cls.save = _wrap_save(cls.save)  # type: ignore[method-assign]
        for manager in cls._meta.managers:
            _wrap_manager(manager)
        return cls

    return wrapper


def _wrap_save(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def save(self: models.Model, *args: Any, stop: bool = False, **kwargs: Any) -> None:
        active = _in_save.get()
        if id(self) in active:  # a decorated parent's save called through super(): publish once, outermost
            original(self, *args, **kwargs)
            return
        token = _in_save.set(active | {id(self)})
        try:
            using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
            # No savepoint: the save and its outbox rows succeed or fail together with the caller's
            # transaction (one extra INSERT, nothing more).
            with transaction.atomic(using=using, savepoint=False):
                original(self, *args, **kwargs)
                if not stop and not _disabled.get():
                    write_outbox_rows([self], using=using)
        finally:
            _in_save.reset(token)

    save._dop_wrapped = True  # type: ignore[attr-defined]
    return save


def _wrap_manager(manager: models.Manager[Any]) -> None:
    queryset_class: type[models.QuerySet[Any]] = getattr(manager, "_queryset_class")  # noqa: B009
    if getattr(queryset_class, "_dop_wrapped", False):
        return
    original = queryset_class.bulk_create

    def bulk_create(
        self: models.QuerySet[Any], objs: Iterable[models.Model], *args: Any, **kwargs: Any
    ) -> Any:
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            created = original(self, objs, *args, **kwargs)
            if not _disabled.get():
                write_outbox_rows(created, using=self.db)
        return created

    wrapped = type(
        queryset_class.__name__, (queryset_class,), {"bulk_create": bulk_create, "_dop_wrapped": True}
    )
    setattr(manager, "_queryset_class", wrapped)  # noqa: B010


def write_outbox_rows(objs: Sequence[models.Model], *, using: str | None = None) -> None:
    """Insert the outbox rows (DEFAULT_PUBLISHED_CLASS) of decorated model instances in one statement
    (COPY on PostgreSQL)."""
    from django_outbox_pattern import wiring
    from django_outbox_pattern.relaying import bulk

    outbox_model = wiring.published_model()
    rows = [
        outbox_model(
            destination=config.destination,
            version=config.version,
            body=build_body(obj, config),
            ordering_key=ordering_key_of(obj, config),
        )
        for obj in objs
        for config in getattr(type(obj), CONFIGS_ATTR, ())
    ]
    bulk.insert_rows(rows, using=using or "default")


def ordering_key_of(obj: models.Model, config: Config) -> str | None:
    """The value of the model's ``config.ordering_key`` field, attribute or method, as a key (or None)."""
    if config.ordering_key is None:
        return None
    from django_outbox_pattern import sequencing

    try:
        value = getattr(obj, config.ordering_key)
    except AttributeError:
        raise AttributeError(
            f"{type(obj).__name__} has no field, attribute or method {config.ordering_key!r} named as "
            "ordering_key in @publish"
        ) from None
    return sequencing.key_of(value() if callable(value) else value)


def build_body(obj: models.Model, config: Config) -> Any:
    """The message body: the serializer method's result, else ``{"id": pk, **fields}`` as Django's JSON."""
    if config.serializer is not None:
        method = getattr(obj, config.serializer, None)
        if not callable(method):
            raise AttributeError(
                f"{type(obj).__name__} has no method {config.serializer!r} named as serializer in @publish"
            )
        return method()
    return _default_body(obj, config.fields)


def _default_body(obj: models.Model, fields: Sequence[str] | None) -> Any:
    """What Django's JSON serializer gives (``{"id": pk, **fields}``), inherited fields included."""
    meta = obj._meta
    wanted = set(fields) if fields is not None else None
    body: dict[str, Any] = {"id": _plain_value(obj, meta.pk)}
    for field in meta.concrete_fields:
        if field.primary_key or (field.remote_field is not None and field.remote_field.parent_link):
            continue
        if wanted is not None and field.name not in wanted and field.attname not in wanted:
            continue
        body[field.name] = getattr(obj, field.attname) if field.remote_field else _plain_value(obj, field)
    for m2m in meta.many_to_many:
        if wanted is None or m2m.name in wanted:
            body[m2m.name] = list(getattr(obj, m2m.name).values_list("pk", flat=True)) if obj.pk else []
    return json.loads(json.dumps(body, cls=DjangoJSONEncoder))


def _plain_value(obj: models.Model, field: Any) -> Any:
    value = field.value_from_object(obj)
    return value if is_protected_type(value) else field.value_to_string(obj)
