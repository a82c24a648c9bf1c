"""One module per command; each body parses, bootstraps, calls the engine, renders and exits."""

from __future__ import annotations

import typer

from outboxctl.bootstrap import State


def state(ctx: typer.Context) -> State:
    """The root options (``ctx.obj``), or defaults when a command runs without the root callback."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
