"""A private RabbitMQ node for tests that restart the broker or need a TLS listener.

The node runs beside the machine's own broker (its own node name, ports, data directory and config), so
restarting it disturbs nothing else. It needs root (the Debian wrapper runs the node as the rabbitmq user,
whose directory holds the data) and takes a few seconds to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
BASE = Path("/var/lib/rabbitmq")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """None when a private node can be started here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "a private RabbitMQ node needs root"
    if not (os.path.exists(RABBITMQ_SERVER) and BASE.is_dir()):
        return "RabbitMQ is not installed (run `bash scripts/services.sh up`)"
    return None


class RabbitNode:
    """Start with ``start()``; STOMP on ``stomp_port`` (and ``tls_port`` when TLS files are given)."""

    def __init__(
        self,
        *,
        tls: dict[str, Path] | None = None,
        name: str | None = None,
        ports: tuple[int, int, int] | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        """``name`` (``short@host``) and ``ports`` (AMQP, STOMP, Erlang distribution) default to a random
        name and free ports; ``extra_config`` lines are appended to rabbitmq.conf (see rabbit_cluster.py)."""
        self.name = name or f"outboxtest{uuid.uuid4().hex[:8]}@localhost"
        self.dir = BASE / f"outbox-test-{self.name.split('@')[0]}"
        self.amqp_port, self.stomp_port, self.dist_port = ports or (free_port(), free_port(), free_port())
        self.tls_port = free_port() if tls else None
        self._tls = tls
        self._extra_config = list(extra_config)

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
        }

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            f"stomp.listeners.tcp.1 = 127.0.0.1:{self.stomp_port}",
            "loopback_users = none",
        ]
        if self._tls:
            for key, source in self._tls.items():  # cacertfile, certfile, keyfile
                target = self.dir / f"{key}.pem"
                shutil.copyfile(source, target)
                lines.append(f"ssl_options.{key} = {target}")
            lines += [
                f"stomp.listeners.ssl.1 = 127.0.0.1:{self.tls_port}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        lines += self._extra_config
        (self.dir / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.dir / "enabled_plugins").write_text("[rabbitmq_stomp].\n")
        shutil.chown(self.dir, "rabbitmq", "rabbitmq")
        for path in self.dir.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")

    def _ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RABBITMQCTL, "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        self.launch()
        self.wait()

    def launch(self) -> None:
        """Start the node without waiting for it (``wait()`` does): several nodes boot side by side."""
        self._write_config()
        self.pid_file.unlink(missing_ok=True)  # a stale one (after a SIGKILL) would fool `rabbitmqctl wait`
        subprocess.run([RABBITMQ_SERVER, "-detached"], env=self._env(), check=True, timeout=60)

    def ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> ...``."""
        return self._ctl(*args, timeout=timeout)

    @property
    def pid(self) -> int | None:
        """The node's OS pid (from its pid file), None when it has none."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the node's process, by pid (SIGKILL, SIGSTOP, SIGCONT)."""
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.name} has no pid file")
        os.kill(pid, signum)

    def wait(self) -> None:
        result = self._ctl("wait", "--timeout", "90", str(self.pid_file), timeout=100)
        if result.returncode != 0:
            raise RuntimeError(f"private RabbitMQ node did not start: {result.stdout}{result.stderr}")

    def stop_app(self) -> None:
        self._ctl("stop_app", timeout=60)

    def start_app(self) -> None:
        result = self._ctl("start_app", timeout=90)
        if result.returncode != 0:
            raise RuntimeError(f"start_app failed: {result.stdout}{result.stderr}")

    def restart(self) -> None:
        """A full restart of the node: every connection drops, durable queues and persistent messages stay."""
        self.stop()
        self.launch()
        self.wait()

    def queue_depth(self, queue: str) -> int:
        result = self._ctl("list_queues", "-q", "--no-table-headers", "name", "messages", timeout=60)
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return 0

    def stop(self) -> None:
        self._ctl("stop", str(self.pid_file), timeout=90)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
