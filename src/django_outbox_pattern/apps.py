"""Django app config: registers checks and the settings cache receiver. No I/O."""

from __future__ import annotations

from django.apps import AppConfig


class OutboxConfig(AppConfig):  # 3.x's name; the only AppConfig here, so Django picks it by default
    name = "django_outbox_pattern"
    verbose_name = "Outbox pattern"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from django_outbox_pattern import checks, conf

        checks.register()
        setting_changed.connect(conf.clear_cache, dispatch_uid="django_outbox_pattern_settings")


def __getattr__(name: str) -> type[OutboxConfig]:
    # The former name, kept out of the module's namespace: Django refuses a module with two AppConfigs.
    if name == "DjangoOutboxPatternConfig":
        return OutboxConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
