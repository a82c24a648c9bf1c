"""URLs mounting the health view as a project would (used by tests/integration/test_health.py)."""

from __future__ import annotations

from django.urls import path

from django_outbox_pattern import views

urlpatterns = [
    path("health/", views.health),
    path("health/strict/", views.health, {"max_lag_s": 60}),
    path("health/detail/", views.health, {"detail": True}),
]
