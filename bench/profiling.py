"""``--profile DIR``: where the time goes in the relay and consumer runs.

With ``py-spy`` on PATH (or ``BENCH_PYSPY=/path/to/py-spy``; ``pip install py-spy``), the orchestrator
samples the whole worker process (every thread: the relay loop, stomp.py's receiver, the consumer's
worker) for the duration of the measured call and writes ``<label>.raw`` (collapsed stacks) and
``<label>.txt`` (inclusive and self time per function). Without it, the worker runs the call under
cProfile, which sees the calling thread only.
"""

from __future__ import annotations

import collections
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = 40


def pyspy_path() -> str | None:
    return os.environ.get("BENCH_PYSPY") or shutil.which("py-spy")


class PySpy:
    """``py-spy record`` attached to one process until ``stop()``."""

    def __init__(self, pid: int, directory: str, label: str) -> None:
        self.out = Path(directory) / f"{label}.raw"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                str(pyspy_path()),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--threads",
                "--format",
                "raw",
                "--output",
                str(self.out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self.out.exists():
            self.out.with_suffix(".txt").write_text(summarise_collapsed(self.out))


def _frame(text: str) -> str:
    """``func (path/file.py:12)`` -> ``func (file.py)``."""
    name, _, where = text.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summarise_collapsed(path: Path, top: int = TOP) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        for name in {_frame(f) for f in frames[1:]}:
            inclusive[name] += n
        own[_frame(frames[-1])] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples (py-spy, 200 Hz, all threads; waits included)", "", "threads:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(10)]
    lines += ["", "inclusive:"] + [f"  {100 * n / total:5.1f}%  {k}" for k, n in inclusive.most_common(top)]
    lines += ["", "self:"] + [f"  {100 * n / total:5.1f}%  {k}" for k, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def profiled(function: Callable[..., Any], kwargs: dict[str, Any], *, directory: str, label: str) -> Any:
    """In a worker: call ``function(**kwargs)`` under cProfile; write ``<label>.prof`` and ``<label>.txt``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile()
    try:
        return profile.runcall(function, **kwargs)
    finally:
        profile.dump_stats(out / f"{label}.prof")
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(TOP)
        stats.sort_stats("tottime").print_stats(TOP)
        (out / f"{label}.txt").write_text(text.getvalue())
