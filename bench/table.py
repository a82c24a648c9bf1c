"""The Rich table: each figure next to its limit, the ratio, the target and whether it was met."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.results import Figures

# (label, figure key, limit key or None, ratio key or None, target key or None)
ROWS: tuple[tuple[str, str, str | None, str | None, str | None], ...] = (
    (
        "relay e2e postgres (process)",
        "relay_e2e.postgres.msgs_per_s",
        "relay_e2e.raw_client_msgs_per_s",
        "relay_e2e.postgres.ratio_to_raw",
        "relay_e2e.postgres.ratio_to_raw",
    ),
    ("  WAL bytes per message", "relay_e2e.postgres.per_message.wal_bytes", None, None, None),
    ("  row rewrites per message", "relay_e2e.postgres.per_message.row_updates", None, None, None),
    ("  of which HOT", "relay_e2e.postgres.per_message.hot_updates", None, None, None),
    (
        "  3.2.1 publish (process)",
        "relay_e2e.ref_3_2_1.msgs_per_s",
        None,
        "relay_e2e.postgres.ratio_to_3_2_1",
        None,
    ),
    (
        "relay postgres",
        "relay.postgres.msgs_per_s",
        "relay.raw_pipelined_msgs_per_s",
        "relay.postgres.ratio_to_raw",
        "relay.postgres.ratio_to_raw",
    ),
    (
        "relay mariadb",
        "relay.mysql.msgs_per_s",
        "relay.raw_pipelined_msgs_per_s",
        "relay.mysql.ratio_to_raw",
        "relay.mysql.ratio_to_raw",
    ),
    (
        "relay sqlite",
        "relay.sqlite.msgs_per_s",
        "relay.raw_pipelined_msgs_per_s",
        "relay.sqlite.ratio_to_raw",
        "relay.sqlite.ratio_to_raw",
    ),
    (
        "relay postgres, ordering keys",
        "relay.postgres.keyed_msgs_per_s",
        "relay.postgres.unkeyed_msgs_per_s",
        "relay.postgres.keyed_ratio",
        "relay.postgres.keyed_ratio",
    ),
    ("  one hot key (sequential)", "relay.postgres.hot_key_msgs_per_s", None, None, None),
    (
        "relay postgres, 2 procs",
        "relay.postgres.scaling.relays_2.msgs_per_s",
        "relay.postgres.scaling.relays_1.msgs_per_s",
        "relay.postgres.scaling.speedup_2",
        "relay.postgres.scaling.speedup_2",
    ),
    (
        "relay postgres, 4 procs",
        "relay.postgres.scaling.relays_4.msgs_per_s",
        "relay.postgres.scaling.relays_1.msgs_per_s",
        "relay.postgres.scaling.speedup_4",
        None,
    ),
    (
        "relay scaling duplicates",
        "relay.postgres.scaling.duplicates",
        None,
        None,
        "relay.postgres.scaling.duplicates",
    ),
    ("crash recovery delay (s)", "recovery.postgres.delay_s", None, None, "recovery.postgres.delay_s"),
    ("latency notify p50 (ms)", "latency.notify.p50_ms", None, None, "latency.notify.p50_ms"),
    ("latency notify p95 (ms)", "latency.notify.p95_ms", None, None, None),
    ("latency notify p99 (ms)", "latency.notify.p99_ms", None, None, "latency.notify.p99_ms"),
    ("latency poll p50 (ms)", "latency.poll.p50_ms", None, None, None),
    ("latency poll p95 (ms)", "latency.poll.p95_ms", None, None, None),
    ("latency poll p99 (ms)", "latency.poll.p99_ms", None, None, None),
    (
        "consumer postgres",
        "consumer.postgres.msgs_per_s",
        "consumer.postgres.limit_msgs_per_s",
        "consumer.postgres.ratio_to_limit",
        "consumer.postgres.ratio_to_limit",
    ),
    (
        "consumer mariadb",
        "consumer.mysql.msgs_per_s",
        "consumer.mysql.limit_msgs_per_s",
        "consumer.mysql.ratio_to_limit",
        None,
    ),
    (
        "consumer sqlite",
        "consumer.sqlite.msgs_per_s",
        "consumer.sqlite.limit_msgs_per_s",
        "consumer.sqlite.ratio_to_limit",
        None,
    ),
    (
        "consumer postgres, batched",
        "consumer.postgres.batched_msgs_per_s",
        "consumer.raw_msgs_per_s",
        "consumer.postgres.batched_ratio_to_raw",
        "consumer.postgres.batched_ratio_to_raw",
    ),
    (
        "consumer postgres vs 3.2.1",
        "consumer.postgres.msgs_per_s",
        "consumer.postgres.ref321_msgs_per_s",
        "consumer.postgres.default_vs_ref321",
        "consumer.postgres.default_vs_ref321",
    ),
    (
        "consumer postgres, batched vs 3.2.1",
        "consumer.postgres.batched_msgs_per_s",
        "consumer.postgres.ref321_msgs_per_s",
        "consumer.postgres.batched_vs_ref321",
        "consumer.postgres.batched_vs_ref321",
    ),
    ("  raw receive+ack", "consumer.raw_msgs_per_s", None, None, None),
    ("  3.2.1 postgres", "consumer.postgres.ref321_msgs_per_s", None, None, None),
    ("  db-only postgres", "consumer.postgres.db_only_msgs_per_s", None, None, None),
    ("  db-only mariadb", "consumer.mysql.db_only_msgs_per_s", None, None, None),
    ("  db-only sqlite", "consumer.sqlite.db_only_msgs_per_s", None, None, None),
    (
        "decorated save (rows/s)",
        "write.decorated_save_rows_per_s",
        "write.plain_save_rows_per_s",
        "write.save_ratio",
        "write.save_ratio",
    ),
    (
        "decorated bulk_create (rows/s)",
        "write.decorated_bulk_rows_per_s",
        "write.plain_bulk_rows_per_s",
        "write.bulk_ratio",
        "write.bulk_ratio",
    ),
    (
        "cluster 4 relays + 4 consumers",
        "cluster.postgres.relays_4_consumers_4.msgs_per_s",
        "cluster.postgres.relays_1_consumers_1.msgs_per_s",
        "cluster.postgres.speedup_4x4",
        None,
    ),
    ("cluster duplicates", "cluster.postgres.duplicates", None, None, None),
    (
        "relay peak RSS, large (MB)",
        "memory.rss_mb_200k",
        "memory.rss_mb_10k",
        "memory.rss_growth_ratio",
        "memory.rss_growth_ratio",
    ),
)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _spread(figures: Figures, key: str) -> str:
    spread = figures.spread.get(key)
    if not spread or spread.get("n", 0) < 2:
        return ""
    return f"{_num(spread['min'])}-{_num(spread['max'])} (n={spread['n']})"


def render(figures: Figures, *, mode: str, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: do not wrap at 80 columns
            console = Console(width=150)
    targets = figures.targets()
    table = Table(title=f"django-outbox-pattern benchmark ({mode})", title_justify="left")
    for column in ("figure", "median", "spread min-max", "limit", "ratio", "target", ""):
        table.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for label, key, limit_key, ratio_key, target_key in ROWS:
        value = figures.get(key)
        if value is None:
            continue
        ratio = figures.get(ratio_key) if ratio_key else None
        target = targets.get(target_key or "")
        verdict = ""
        if target and target["met"] is not None:
            verdict = "[green]met[/green]" if target["met"] else "[red]MISSED[/red]"
        table.add_row(
            label,
            _num(value),
            _spread(figures, key),
            _num(figures.get(limit_key)) if limit_key else "",
            _num(ratio) if ratio is not None else "",
            target["target"] if target else "",
            verdict,
        )
    console.print(table)
    for key, message in figures.errors.items():
        console.print(
            f"[red]{key} failed:[/red] {message.strip().splitlines()[-1] if message.strip() else ''}"
        )
