"""A callback module that fails while it is imported (for `subscribe` bad-input tests)."""

from __future__ import annotations

raise RuntimeError("this module is broken on purpose")
