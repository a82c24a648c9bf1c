"""``--profile``: run a worker call under cProfile and keep the statistics next to the results."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = 40


def profiled(function: Callable[..., Any], kwargs: dict[str, Any], *, directory: str, label: str) -> Any:
    """Call ``function(**kwargs)`` under cProfile; write ``<label>.prof`` and a top-40 ``<label>.txt``.

    cProfile sees the calling thread only: the relay's loop runs there; the consumer's callback thread
    and stomp.py's receiver thread need ``py-spy`` (see docs/bench.md).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile()
    try:
        return profile.runcall(function, **kwargs)
    finally:
        profile.dump_stats(out / f"{label}.prof")
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(TOP)
        stats.sort_stats("tottime").print_stats(TOP)
        (out / f"{label}.txt").write_text(text.getvalue())
