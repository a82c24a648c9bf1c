"""pytest plugin for projects that use django-outbox-pattern (registered through the pytest11 entry point).

Fixtures are added here; the plugin imports nothing from Django at load time, so it is harmless in
projects that do not use Django.
"""

from __future__ import annotations
