"""stomp.py logs every frame it sends at DEBUG; the CONNECT frame's passcode never reaches a handler."""

from __future__ import annotations

import logging

import pytest
from stomp.utils import Frame, clean_lines, convert_frame

from django_outbox_pattern import conf
from django_outbox_pattern.broker import receiver, transport


@pytest.mark.parametrize("passcode", ["s3cret-pass", "it's-a-s3cret", "back\\slash-s3cret", "sp ace s3cret"])
def test_the_passcode_in_stomp_frame_logs_is_masked(passcode: str, caplog: pytest.LogCaptureFixture) -> None:
    transport.StompTransport(
        conf.OutboxSettings(DEFAULT_STOMP_PASSCODE=passcode)
    )._build()  # installs the mask
    lines = convert_frame(Frame("CONNECT", {"login": "guest", "passcode": passcode, "host": "/"}))
    assert "s3cret" in clean_lines(lines).lower()  # stomp.py's own mask misses it
    with caplog.at_level(logging.DEBUG, logger="stomp.py"):
        logging.getLogger("stomp.py").debug("sending frame: %s", clean_lines(lines))
    (record,) = caplog.records
    assert "s3cret" not in record.getMessage().lower()
    assert "passcode:********" in record.getMessage()
    assert "login:guest" in record.getMessage()  # the rest of the frame is still there


def test_the_mask_is_installed_once() -> None:
    receiver.mask_stomp_logs()
    receiver.mask_stomp_logs()
    assert logging.getLogger("stomp.py").filters.count(receiver.MASK) == 1
