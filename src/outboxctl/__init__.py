"""outboxctl: the operator's command line for django-outbox-pattern (a thin shell over the engine)."""

from __future__ import annotations

from django_outbox_pattern import __version__

__all__ = ["__version__"]
