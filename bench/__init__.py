"""The benchmark suite: ``python -m bench`` (or ``bash scripts/bench.sh``) measures the relay, the consumer,
the write path and the relay's memory, each next to its physical limit, and writes the figures as JSON.

The orchestrator (``bench.cli``) never configures Django: every database scenario runs in worker
processes (``bench.worker``) with ``bench.settings`` pointed at the database under test.
"""

from __future__ import annotations
