"""Chaos tests share the tier selection of tests/reliability (``soak`` only with OUTPOST_SOAK)."""

from tests.reliability.conftest import pytest_collection_modifyitems, pytest_configure

__all__ = ["pytest_collection_modifyitems", "pytest_configure"]
