"""Per-key ordering under SIGKILL: three relays drain 50 keys x 100 rows, written interleaved across keys,
while they are killed and restarted again and again, on PostgreSQL and on MariaDB.

One reader takes the queue (auto-ack, so the broker's queue order is the order seen). Counting each
message's FIRST delivery, every key's rows arrive in their sequence; a repeat of a message already seen is
at-least-once after a kill and is only counted. One row of one key is written already expired: the relay
dead-letters it, and it holds exactly the later rows of its key (SCHEDULE, ``last_error`` naming it) while
every other key completes; parked by an operator (``ops.operations.dead_letter``), it lets the rest of its
key go, in order.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
from collections.abc import Callable

import pytest

from django_outbox_pattern import sequencing
from tests.faults.conftest import summarize
from tests.support.broker_helpers import QueueDrain
from tests.support.fault_cluster import Cluster, wait_then
from tests.support.faultdb import FAILED, SCHEDULE, SUCCEEDED, FaultDatabase, MariaDatabase
from tests.support.rabbit_node import RabbitNode
from tests.support.relay_helpers import make_settings
from tests.support.runner import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KEYS, PER_KEY, RELAYS, KILLS = 50, 100, 3, 9  # KILLS: kills that land mid-batch
POISON_KEY, POISON_INDEX = "k17", 40  # the 41st row of k17 (ordering_seq 41) is written expired
WRITER = "tests.support.ordered_outbox"
PARK_REASON = "poisoned: skipped by the operator"
DRAIN_TIMEOUT = 90


@dataclasses.dataclass
class Arrivals:
    """What the reader saw, per key, counting first deliveries only."""

    order: dict[str, list[int]]  # key -> ordering_seq of each message at its first delivery
    redelivered: int  # deliveries of a message already seen (at-least-once after a kill)
    out_of_order: int  # first deliveries of a key's row after a later row of the key
    unknown: list[str]  # dop-msg-ids that are no outbox row


def arrivals(messages: list, by_id: dict[str, tuple[str, int]]) -> Arrivals:  # type: ignore[type-arg]
    seen: set[str] = set()
    order: dict[str, list[int]] = collections.defaultdict(list)
    redelivered, out_of_order, unknown = 0, 0, []
    for message in messages:
        msg_id = message.headers.get("dop-msg-id", "")
        if msg_id in seen:
            redelivered += 1
            continue
        seen.add(msg_id)
        if msg_id not in by_id:
            unknown.append(msg_id)
            continue
        key, seq = by_id[msg_id]
        body = json.loads(message.body)
        assert (body["key"], body["i"] + 1) == (key, seq), f"{msg_id}: body {body} is not row {seq} of {key}"
        if order[key] and seq < max(order[key]):
            out_of_order += 1
        order[key].append(seq)
    return Arrivals(dict(order), redelivered, out_of_order, unknown)


def expected(*, held: bool) -> dict[str, list[int]]:
    """Every key's sequence numbers as they must arrive: the poisoned row never; while it holds its key,
    nothing after it."""
    keys = {f"k{j}": list(range(1, PER_KEY + 1)) for j in range(KEYS)}
    poison_seq = POISON_INDEX + 1
    keys[POISON_KEY] = [
        seq for seq in keys[POISON_KEY] if seq < poison_seq or (not held and seq > poison_seq)
    ]
    return keys


def statuses(db: FaultDatabase) -> dict[int, int]:
    return {int(s): int(n) for s, n in db.query("SELECT status, count(*) FROM published GROUP BY status")}


def drain_under_kills(node: RabbitNode, cluster: Cluster, request: pytest.FixtureRequest) -> None:
    db = cluster.db
    destination = f"/queue/{cluster.queue}"
    total, held_rows = KEYS * PER_KEY, PER_KEY - POISON_INDEX - 1
    settings = make_settings(DEFAULT_STOMP_HOST_AND_PORTS=[("127.0.0.1", node.stomp_port)])
    with QueueDrain(settings, destination) as drain:
        # Small batches: more passes, so the kills land while the keys drain.
        relays = [cluster.add_relay(OUTBOX_CHUNK_SIZE="10").start() for _ in range(RELAYS)]
        poison = f"{POISON_KEY}:{POISON_INDEX}"
        cluster.run_module(
            "writer", WRITER, "write", destination, str(KEYS), str(PER_KEY), poison, wait=False
        )

        # Kill each relay in turn, once the drain reached the kill's share, as soon as it holds a lease (a
        # batch in flight), at a different point of the batch each time, and start it again at once.
        rng = random.Random(16)
        mid_batch = attempts = 0

        def drained() -> bool:  # every row is published but those the poisoned row holds
            return statuses(db).get(SUCCEEDED, 0) >= total - 1 - held_rows

        while (
            mid_batch < KILLS and not drained()
        ):  # a kill that lands between batches does not count; at most 3 x KILLS
            assert attempts < 3 * KILLS, (
                f"only {mid_batch} of {attempts} kills landed while a batch was leased"
            )
            relay = relays[attempts % RELAYS]
            attempts += 1
            due = total * mid_batch // (3 * (KILLS + 1))  # spread the kills over the first third of the drain
            assert wait_until(
                lambda due=due: statuses(db).get(SUCCEEDED, 0) >= due, timeout=60, interval=0.02
            ), f"kill {attempts}: the drain stalled ({statuses(db)})\n{cluster.log_text()[-3000:]}"
            assert wait_until(
                lambda relay=relay: db.leased_by_pid(relay.pid) > 0 or not relay.alive or drained(),
                timeout=60,
                interval=0.002,
            ), f"kill {attempts}: the relay never held a lease ({statuses(db)})\n{relay.log()[-3000:]}"
            assert relay.alive, relay.log()
            if drained():
                break
            wait_then(rng.uniform(0, 0.005))
            relay.kill()
            mid_batch += db.leased_by_pid(relay.pid) > 0  # its lease is left behind: killed mid-batch
            relay.start()
        pending_after_kills = statuses(db).get(SCHEDULE, 0) - held_rows
        # A fast drain may end before every kill landed (seen on MariaDB): at least one must have.
        assert mid_batch >= 1, f"only {mid_batch} kills landed mid-batch before the drain ended"

        # Every key completes but the poisoned one, which stops right before its expired row.
        def held_state() -> bool:
            now = statuses(db)
            return now.get(SUCCEEDED, 0) == total - 1 - held_rows and now.get(FAILED, 0) == 1

        assert wait_until(held_state, timeout=DRAIN_TIMEOUT, interval=0.2), (
            f"{statuses(db)}\n{cluster.log_text()[-4000:]}"
        )
        assert all(writer.reap(60) == 0 for writer in cluster.writers), [w.log() for w in cluster.writers]

        # Rows written after the blocker failed are labelled when a claim first sets them aside.
        def labelled() -> bool:
            found = db.query(
                "SELECT count(*) FROM published p WHERE p.ordering_key = %s AND p.status = %s "
                "AND p.last_error NOT LIKE %s",
                (POISON_KEY, SCHEDULE, "held behind row %"),
            )
            return found[0][0] == 0

        assert wait_until(labelled, timeout=30, interval=0.2), db.query(
            "SELECT p.ordering_seq, p.available_at, p.locked_by, p.last_error FROM published p "
            "WHERE p.ordering_key = %s AND p.status = %s ORDER BY p.ordering_seq",
            (POISON_KEY, SCHEDULE),
        )[:8]
        rows = db.query(
            f"SELECT {db.ID_TEXT}, p.ordering_key, p.ordering_seq, p.status, p.last_error FROM published p"
        )
        by_id = {str(r[0]): (str(r[1]), int(r[2])) for r in rows}
        (blocker,) = [r for r in rows if r[3] == FAILED]
        assert (blocker[1], blocker[2]) == (POISON_KEY, POISON_INDEX + 1)
        assert blocker[4].startswith("expired"), blocker[4]
        blocker_id = str(blocker[0])
        behind = [r for r in rows if r[1] == POISON_KEY and r[2] > POISON_INDEX + 1]
        assert len(behind) == held_rows
        reason = sequencing.held_reason(blocker_id, POISON_KEY)
        assert all(r[3] == SCHEDULE for r in behind), [r[3] for r in behind]
        assert all(r[4] == reason for r in behind), {r[4] for r in behind}
        assert all(r[4] == "" for r in rows if r[3] == SUCCEEDED)  # no other row was ever held
        first = arrivals(drain.sync(), by_id)
        assert first.order == expected(held=True)  # in order, nothing lost, nothing of the held rows

        # The operator parks the poisoned row: the rest of its key goes, in order.
        park = cluster.run_module("park", WRITER, "park", blocker_id, PARK_REASON)
        assert "parked 1" in park.log(), park.log()
        assert wait_until(
            lambda: statuses(db).get(SUCCEEDED, 0) == total - 1, timeout=DRAIN_TIMEOUT, interval=0.2
        ), f"{statuses(db)}\n{cluster.log_text()[-4000:]}"
        parked = db.query(
            "SELECT p.status, p.ordering_seq, p.last_error FROM published p WHERE p.status = %s", (FAILED,)
        )
        assert parked == [(FAILED, None, PARK_REASON)], parked
        final = arrivals(drain.sync(), by_id)
    codes = cluster.stop_all()
    assert all(code == 0 for code in codes.values()), codes

    lost = sum(len(set(seqs) - set(final.order.get(key, []))) for key, seqs in expected(held=False).items())
    kills = sum(relay.kills for relay in relays)
    line = (
        f"faults: {kills} injected ({mid_batch} mid-batch, {pending_after_kills} rows pending after the "
        f"last), lost {lost}, out of order {final.out_of_order}, redelivered {final.redelivered} "
        f"(at-least-once), held behind the poisoned row {held_rows} (each saying so) then released in order"
    )
    summarize(request, line, kills, lost, 0)
    assert not final.unknown, final.unknown[:5]
    assert final.out_of_order == 0
    assert final.order == expected(held=False)


def test_keys_arrive_in_order_through_relay_kills_and_a_poisoned_row_holds_only_its_key_postgres(
    private_node: RabbitNode, make_cluster: Callable[..., Cluster], request: pytest.FixtureRequest
) -> None:
    drain_under_kills(private_node, make_cluster(private_node.stomp_port), request)


def test_keys_arrive_in_order_through_relay_kills_and_a_poisoned_row_holds_only_its_key_mariadb(
    private_node: RabbitNode,
    maria_db: MariaDatabase,
    make_cluster: Callable[..., Cluster],
    request: pytest.FixtureRequest,
) -> None:
    drain_under_kills(private_node, make_cluster(private_node.stomp_port, db=maria_db), request)
