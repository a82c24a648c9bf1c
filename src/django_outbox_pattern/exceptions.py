"""The project's own exceptions: one root, messages that say what to do."""

from __future__ import annotations


class OutboxError(Exception):
    """Something went wrong in django-outbox-pattern."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(OutboxError):
    """The DJANGO_OUTBOX_PATTERN settings are invalid: run `python manage.py check` or `outboxctl check`."""


class InvalidOrderingKey(OutboxError, ValueError):
    """An outbox row's ordering key cannot be stored (too long): use a short id of the entity."""


class StorageError(OutboxError):
    """The database could not be reached: is it running, and are the migrations applied?"""


class TransportError(OutboxError):
    """The broker refused or failed an operation."""


class TransportConnectionError(TransportError):
    """The broker connection is not usable."""


class ConnectionFailed(TransportConnectionError):
    """Could not connect to the broker: is RabbitMQ running with the rabbitmq_stomp plugin enabled?
    Run `outboxctl check`."""


class ConnectionClosed(TransportConnectionError):
    """The broker connection was closed while in use; it will be re-opened."""


class SendInterrupted(ConnectionClosed):
    """The connection failed part-way through a ``send_many()``; ``written`` messages were sent first."""

    def __init__(self, message: str | None = None, *, written: int = 0) -> None:
        super().__init__(message)
        self.written = written


class PublishNotConfirmed(TransportError):
    """The broker did not confirm a message (no RECEIPT in time): it may not have been stored."""


class UnsendableMessage(OutboxError):
    """This message can never be sent as it is (destination, headers or body are invalid): fix the row and
    replay it with `outboxctl replay`."""


class BrokerRejected(TransportError):
    """The broker answered with an ERROR frame."""


class MessageDecodeError(OutboxError):
    """A message could not be decoded."""


class CallbackImportError(OutboxError):
    """The callback could not be imported: give a dotted path such as `myapp.callbacks.handle`."""


class InvalidDestination(OutboxError):
    """Not a STOMP destination RabbitMQ accepts: use /queue/<name>, /topic/<key>, /exchange/<name>[/<key>],
    /amq/queue/<name> or /temp-queue/<name>."""


class ExceededSendAttemptsException(OutboxError):
    """The message could not be sent within DEFAULT_MAXIMUM_RETRY_ATTEMPTS attempts: is the broker up?
    Run `outboxctl check`."""

    def __init__(self, attempts: int, message: str | None = None) -> None:  # 3.x: (attempts), .attempts
        super().__init__(message or f"Exceeded send attempts: {attempts}. {(self.__doc__ or '').strip()}")
        self.attempts = attempts


class SendNotConfirmed(ExceededSendAttemptsException, PublishNotConfirmed):
    """A direct send (``producers.Producer``) got no RECEIPT within its attempts."""


class ManagementError(OutboxError):
    """RabbitMQ's management HTTP API refused a request: check DEFAULT_RABBITMQ_MANAGEMENT_URL and the
    user's permissions (the "monitoring" or "management" tag)."""


class ManagementUnavailable(ManagementError):
    """RabbitMQ's management HTTP API cannot be reached: is the rabbitmq_management plugin enabled
    (`rabbitmq-plugins enable rabbitmq_management`), and is DEFAULT_RABBITMQ_MANAGEMENT_URL right?"""
