"""Per-key ordering (scenario ``ordering``, issue 16): relay throughput with ordering keys vs without.

Three in-process-relay drains on PostgreSQL per repeat, through ``bench.relay.measure`` (rows loaded with
``bulk_create``, one relay process built before the clock starts, timed until it found the outbox empty,
then every row counted once in the queue):

- unkeyed: ``ordering_rows`` rows without a key (as the ``relay`` scenario);
- keyed: the same number of rows over ``ordering_keys`` keys, interleaved (row ``i`` has key ``i % keys``):
  a claim takes only each key's first unsent row, so a key's next row waits for the previous RECEIPT;
- hot key: ``ordering_hot_rows`` rows of ONE key, default settings: sequential by design (one row in
  flight at a time), so its figure is the round trip per row (claim, send, RECEIPT, mark, wake the next),
  not a throughput to compare. The relay claims again at once after a pass that found rows, so the poll
  interval plays no part.

Keyed and unkeyed runs alternate (the first of the pair swaps each repeat), so both see the same load; the
ratio is taken per pair, and the figures are medians over the repeats.
"""

from __future__ import annotations

from bench import relay
from bench.context import Context
from bench.results import Figures

DB = "postgres"


def run(ctx: Context, figures: Figures) -> None:
    params = ctx.params
    rows, keys, hot_rows = params.ordering_rows, params.ordering_keys, params.ordering_hot_rows
    keyed: list[float] = []
    unkeyed: list[float] = []
    ratios: list[float] = []
    hot: list[float] = []
    for repeat in range(params.repeat):
        pair: dict[str, float] = {}
        variants = [("unkeyed", 0), ("keyed", keys)]
        if repeat % 2:
            variants.reverse()
        for variant, key_count in variants:
            pair[variant] = relay.measure(ctx, DB, rows=rows, keys=key_count)["msgs_per_s"]
        keyed.append(pair["keyed"])
        unkeyed.append(pair["unkeyed"])
        ratios.append(pair["keyed"] / pair["unkeyed"])
        ctx.log(f"ordering #{repeat + 1}", keyed=pair["keyed"], unkeyed=pair["unkeyed"], ratio=ratios[-1])
        hot.append(relay.measure(ctx, DB, rows=hot_rows, keys=1)["msgs_per_s"])
        ctx.log(f"ordering #{repeat + 1} one hot key", msgs_per_s=hot[-1])
    figures.add(f"relay.{DB}.keyed_msgs_per_s", keyed, unit="msg/s")
    figures.add(f"relay.{DB}.unkeyed_msgs_per_s", unkeyed, unit="msg/s")
    figures.add(f"relay.{DB}.keyed_ratio", ratios, unit="ratio")
    figures.add(f"relay.{DB}.hot_key_msgs_per_s", hot, unit="msg/s")
    figures.set(f"relay.{DB}.ordering.rows", rows)
    figures.set(f"relay.{DB}.ordering.keys", keys)
    figures.set(f"relay.{DB}.ordering.hot_key_rows", hot_rows)
