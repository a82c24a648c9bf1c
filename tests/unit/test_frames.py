"""frames.FrameEncoder writes the bytes stomp.py itself would write for the same SEND, ACK and NACK."""

from __future__ import annotations

import types
from typing import Any

import pytest
from stomp import protocol, utils

from django_outbox_pattern import conf
from django_outbox_pattern.broker.frames import FrameEncoder

PROTOCOLS = {"1.0": protocol.Protocol10, "1.1": protocol.Protocol11, "1.2": protocol.Protocol12}


class _Capture:
    """Stands in for stomp.py's transport: keeps the bytes ``transmit()`` would write."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def transmit(self, frame: Any) -> None:
        self.frames.append(utils.pack(utils.convert_frame(frame)))


def _stomp_py(version: str) -> tuple[Any, _Capture]:
    capture = _Capture()
    proto = PROTOCOLS[version].__new__(PROTOCOLS[version])
    proto.transport = capture
    proto.auto_content_length = True
    return proto, capture


HEADERS = [
    {"dop-msg-id": "0f3c", "persistent": "true", "content-type": "application/json"},
    {"x-note": "a:b\\c\nd\re", "tricky:name": "v"},
    {"unicode": "gr\u00fc\u00df", "empty": ""},
    # the block escaper's stand-ins for ':' and the line end, inside a value: each header escaped alone
    {"sent": "2026-12-06T05:19:20Z", "ctl": "a\x01b:c", "other": "\x01\x01"},
]
BODIES = ['{"id": 1}', "", 'caf\u00e9 \u2603 {"n": [1, 2]}', "with\0nul"]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("body", BODIES)
def test_send_is_byte_for_byte_what_stomp_py_writes(version: str, headers: dict[str, str], body: str) -> None:
    proto, capture = _stomp_py(version)
    escaped_names = {k: v for k, v in headers.items() if ":" not in k}  # stomp.py never escapes names
    proto.send("/queue/q", body, headers=dict(escaped_names), receipt="r-1")
    expected = capture.frames[0]
    if not body:  # stomp.py leaves content-length out of an empty frame; we always send it
        head, _, rest = expected.partition(b"\n\n")
        lines = head.split(b"\n")
        expected = b"\n".join([lines[0], *sorted([*lines[1:], b"content-length:0"])]) + b"\n\n" + rest
    assert FrameEncoder(version).send("/queue/q", body, escaped_names, "r-1") == expected


def test_header_names_are_escaped_too_in_stomp_1_2() -> None:
    frame = FrameEncoder("1.2").send("/queue/q", "{}", {"a:b": "c\rd"}, None)
    assert b"\na\\cb:c\\rd\n" in frame


def test_stomp_1_0_escapes_nothing_and_1_1_leaves_carriage_returns() -> None:
    assert b"\nx:a:b\n" in FrameEncoder("1.0").send("/queue/q", "{}", {"x": "a:b"}, None)
    assert b"\nx:a\\cb\r\n" in FrameEncoder("1.1").send("/queue/q", "{}", {"x": "a:b\r"}, None)


def test_content_length_counts_utf8_bytes_and_fixed_headers_win() -> None:
    frame = FrameEncoder("1.2").send(
        "/queue/q", "\u00e9\u00e9", {"destination": "/queue/other", "content-length": "1"}, "r"
    )
    head, _, rest = frame.partition(b"\n\n")
    assert head.split(b"\n") == [b"SEND", b"content-length:4", b"destination:/queue/q", b"receipt:r"]
    assert rest == "\u00e9\u00e9".encode() + b"\0"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_ack_and_nack_match_stomp_py(version: str) -> None:
    proto, capture = _stomp_py(version)
    if version == "1.2":
        proto.ack("T_1@@session@@1")
        proto.nack("T_1@@session@@1", requeue="false")
    else:
        proto.ack("T_1@@session@@1", "sub-0")
        proto.nack("T_1@@session@@1", "sub-0", requeue="false")
    encoder = FrameEncoder(version)
    assert encoder.ack("T_1@@session@@1", "sub-0") == capture.frames[0]
    assert encoder.nack("T_1@@session@@1", "sub-0", requeue=False) == capture.frames[1]


def test_unknown_version_and_nack_on_1_0_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported STOMP version"):
        FrameEncoder("2.0")
    with pytest.raises(ValueError, match="no NACK"):
        FrameEncoder("1.0").nack("m", "s", requeue=False)


def test_only_stomp_pys_own_connection_classes_get_the_direct_writer() -> None:
    import stomp

    from django_outbox_pattern.broker import transport

    stock = stomp.StompConnection12(host_and_ports=[("127.0.0.1", 1)])
    encoder = transport._frame_encoder(stock)
    assert encoder is not None and encoder.version == "1.2"
    assert (
        transport._frame_encoder(stomp.StompConnection11(host_and_ports=[("127.0.0.1", 1)])).version == "1.1"
    )

    class Custom(stomp.StompConnection12):  # may change how frames are built or written
        pass

    assert transport._frame_encoder(Custom(host_and_ports=[("127.0.0.1", 1)])) is None


class _Writer:
    """Stands in for a stomp.py transport: records what was written and where."""

    def __init__(self, blocking: bool | None, queue: bool) -> None:
        self.blocking = blocking
        self.sent: list[bytes] = []
        self.queued: list[bytes] = []
        if queue:
            self.send_queue = types.SimpleNamespace(put=self.queued.append)

    def send(self, data: bytes) -> None:
        self.sent.append(data)


@pytest.mark.parametrize(
    ("blocking", "queue", "where"),
    [
        (None, False, "sent"),  # stomp.py 8: no send_queue, `blocking` stays None
        (True, True, "sent"),  # stomp.py 9, plain TCP
        (False, True, "queued"),  # stomp.py 9 over TLS: its receiver thread writes
    ],
)
def test_encoded_frames_are_written_the_way_each_stomp_py_version_writes(
    blocking: bool | None, queue: bool, where: str
) -> None:
    from django_outbox_pattern.broker import transport

    writer = _Writer(blocking, queue)
    stomp_transport = transport.StompTransport(conf.OutboxSettings())
    stomp_transport._write(types.SimpleNamespace(transport=writer), b"frame", "send")
    assert getattr(writer, where) == [b"frame"]
