"""wiring.py: what the settings choose is resolved once per settings object, not on every write."""

from __future__ import annotations

import ast
import pathlib
from typing import Any

import pytest
from django.test import override_settings

from django_outbox_pattern import conf, wiring
from django_outbox_pattern.relaying import notify

SRC = pathlib.Path(wiring.__file__).parent


def test_the_wiring_is_kept_while_the_settings_do_not_change() -> None:
    first = wiring.wiring()
    assert wiring.wiring() is first
    assert first.settings is conf.get_settings()


def test_a_settings_change_rewires_the_insert_hook() -> None:
    # The default (None): the hook is wired; rows_inserted() notifies where NOTIFY works (notify.available)
    assert wiring.wiring().wake_relay is notify.rows_inserted
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_RELAY_NOTIFY": False}):
        assert wiring.wiring().wake_relay is None
    with override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_RELAY_NOTIFY": True}):
        assert wiring.wiring().wake_relay is notify.rows_inserted
    assert wiring.wiring().wake_relay is notify.rows_inserted


def test_an_insert_asks_the_resolved_hook_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    current = wiring.wiring()
    monkeypatch.setattr(current, "wake_relay", calls.append)  # what the cached property resolved
    reads: list[int] = []
    monkeypatch.setattr(conf.OutboxSettings, "from_mapping", lambda *a, **k: reads.append(1))
    wiring.rows_inserted("default")
    wiring.rows_inserted("other")
    assert calls == ["default", "other"]
    assert reads == []  # the settings were not read again


def test_models_do_not_import_the_relay_at_module_import() -> None:
    tree = ast.parse((SRC / "models.py").read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = {getattr(node, "module", None) or "" for node in top_level}
    names = {alias.name for node in top_level for alias in node.names}
    assert not any("relaying" in module for module in imported), imported
    assert "notify" not in names
