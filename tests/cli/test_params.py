"""Option parsing: durations, --since, row ids; and -v/-vv logging on stderr."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import typer

from django_outbox_pattern.choices import StatusChoice
from outboxctl import params
from tests.cli.conftest import make_published


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("30d", 2592000),
        ("2w", 1209600),
        ("1w2d", 777600),
        ("1.5h", 5400),
        (" 3D ", 259200),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert params.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "30x", "d", "-1d", "1d 2", "one day"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration"):
        params.parse_duration(text)


def test_since() -> None:
    ago = datetime.now(timezone.utc) - params.parse_since("2h")
    assert abs(ago - timedelta(hours=2)) < timedelta(seconds=5)
    assert params.parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert params.parse_since("2024-05-01T10:30:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(typer.BadParameter, match="neither a duration"):
        params.parse_since("yesterday")


def test_uuid() -> None:
    assert str(params.parse_uuid(" 00000000-0000-0000-0000-000000000001 ")).endswith("1")
    with pytest.raises(typer.BadParameter):
        params.parse_uuid("123")


@pytest.mark.django_db
def test_verbosity_controls_logs_on_stderr(cli) -> None:
    make_published(2, status=StatusChoice.FAILED)
    quiet = cli("replay", "--all", "--yes", "--json")
    assert quiet.stderr == ""
    make_published(2, status=StatusChoice.FAILED)
    verbose = cli("-v", "replay", "--all", "--yes", "--json")
    assert "2 rows replayed" in verbose.stderr
    assert "2 rows replayed" not in verbose.stdout  # stdout stays parseable JSON
    make_published(1, status=StatusChoice.FAILED)
    debug = cli("-vv", "replay", "--all", "--yes", "--json")
    assert "DEBUG" in debug.stderr or "1 rows replayed" in debug.stderr
