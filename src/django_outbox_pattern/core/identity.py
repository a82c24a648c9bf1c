"""How a message is identified: the one home of the ``dop-msg-*`` header names.

The relay writes these headers on every outbox message (headers.py generates them); the inbox reads a
message's identity from the first of ``IDENTITY_HEADERS`` present: the 3.x header, this project's, then
the broker's own ``message-id``.
"""

from __future__ import annotations

ID_HEADER = "dop-msg-id"  # the stable message id consumers deduplicate by
DESTINATION_HEADER = "dop-msg-destination"
TYPE_HEADER = "dop-msg-type"
SENT_TIME_HEADER = "dop-msg-sent-time"
CORRELATION_HEADER = "dop-correlation-id"
LEGACY_ID_HEADER = "cap-msg-id"  # written by the 3.x releases
BROKER_ID_HEADER = "message-id"  # set by the broker on delivery
IDENTITY_HEADERS = (LEGACY_ID_HEADER, ID_HEADER, BROKER_ID_HEADER)
# Generated headers a row's custom headers can never override (the correlation id can be overridden).
PROTECTED_HEADERS = frozenset({ID_HEADER, DESTINATION_HEADER, TYPE_HEADER, SENT_TIME_HEADER})
