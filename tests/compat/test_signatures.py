"""Every public callable of 3.2.1 accepts here every call it accepted there (compared by inspect.signature).

Rule: each of 3.2.1's parameters exists here at the same position with the same name and kind; where
3.2.1 has a default, ours has the same one; any parameter we add has a default. ``self`` is skipped.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from django_outbox_pattern import conf
from tests.compat.conftest import Upstream

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def reference(side_python: Any) -> dict[str, Any]:
    from tests.compat.conftest import SIDE_PYTHON

    return Upstream(SIDE_PYTHON).run("signatures", timeout=60)


def ours(dotted: str) -> Any:
    parts = dotted.split(".")
    obj: Any = importlib.import_module(f"django_outbox_pattern.{parts[0]}")
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


def incompatibilities(theirs: list[dict[str, Any]], obj: Any) -> list[str]:
    mine = [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]
    theirs = [p for p in theirs if p["name"] != "self"]
    problems = []
    for index, ref in enumerate(theirs):
        if ref["kind"] == "VAR_KEYWORD":
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in mine):
                problems.append("no **kwargs")
            continue
        if index >= len(mine) or mine[index].name != ref["name"]:
            problems.append(f"parameter {index} is not {ref['name']!r}")
            continue
        p = mine[index]
        if p.kind.name != ref["kind"]:
            problems.append(f"{ref['name']}: kind {p.kind.name}, 3.2.1 {ref['kind']}")
        if ref["default"] is not None and (
            p.default is inspect.Parameter.empty or repr(p.default) != ref["default"]
        ):
            problems.append(f"{ref['name']}: default {p.default!r}, 3.2.1 {ref['default']}")
    for p in mine[len(theirs) :]:
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(f"extra parameter {p.name!r} without a default")
    return problems


def test_public_callables_accept_the_calls_3_2_1_accepted(reference: dict[str, Any]) -> None:
    problems = {}
    for dotted, params in {**reference["callables"], **reference["methods"]}.items():
        try:
            obj = ours(dotted)
        except AttributeError:
            problems[dotted] = ["missing"]
            continue
        found = incompatibilities(params, obj)
        if found:
            problems[dotted] = found
    # Methods 3.2.1 has that are internal steps of its engine (no public counterpart here).
    internal = {"consumers.Consumer.handle_incoming_message", "consumers.Consumer.message_handler"}
    assert {k: v for k, v in problems.items() if k not in internal} == {}


def test_every_3_2_1_setting_is_a_setting_here(reference: dict[str, Any]) -> None:
    from django_outbox_pattern import settings as dop_settings

    missing = [name for name in reference["settings"] if not hasattr(dop_settings, name)]
    assert missing == []
    assert set(reference["settings"]) - {conf.SETTINGS_NAME} <= set(conf.FIELD_NAMES)
