"""consuming: see docs/architecture.md."""

from __future__ import annotations
