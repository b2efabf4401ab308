"""Review 16 "time and place": keys made in one go sort in the order they were made (UUIDv7
monotonic within a process, also when the clock steps back), and ``local_rev`` is the last
own change, not the greatest creation time ever (a clock a year ahead, corrected since)."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

from core import ids
from core.ids import new_key, new_uid, uuid7
from core.model import Action, Cmd
from core.revision import now_rev
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.headless import CsvImport

SITE = "field.site"


def _clock(monkeypatch: Any, ms: list[int]) -> None:
    """A clock of our own for core.ids, from a fresh start (the process's last key, made
    by the real clock, is put back after the test)."""
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time_ns=lambda: ms[0] * 1_000_000))
    monkeypatch.setattr(ids, "_last", (0, 0))


def test_keys_of_one_millisecond_increase_and_a_clock_set_back_does_not_reorder(
        monkeypatch: Any) -> None:
    ms = [1_764_156_414_000]
    _clock(monkeypatch, ms)
    made = [new_key() for _ in range(2_000)]  # all in the same millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert {uuid.UUID(k).int >> 80 for k in made} == {ms[0]}
    assert all(uuid.UUID(k).version == 7 and uuid.UUID(k).variant == uuid.RFC_4122
               for k in made)
    ms[0] -= 2 * 3600 * 1000  # the clock set back 2 hours
    back = [new_uid() for _ in range(100)]
    assert back == sorted(back) and back[0] > made[-1]
    assert uuid.UUID(back[-1]).int >> 80 == 1_764_156_414_000  # stays, never goes back
    ms[0] = 1_764_156_414_005  # caught up: the clock's millisecond again
    later = new_key()
    assert later > back[-1] and uuid.UUID(later).int >> 80 == ms[0]
    # a key for a given time is that time, as before (demo data, the tests' own)
    assert uuid7(1_000).int >> 80 == 1_000


def test_rows_imported_in_one_go_keep_the_files_order_by_key(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "sat", project)
    try:
        src = tmp_path / "rows.csv"
        src.write_text("name\n" + "".join(f"Row {i}\n" for i in range(1, 201)),
                       encoding="utf-8")
        for _ in CsvImport(sat, SITE, str(src)).steps():
            pass
        names = [(sat.record(SITE, k).fields or {})["name"] for k in sat.keys(SITE)]
        assert names == [f"Row {i}" for i in range(1, 201)]
    finally:
        sat.close()


def test_local_rev_is_the_last_own_change_after_the_clock_is_corrected(
        tmp_path: Path, project: Project) -> None:
    clock = [now_rev() + 365 * 86_400_000]  # a year ahead
    sat = Satellite(tmp_path / "sat", project, clock=lambda: clock[0])
    try:
        sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "ahead"})])
        assert sat.status().local_rev == clock[0]
        clock[0] = now_rev()  # corrected
        sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": "now"})])
        assert sat.status().local_rev == clock[0]
    finally:
        sat.close()
