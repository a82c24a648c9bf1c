"""The figures of one run: medians in a nested tree keyed as issue 6 names them, spreads, targets, JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.stats import summarise


@dataclasses.dataclass(frozen=True)
class Target:
    key: str
    op: str  # ">=", "<=" or "=="
    threshold: float
    why: str

    def check(self, value: Any) -> bool | None:
        if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
            return None
        compare: Callable[[Any, Any], bool] = {">=": operator.ge, "<=": operator.le, "==": operator.eq}[
            self.op
        ]
        return bool(compare(value, self.threshold))


TARGETS = (
    Target(
        "relay_e2e.postgres.ratio_to_raw",
        ">=",
        0.70,
        "publish --until-empty process vs a plain stomp.py client process, spawn to exit",
    ),
    Target("recovery.postgres.delay_s", "<=", 5.0, "rows held by a SIGKILLed relay published again"),
    Target("relay.postgres.ratio_to_raw", ">=", 0.70, "relay on PostgreSQL vs raw pipelined client"),
    Target("relay.mysql.ratio_to_raw", ">=", 0.60, "relay on MariaDB vs raw pipelined client"),
    Target("relay.sqlite.ratio_to_raw", ">=", 0.50, "relay on SQLite vs raw pipelined client"),
    Target(
        "relay.postgres.keyed_ratio",
        ">=",
        0.90,
        "relay with 1,000 ordering keys vs the same rows without keys (issue 16: within 10%)",
    ),
    Target("relay.postgres.scaling.speedup_2", ">=", 1.0, "two relays at least as fast as one"),
    Target("relay.postgres.scaling.duplicates", "==", 0, "no message sent twice by concurrent relays"),
    Target("latency.notify.p50_ms", "<=", 25, "commit-to-receive p50 with the wake-up"),
    Target("latency.notify.p99_ms", "<=", 100, "commit-to-receive p99 with the wake-up"),
    Target(
        "consumer.postgres.batched_ratio_to_raw",
        ">=",
        0.70,
        "batched consumer (batch = prefetch) vs raw receive+ack",
    ),
    Target(
        "consumer.postgres.batched_vs_ref321",
        ">=",
        10.0,
        "batched consumer vs 3.2.1's subscribe process, same messages, same run",
    ),
    Target("consumer.postgres.ratio_to_limit", ">=", 0.70, "consumer vs min(raw receive+ack, db-only loop)"),
    Target("write.save_ratio", "<=", 2.0, "decorated save vs plain save, one per transaction"),
    Target("write.bulk_ratio", "<=", 2.0, "decorated bulk_create vs plain bulk_create"),
    Target("memory.rss_growth_ratio", "<=", 1.10, "peak RSS, large backlog vs small backlog"),
)


class Figures:
    """Collects measured figures: ``tree`` holds medians (and plain values), ``spread`` the statistics."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.spread: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}

    def add(self, key: str, runs: Sequence[float], *, unit: str) -> float | None:
        """Record repeated measurements; the median goes into the tree. Returns the median."""
        summary = summarise(runs)
        self.spread[key] = {**summary, "unit": unit}
        self.set(key, summary["median"])
        median: float | None = summary["median"]
        return median

    def set(self, key: str, value: Any) -> None:
        node = self.tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def get(self, key: str) -> Any:
        node: Any = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def targets(self) -> dict[str, dict[str, Any]]:
        out = {}
        for target in TARGETS:
            value = self.get(target.key)
            met = target.check(value)
            out[target.key] = {
                "target": f"{target.op} {target.threshold:g}",
                "value": value,
                "met": met,
                "status": "not measured" if met is None else ("met" if met else "missed"),
                "why": target.why,
            }
        return out


def document(
    figures: Figures, *, params: dict[str, Any], machine: dict[str, Any], mode: str
) -> dict[str, Any]:
    return {
        "mode": mode,
        **figures.tree,
        "targets": figures.targets(),
        "spread": figures.spread,
        "params": params,
        "machine": machine,
        "commit": machine.get("commit"),
        "errors": figures.errors,
    }


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
