"""Shared fixtures: a fresh plugin host per test where needed, repo paths."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _fresh_plugin_host():
    """Each test sees the plugins as loaded from entry points, never another test's additions."""
    from ssgan_core.plugins import reset_host

    reset_host()
    yield
    reset_host()
