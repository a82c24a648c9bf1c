"""The one cap on destination label values: beyond ``MAX_DESTINATION_LABELS`` they count as ``(other)``.

Prometheus keeps one time series per label value, so the relay's counters (metrics.py) and the backlog
gauges (backlog.py) bound the destinations they name the same way.
"""

from __future__ import annotations

MAX_DESTINATION_LABELS = 200
OTHER_DESTINATION = "(other)"
