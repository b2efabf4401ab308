"""Fixtures shared by the satellite tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.ledger.memory import MemLedger
from core.schema import Project
from hubserver.server import Hub


@pytest.fixture
async def hub(project: Project) -> AsyncIterator[Hub]:
    """A real hub on 127.0.0.1 (a free port) over an in-memory ledger of the demo project."""
    async with Hub(MemLedger(project), port=0) as h:
        yield h
