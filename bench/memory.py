"""Relay memory (scenario 6): peak RSS of a fresh relay process draining a small and a large backlog.

The peak is ``ru_maxrss`` of the relay process itself (it loads nothing: a separate worker bulk-loads the
rows first). Flat memory means the relay streams the outbox in chunks instead of loading it.
The large backlog is the small one loaded through the ORM, then copied server-side with fresh ids.
Queues of this scenario are not counted by consuming them (200,000 messages would take longer than the
relay); the outbox must be all Succeeded, and the broker deletes the queue by ``x-expires``.
"""

from __future__ import annotations

import statistics

from bench import relay
from bench.context import Context
from bench.results import Figures


def run(ctx: Context, figures: Figures, db: str = "postgres") -> None:
    small, large = ctx.params.memory_rows
    rss: dict[int, list[float]] = {small: [], large: []}
    speed: dict[int, list[float]] = {small: [], large: []}
    plan = [small] * ctx.params.repeat
    plan[1:1] = [large] * ctx.params.memory_large_repeat  # small, large..., small, small
    for index, rows in enumerate(plan):
        run = relay.measure(ctx, db, rows=rows, count_queue=False, clone_above=small)
        rss[rows].append(run["maxrss_mb"])
        speed[rows].append(run["msgs_per_s"])
        ctx.log(f"memory #{index + 1} rows={rows}", rss_mb=run["maxrss_mb"], msgs_per_s=run["msgs_per_s"])
    small_median = statistics.median(rss[small])
    figures.add("memory.rss_mb_10k", rss[small], unit="MB")
    figures.add("memory.rss_mb_200k", rss[large], unit="MB")
    figures.add("memory.rss_growth_ratio", [value / small_median for value in rss[large]], unit="ratio")
    figures.add("memory.msgs_per_s_10k", speed[small], unit="msg/s")
    figures.add("memory.msgs_per_s_200k", speed[large], unit="msg/s")
    figures.set("memory.rows_small", small)
    figures.set("memory.rows_large", large)
    figures.set("memory.scaled_down", ctx.params.memory_scaled_down)
    figures.set("memory.database", db)
