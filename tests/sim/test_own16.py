"""``evt.sat`` ``own`` (ours, session 16): the same simulated session run twice, its
satellites asking the hub not to echo their own transactions (the hub leaves them out of its
replies, the satellite rebuilds them from what it sent) and not asking (full replies, as
before): every satellite's data file holds the same rows, table for table — replica events,
audits, states, uids, the queue's receipts and acks — after drops, duplicates, crashes,
partitions, pipelined requests, catch-ups cut by ``lim`` and ``max_batch``, replies read off
the loop and failed reads. The uids (random UUIDs) are made by a counter in both runs."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import core.satellite.satellite as satmod
from core.schema import Project
from tests.sim.world import SMALL, World

SEEDS = 40
CHUNK = 10


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of every SQLite file under ``path``, row for row in rowid order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for f in sorted(path.rglob("*")):
        if not f.is_file() or f.suffix in (".json", ".lock", ".log", ".toml") or \
                f.name.endswith(("-wal", "-shm", "-journal")):
            continue
        with f.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                continue
        con = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            for t in tables:
                rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
                out[f"{f.relative_to(path)}:{t}"] = rows
        finally:
            con.close()
    return out


def _run(seed: int, root: Path, project: Project, template: Path, own: bool,
         monkeypatch: pytest.MonkeyPatch) -> tuple[World, dict[str, list[tuple[Any, ...]]]]:
    n = itertools.count()
    monkeypatch.setattr(satmod, "new_uid", lambda: f"00000000-0000-7000-8000-{next(n):012d}")
    w = World(seed, root, project, SMALL, template=template, own=own)
    try:
        w.run()
    finally:
        w.close()
    return w, _rows(root)


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_a_session_with_own_stores_the_rows_a_full_one_stores(
        first: int, tmp_path: Path, project: Project, sat_template: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    left_out = 0
    for seed in range(first, first + CHUNK):
        w_own, own = _run(seed, tmp_path / f"own{seed}", project, sat_template, True,
                          monkeypatch)
        w_full, full = _run(seed, tmp_path / f"full{seed}", project, sat_template, False,
                            monkeypatch)
        assert w_full.stats.own_left_out == 0
        assert w_own.stats.frames == w_full.stats.frames  # the same session, frame for frame
        assert own.keys() == full.keys() and own, seed
        for name, rows in full.items():
            assert own[name] == rows, f"seed {seed}: {name} differs"
        left_out += w_own.stats.own_left_out
    assert left_out > 0  # the runs really left own transactions out
