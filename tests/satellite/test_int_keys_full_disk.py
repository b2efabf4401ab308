"""Merge review 9: on a replica made before the greatest int key was kept, the first Ctrl+N
scans and then stores the value; on a full disk that store failed the Ctrl+N (a read
before), though the key was known."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import StorageError
from core.satellite.replica import INT_KEYS
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_int_keys import ITEM, hub, int_project, sync

__all__ = ["hub", "int_project"]  # fixtures


async def test_the_first_new_key_works_on_a_full_disk(
        tmp_path: Path, int_project: Project, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "a"
    sat = Satellite(d, int_project)
    await sync(sat, hub)
    with sat.queue._conn(None) as conn:  # as a replica made before session 9
        conn.exec_driver_sql("DELETE FROM sat_meta WHERE name = ?", (INT_KEYS,))
    sat.close()
    sat = Satellite(d, int_project)
    try:
        def full() -> None:
            raise StorageError("database or disk is full")

        monkeypatch.setattr(sat.replica.ledger, "begin", full)
        assert sat.new_key(ITEM) == "4"  # above 3, deleted on the hub
        monkeypatch.undo()
        assert sat.new_key(ITEM) == "4"
    finally:
        sat.close()
