"""3.x's ``django_outbox_pattern.settings``: every setting as a module attribute, for code and tests
written for django-outbox-pattern 3.x.

There is no second set of defaults here: reading ``settings.DEFAULT_X`` returns
``conf.get_settings().DEFAULT_X`` (read lazily, so ``override_settings`` shows), normalised as the engine
sees it (tuples, a read-only queue-headers mapping). Assigning one (``settings.DEFAULT_X = v``,
``mock.patch("django_outbox_pattern.settings.DEFAULT_X", v)``, ``monkeypatch.setattr``) puts ``v`` in
conf's override layer, which every later ``conf.get_settings()`` applies on top of ``DJANGO_OUTBOX_PATTERN``,
so the patch reaches the engine where 3.x's patch reached 3.x; deleting the attribute (what ``mock.patch``
does on exit) removes it. Components already built keep the settings they were built with, as 3.x's
objects kept the values they had copied.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from django_outbox_pattern import conf


class _SettingsModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:  # only for names not set on the module itself
        if name in conf.FIELD_NAMES:
            return getattr(conf.get_settings(), name)
        if name == conf.SETTINGS_NAME:
            return conf._django_mapping()
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in conf.FIELD_NAMES:
            conf.set_override(name, value)
        else:
            super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in conf.FIELD_NAMES:
            conf.clear_override(name)
        else:
            super().__delattr__(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *conf.FIELD_NAMES, conf.SETTINGS_NAME})


sys.modules[__name__].__class__ = _SettingsModule
