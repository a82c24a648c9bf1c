"""How much work each scenario does in the quick and the full mode."""

from __future__ import annotations

import dataclasses

SCENARIOS = ("e2e", "relay", "recovery", "scaling", "latency", "consumer", "write", "memory", "ordering")
OPTIONAL_SCENARIOS = ("cluster",)  # needs `services.sh cluster up`: only with --only cluster
DATABASES = ("postgres", "mysql", "sqlite")
QUICK_DATABASES = ("postgres",)  # --quick without --db: relay and consumer on PostgreSQL only


@dataclasses.dataclass(frozen=True)
class Params:
    mode: str
    repeat: int
    relay_rows: int  # rows per relay throughput run (issue 6: 20,000)
    scaling_rows: int
    scaling_procs: tuple[int, ...]
    latency_rate: float  # offered load, messages per second
    latency_seconds: float  # how long the writer writes per run
    consumer_msgs: int
    prefetch: int  # prefetch-count of the consumer and of the raw receive+ack client
    write_rows: int  # objects per variant in the write-overhead scenario (issue 6: 5,000)
    memory_rows: tuple[int, int]  # small and large backlog (issue 6: 10,000 and 200,000)
    # Runs of the large backlog. Peak RSS varies by well under 1 MB between runs, and one 200,000-row drain
    # takes minutes, so the large backlog runs once by default; the small one runs `repeat` times.
    memory_large_repeat: int = 1
    cluster_rows: int = 10_000  # rows per run of the cluster scenario (1+1 and 4+4 processes)
    # Per-key ordering (issue 16): rows per run, keyed over ``ordering_keys`` keys, and the hot key's rows.
    ordering_rows: int = 20_000
    ordering_keys: int = 1_000
    ordering_hot_rows: int = 2_000
    body_bytes: int = 200
    poll_s: float = 1.0  # DEFAULT_PRODUCER_WAITING_TIME of the latency runs (the spec's default)

    @property
    def memory_scaled_down(self) -> bool:
        return self.memory_rows != (10_000, 200_000)


QUICK = Params(
    mode="quick",
    repeat=3,
    relay_rows=3_000,
    scaling_rows=3_000,
    scaling_procs=(1, 2),  # 4 relay processes in the full run only: starting them costs seconds
    latency_rate=200,
    latency_seconds=2,
    consumer_msgs=400,
    prefetch=100,
    write_rows=400,
    memory_rows=(1_000, 10_000),
    cluster_rows=2_000,
    ordering_rows=3_000,
    ordering_keys=150,
    ordering_hot_rows=300,
)
FULL = Params(
    mode="full",
    repeat=3,
    relay_rows=20_000,
    scaling_rows=20_000,
    scaling_procs=(1, 2, 4),
    latency_rate=200,
    latency_seconds=10,
    consumer_msgs=2_000,
    prefetch=100,
    write_rows=5_000,
    memory_rows=(10_000, 200_000),
)


def build(*, quick: bool, repeat: int | None, prefetch: int | None) -> Params:
    params = QUICK if quick else FULL
    if repeat is not None:
        params = dataclasses.replace(params, repeat=repeat)
    if prefetch is not None:
        params = dataclasses.replace(params, prefetch=prefetch)
    return params
