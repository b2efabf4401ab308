"""The reliability tiers: the fast tier runs in every test run; tests marked ``soak`` (and
``slow``) only with ``OUTPOST_SOAK=1`` (``make soak``), where they are selected, not skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SOAK = os.environ.get("OUTPOST_SOAK", "") not in ("", "0")
_MINE = tuple(str(Path(__file__).resolve().parent.parent / d) for d in ("chaos", "reliability"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long tier of tests/chaos and tests/reliability")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SOAK:
        return
    keep, drop = [], []
    for it in items:
        mine = str(it.path).startswith(_MINE)
        (drop if mine and it.get_closest_marker("soak") else keep).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
