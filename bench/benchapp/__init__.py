"""Models of the write-overhead benchmark: a ``@publish``-decorated model and its undecorated twin."""

from __future__ import annotations
