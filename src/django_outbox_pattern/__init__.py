"""django-outbox-pattern: transactional outbox and idempotent inbox for Django over STOMP.

Never import models here (AppRegistryNotReady).
"""

from __future__ import annotations

__version__ = "4.0.0"
