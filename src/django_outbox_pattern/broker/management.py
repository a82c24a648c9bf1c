"""A small client of RabbitMQ's management HTTP API (standard library only), for routing checks.

Only the read calls the routing check needs: does a queue or an exchange exist, what an exchange is
bound to. Errors are translated here into ``exceptions.ManagementUnavailable`` (cannot connect, timed
out, a 5xx) and ``exceptions.ManagementError`` (refused credentials or permissions, a malformed answer).
The password never appears in a message or a ``repr``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django_outbox_pattern import conf, exceptions

logger = logging.getLogger(__name__)

TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Binding:
    """One binding of an exchange: where it leads (a queue or an exchange) and with which key."""

    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str


class ManagementClient:
    """Read-only calls to ``/api`` of one RabbitMQ vhost."""

    def __init__(
        self, url: str, *, username: str, password: str, vhost: str = "/", timeout: float = TIMEOUT_S
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None:  # credentials in the URL win over the settings
            username = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            netloc = parts.netloc.rsplit("@", 1)[1]
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        self.base = url.rstrip("/")
        self.vhost = vhost
        self.timeout = timeout
        self._username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"

    def __repr__(self) -> str:
        return f"<ManagementClient {self._username}@{self.base} vhost={self.vhost!r}>"

    @classmethod
    def from_settings(cls, settings: conf.OutboxSettings) -> ManagementClient | None:
        """The client for DEFAULT_RABBITMQ_MANAGEMENT_URL, or None when it is not set."""
        url = settings.DEFAULT_RABBITMQ_MANAGEMENT_URL
        if not url:
            return None
        username, password = settings.management_credentials
        return cls(url, username=username, password=password, vhost=settings.DEFAULT_STOMP_VHOST)

    def _path(self, *segments: str) -> str:
        return "/api/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)

    def get(self, *segments: str) -> Any | None:
        """The decoded JSON of GET /api/<segments>, or None for a 404."""
        path = self._path(*segments)
        request = urllib.request.Request(
            self.base + path,
            headers={"Authorization": self._authorization, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code in (401, 403):
                raise exceptions.ManagementError(
                    f"RabbitMQ's management API at {self.base} refused user {self._username!r} "
                    f"(HTTP {exc.code}): give the user the 'monitoring' tag, or set "
                    "DEFAULT_RABBITMQ_MANAGEMENT_USERNAME/PASSWORD."
                ) from None
            if exc.code >= 500:
                raise exceptions.ManagementUnavailable(
                    f"RabbitMQ's management API at {self.base} failed (HTTP {exc.code} on {path})."
                ) from None
            raise exceptions.ManagementError(
                f"RabbitMQ's management API at {self.base} answered HTTP {exc.code} on {path}."
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise exceptions.ManagementUnavailable(
                f"Cannot reach RabbitMQ's management API at {self.base} ({reason}): is the "
                "rabbitmq_management plugin enabled, and is DEFAULT_RABBITMQ_MANAGEMENT_URL right?"
            ) from None
        except ValueError as exc:
            raise exceptions.ManagementError(
                f"RabbitMQ's management API at {self.base} sent something that is not JSON on {path}: {exc}"
            ) from None

    def queue_exists(self, name: str) -> bool:
        return self.get("queues", self.vhost, name) is not None

    def exchange_type(self, name: str) -> str | None:
        """The exchange's type ("topic", "direct", "fanout", "headers", ...), or None when it is missing."""
        found = self.get("exchanges", self.vhost, name)
        return None if found is None else str(found.get("type", ""))

    def bindings_from(self, exchange: str) -> list[Binding]:
        """Every binding whose source is ``exchange`` (empty when the exchange is missing)."""
        found = self.get("exchanges", self.vhost, exchange, "bindings", "source") or []
        return [
            Binding(
                str(b.get("destination", "")),
                str(b.get("destination_type", "")),
                str(b.get("routing_key", "")),
            )
            for b in found
        ]
