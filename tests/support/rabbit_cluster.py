"""Three private RabbitMQ nodes on loopback joined as one cluster, each with STOMP on its own port.

Used by the cluster tests (a session fixture in tests/cluster/conftest.py, random node names, free ports)
and by ``bash scripts/services.sh cluster up|down`` (``python3 -m tests.support.rabbit_cluster``, fixed
names and ports, its state in var/cluster.json). Only the standard library: services.sh runs it with the
system Python. Each node is a ``rabbit_node.RabbitNode`` (its own name, ports, data directory), so the
machine's own RabbitMQ (5672/61613) is never touched. The nodes boot side by side; nodes 2 and 3 then join
node 1 (``stop_app``, ``join_cluster``, ``start_app``).

Ports: the fixture takes free ports from the kernel, as the fault suite's private nodes do (so they never
collide with one another); services.sh uses fixed ports above the kernel's ephemeral range
(STOMP 61721-61723, AMQP 5721-5723, distribution 25721-25723 by default), which a free port never is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.support.rabbit_node import RabbitNode

SIZE = 3
POLICY = "outbox-at-least-once"
DEFAULT_BASE_PORT = 21  # services.sh: STOMP 617xx, AMQP 57xx, distribution 257xx, xx = base + node index - 1


class RabbitCluster:
    """``start()`` boots and joins the nodes; ``destroy()`` stops them and removes their data."""

    def __init__(self, size: int = SIZE, *, prefix: str | None = None, base_port: int | None = None) -> None:
        prefix = prefix or f"outboxcl{uuid.uuid4().hex[:6]}"
        self.name = prefix
        self.nodes: list[RabbitNode] = []
        for index in range(size):
            ports = None
            if base_port is not None:
                n = base_port + index
                ports = (5700 + n, 61700 + n, 25700 + n)
            self.nodes.append(RabbitNode(name=f"{prefix}-{index + 1}@localhost", ports=ports))

    @property
    def stomp_hosts(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.stomp_port) for node in self.nodes]

    def env(self) -> dict[str, str]:
        """What ``services.sh cluster up`` writes to var/services.env."""
        return {
            "OUTBOX_CLUSTER_STOMP": ",".join(f"{host}:{port}" for host, port in self.stomp_hosts),
            "OUTBOX_CLUSTER_NODES": ",".join(node.name for node in self.nodes),
        }

    def start(self) -> None:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait()
        first = self.nodes[0].name
        for node in self.nodes[1:]:
            for args in (("stop_app",), ("join_cluster", first), ("start_app",)):
                result = node.ctl(*args)
                if result.returncode != 0:
                    raise RuntimeError(f"{node.name}: rabbitmqctl {' '.join(args)} failed: {result.stderr}")
        self.wait_formed()
        self.nodes[0].ctl("set_cluster_name", self.name)

    def set_at_least_once_policy(self) -> None:
        """Quorum queues dead-letter at-least-once: STOMP cannot declare ``x-dead-letter-strategy`` (RabbitMQ
        3.10-3.13 pass on only some ``x-`` headers), a policy can (docs/cluster.md shows the command)."""
        definition = json.dumps({"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"})
        result = self.nodes[0].ctl("set_policy", "--apply-to", "queues", POLICY, "^", definition)
        if result.returncode != 0:
            raise RuntimeError(f"set_policy failed: {result.stderr}")

    def queue_info(self, queue: str) -> dict[str, str]:
        """``type``, ``policy``, ``leader`` and ``members`` of a queue, from a running node ({} if none)."""
        columns = ("name", "type", "policy", "leader", "members")
        for node in self.nodes:
            result = node.ctl("list_queues", "-q", "--formatter", "json", *columns, timeout=30)
            if result.returncode == 0:
                for row in json.loads(result.stdout or "[]"):
                    if row.get("name") == queue:
                        return {k: str(v) for k, v in row.items()}
                return {}
        return {}

    def running_nodes(self, via: RabbitNode | None = None) -> set[str]:
        """The nodes the cluster reports running (asked of ``via``, default the first node)."""
        result = (via or self.nodes[0]).ctl("cluster_status", "--formatter", "json", timeout=30)
        if result.returncode != 0:
            return set()
        try:
            return set(json.loads(result.stdout).get("running_nodes", []))
        except ValueError:
            return set()

    def wait_formed(self, timeout: float = 120, via: RabbitNode | None = None) -> None:
        """Wait until every node runs in the cluster."""
        wanted = {node.name for node in self.nodes}
        deadline = time.monotonic() + timeout
        while self.running_nodes(via) != wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not form: running {self.running_nodes(via)}")
            time.sleep(0.5)

    def destroy(self) -> None:
        for node in self.nodes:
            stop_node(node)
            shutil.rmtree(node.dir, ignore_errors=True)


def stop_node(node: RabbitNode) -> None:
    """Stop one node cleanly; SIGKILL its pid if it is still there (never by name)."""
    pid = node.pid
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGCONT)  # a frozen node cannot stop
    node.stop()
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (a child of this process) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- services.sh ---------------------------------------------------------------------------------------


def _cluster_from_state(state: Path) -> RabbitCluster | None:
    if not state.exists():
        return None
    data = json.loads(state.read_text())
    cluster = RabbitCluster(0)
    for entry in data["nodes"]:
        cluster.nodes.append(RabbitNode(name=entry["name"], ports=tuple(entry["ports"])))
    return cluster


def up(state: Path, base_port: int) -> RabbitCluster:
    existing = _cluster_from_state(state)
    if existing is not None and existing.running_nodes() == {node.name for node in existing.nodes}:
        print("[cluster] already running", file=sys.stderr)
        return existing
    if existing is not None:
        existing.destroy()
    cluster = RabbitCluster(prefix="outboxcluster", base_port=base_port)
    for node in cluster.nodes:  # left over from a run that died: free the names and ports
        if node.dir.exists():
            stop_node(node)
        shutil.rmtree(node.dir, ignore_errors=True)
    state.parent.mkdir(parents=True, exist_ok=True)
    nodes = [
        {"name": n.name, "ports": [n.amqp_port, n.stomp_port, n.dist_port], "dir": str(n.dir)}
        for n in cluster.nodes
    ]
    state.write_text(json.dumps({"nodes": nodes}, indent=2) + "\n")
    print(f"[cluster] starting {', '.join(n.name for n in cluster.nodes)}", file=sys.stderr)
    cluster.start()
    return cluster


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.support.rabbit_cluster")
    parser.add_argument("command", choices=("up", "down", "env"))
    parser.add_argument("--state", type=Path, required=True, help="where the node names and ports are kept")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    args = parser.parse_args(argv)
    if args.command == "up":
        cluster = up(args.state, args.base_port)
    else:
        found = _cluster_from_state(args.state)
        if found is None:
            print("[cluster] no cluster was started here", file=sys.stderr)
            return 0 if args.command == "down" else 1
        cluster = found
        if args.command == "down":
            names = ", ".join(node.name for node in cluster.nodes)
            print(f"[cluster] stopping {names}", file=sys.stderr)
            cluster.destroy()
            args.state.unlink()
            return 0
    for key, value in cluster.env().items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
