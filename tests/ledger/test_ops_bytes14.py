"""Backup, restore and verify hold a few large values at a time, not 5,000 rows of them
(operator review 14: 800 KB values, ``backup`` peaked at 1.29 GB, ``verify`` at 2.47 GB on
~5,400 records). Measured with tracemalloc (Python's allocations) on 60 values of 100 KB
(6 MB) and the parts lowered to 500 KB."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.ledger import ops, sql
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project

SITE = "field.site"
N, BIG = 60, 100_000


def _filled(url: str, project: Project) -> SqlLedger:
    led = SqlLedger(url, project)
    for i in range(N):
        led.publish(Trans((Action(SITE, f"k{i}", Cmd.NEW,
                                  {"name": "n", "notes": chr(65 + i) * BIG}),)), "u")
    led.publish(Trans((Action(SITE, "k0", Cmd.MOD, {"notes": "short"}),)), "u")
    return led


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_backup_restore_and_verify_hold_a_few_values_at_a_time(
        sql_url: str, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "PART_BYTES", 500_000, raising=False)
    total = N * BIG  # 6 MB of values
    led = _filled(sql_url, project)
    try:
        problems, peak = _peak(lambda: ops.verify(led))
        assert problems == []
        # it held every row read (5,000 a time) and every value replayed: 12.2 MB before;
        # now a few rows, the digests of the long texts, and orjson's work space for one
        assert peak < total * 2 // 3, peak
        info, peak = _peak(lambda: ops.backup(led, tmp_path / "b.ledger"))
        assert info.events == N + 1
        assert peak < total // 3, peak  # 6.2 MB before
        # a long text changed in the state is still told, by its length and a hash
        with led.engine.begin() as conn:
            conn.execute(text("UPDATE st_field_site SET notes = :v WHERE key = 'k5'"),
                         {"v": "X" * BIG})
        (line,) = led.verify()
        assert "k5" in line and "notes" in line and "100,000 characters" in line, line
        assert len(line) < 400  # not the 250 KB values
    finally:
        led.close()
    dest = f"sqlite:///{tmp_path / 'restored.db'}"
    again, peak = _peak(lambda: ops.restore(tmp_path / "b.ledger", dest, project))
    try:
        assert peak < total * 2 // 3, peak  # 13.6 MB before
        assert again.verify() == []
        assert again.state(SITE, "k7") == {**again.state(SITE, "k7"), "notes": chr(65 + 7) * BIG}
        assert len(again.events(0)) == N + 1
    finally:
        again.close()
