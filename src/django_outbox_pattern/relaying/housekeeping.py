"""The relay's housekeeping, run at most once a minute and never on the per-message path.

- Expiry sweep: SCHEDULE rows past ``expires_at`` that no relay holds become FAILED with last_error
  "expired: ..." (operators see them and can replay them), even while the broker is down. The relay also
  dead-letters expired rows it claims, so none is ever sent late or skipped forever.
- Retention (spec: DAYS_TO_KEEP_DATA, REMOVE_DATA_CACHE_TTL, OUTBOX_PATTERN_PUBLISHER_CACHE_KEY): SUCCEEDED
  rows added more than DAYS_TO_KEEP_DATA days ago are deleted in batches, at most once per TTL across all
  relays sharing the cache (the first to ``cache.add`` the key does it). SCHEDULE and FAILED rows are kept.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from django.core.cache import BaseCache, caches

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.relaying import outbox

logger = logging.getLogger(__name__)

INTERVAL_S = 60.0
EXPIRED_REASON = "expired: expires_at passed before the broker confirmed the message; replay it to send it"


class Housekeeper:
    def __init__(
        self,
        store: outbox.Outbox,
        settings: conf.OutboxSettings,
        *,
        clock: Callable[[], datetime.datetime],
        cache: BaseCache | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._cache = cache

    def run(self) -> int:
        """Sweep expired rows and apply retention; database errors are logged, never raised.

        Returns how many expired rows were dead-lettered.
        """
        now = self._clock()
        try:
            expired = self.store.dead_letter_expired(now=now, reason=EXPIRED_REASON)
            removed = self.remove_old_messages(now)
        except exceptions.StorageError as exc:
            logger.warning("Housekeeping failed: %s", exc, extra={"action": "relay_housekeeping_failed"})
            return 0
        if expired:
            logger.warning(
                "%d expired rows dead-lettered",
                expired,
                extra={"action": "relay_rows_expired", "count": expired},
            )
        if removed:
            logger.info(
                "%d old published rows deleted",
                removed,
                extra={"action": "relay_rows_purged", "count": removed},
            )
        return expired

    def remove_old_messages(self, now: datetime.datetime) -> int:
        """Retention: only SUCCEEDED rows, only when the cache key is absent (then it is set for the TTL)."""
        s = self.settings
        cache = self._cache or caches["default"]
        if not cache.add(s.OUTBOX_PATTERN_PUBLISHER_CACHE_KEY, True, s.REMOVE_DATA_CACHE_TTL):
            return 0
        try:
            return self.store.purge_published(added_before=now - datetime.timedelta(days=s.DAYS_TO_KEEP_DATA))
        except exceptions.StorageError:
            cache.delete(s.OUTBOX_PATTERN_PUBLISHER_CACHE_KEY)  # try again at the next housekeeping
            raise
