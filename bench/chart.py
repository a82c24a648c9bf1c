"""An SVG chart of one run, written next to its JSON: throughput against the references, and latencies.

Plain SVG text (no plotting library): one panel per group, one horizontal bar per figure (the median), a
thin line over the bar from the fastest to the slowest run where the figure was repeated. Figures the
run did not measure are left out; a panel with none is left out.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from bench.results import Figures

# (panel title, unit, [(label, figure key, colour)])
PANELS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Relay, whole processes (spawn to exit), PostgreSQL",
        "msg/s",
        (
            ("plain stomp.py client", "relay_e2e.raw_client_msgs_per_s", "#9e9e9e"),
            ("publish --until-empty", "relay_e2e.postgres.msgs_per_s", "#1f77b4"),
            ("3.2.1 publish", "relay_e2e.ref_3_2_1.msgs_per_s", "#d62728"),
        ),
    ),
    (
        "Relay in process (built and connected before the clock starts)",
        "msg/s",
        (
            ("raw pipelined sends", "relay.raw_pipelined_msgs_per_s", "#9e9e9e"),
            ("relay, PostgreSQL", "relay.postgres.msgs_per_s", "#1f77b4"),
            ("relay, MariaDB", "relay.mysql.msgs_per_s", "#2ca02c"),
            ("relay, SQLite", "relay.sqlite.msgs_per_s", "#ff7f0e"),
        ),
    ),
    (
        "Per-key ordering, relay in process, PostgreSQL",
        "msg/s",
        (
            ("no ordering key", "relay.postgres.unkeyed_msgs_per_s", "#9e9e9e"),
            ("1,000 ordering keys", "relay.postgres.keyed_msgs_per_s", "#1f77b4"),
            ("one hot key (sequential)", "relay.postgres.hot_key_msgs_per_s", "#d62728"),
        ),
    ),
    (
        "Consumer",
        "msg/s",
        (
            ("raw receive+ack", "consumer.raw_msgs_per_s", "#9e9e9e"),
            ("db-only loop, PostgreSQL", "consumer.postgres.db_only_msgs_per_s", "#bcbcbc"),
            ("3.2.1 consumer, PostgreSQL", "consumer.postgres.ref321_msgs_per_s", "#d62728"),
            ("consumer, PostgreSQL", "consumer.postgres.msgs_per_s", "#1f77b4"),
            ("consumer batched, PostgreSQL", "consumer.postgres.batched_msgs_per_s", "#17becf"),
            ("consumer, MariaDB", "consumer.mysql.msgs_per_s", "#2ca02c"),
            ("consumer, SQLite", "consumer.sqlite.msgs_per_s", "#ff7f0e"),
        ),
    ),
    (
        "Commit to subscriber latency",
        "ms",
        (
            ("wake-up p50", "latency.notify.p50_ms", "#1f77b4"),
            ("wake-up p95", "latency.notify.p95_ms", "#1f77b4"),
            ("wake-up p99", "latency.notify.p99_ms", "#1f77b4"),
            ("polling p50", "latency.poll.p50_ms", "#ff7f0e"),
            ("polling p95", "latency.poll.p95_ms", "#ff7f0e"),
            ("polling p99", "latency.poll.p99_ms", "#ff7f0e"),
        ),
    ),
)

WIDTH = 760
LABEL_W = 200
VALUE_W = 90
BAR_H = 18
GAP = 6
TITLE_H = 28


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _panel(title: str, unit: str, bars: list[tuple[str, float, float, float, str]], top: int) -> list[str]:
    scale_max = max(high for _, _, _, high, _ in bars) or 1.0
    plot_w = WIDTH - LABEL_W - VALUE_W - 20
    out = [f'<text x="10" y="{top + 18}" font-weight="bold">{escape(title)} ({escape(unit)})</text>']
    y = top + TITLE_H
    for label, median, low, high, colour in bars:
        width = plot_w * median / scale_max
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" fill="{colour}"/>')
        if high > low:
            x1, x2 = LABEL_W + plot_w * low / scale_max, LABEL_W + plot_w * high / scale_max
            mid = y + BAR_H / 2
            out.append(f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" stroke="#000"/>')
        out.append(f'<text x="{LABEL_W + width + 6:.1f}" y="{y + 13}">{_number(median)}</text>')
        y += BAR_H + GAP
    return out


def render(figures: Figures) -> str:
    parts: list[str] = []
    top = 10
    for title, unit, entries in PANELS:
        bars = []
        for label, key, colour in entries:
            value = figures.get(key)
            if not isinstance(value, (int, float)):
                continue
            spread = figures.spread.get(key, {})
            low, high = spread.get("min", value), spread.get("max", value)
            bars.append((label, float(value), float(low), float(high), colour))
        if not bars:
            continue
        parts.extend(_panel(title, unit, bars, top))
        top += TITLE_H + len(bars) * (BAR_H + GAP) + 14
    if not parts:
        parts.append('<text x="10" y="28">No throughput or latency figure in this run.</text>')
        top = 40
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{top + 10}" '
        f'font-family="sans-serif" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )


def write(figures: Figures, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(figures))
    return path
