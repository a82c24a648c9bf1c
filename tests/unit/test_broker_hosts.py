from __future__ import annotations

import random

from django_outbox_pattern.broker import hosts

A, B, C = ("a", 1), ("b", 2), ("c", 3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_host_is_kept_as_given() -> None:
    assert hosts.HostOrder().order([("h", 61613)]) == [("h", 61613)]


def test_each_process_starts_at_its_own_host_and_keeps_it() -> None:
    firsts = {hosts.HostOrder(rng=random.Random(seed)).order([A, B, C])[0] for seed in range(30)}
    assert firsts == {A, B, C}  # processes spread over the nodes
    order = hosts.HostOrder(rng=random.Random(1))
    first = order.order([A, B, C])
    assert order.order([A, B, C]) == first  # stable within the process
    assert sorted(first) == [A, B, C]  # a rotation: every host, once


def test_a_failed_host_goes_last_until_its_suspicion_ends() -> None:
    clock = Clock()
    order = hosts.HostOrder(clock=clock, rng=random.Random(0), suspect_for_s=30)
    start = order.order([A, B, C])
    order.failed(start[0])
    assert order.order([A, B, C]) == [*start[1:], start[0]]
    assert order.suspects() == [start[0]]
    clock.now += 31
    assert order.order([A, B, C]) == start
    assert order.suspects() == []


def test_when_every_host_failed_the_oldest_failure_is_tried_first() -> None:
    clock = Clock()
    order = hosts.HostOrder(clock=clock, rng=random.Random(0))
    for host in (B, C, A):
        order.failed(host)
        clock.now += 1
    assert order.order([A, B, C]) == [B, C, A]
    order.failed(None)  # nothing known: nothing recorded
    assert len(order.suspects()) == 3


def test_address_of_a_transport() -> None:
    class Connected:
        host = ("127.0.0.1", 61721)

    assert hosts.address_of(Connected()) == "127.0.0.1:61721"
    assert hosts.address_of(object()) == "-"
