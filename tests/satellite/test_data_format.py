"""A data directory records its data format (session 13, ``PRAGMA user_version`` of the
replica file: core.satellite.dataformat), and this Outpost refuses one a newer Outpost wrote,
before reading or changing anything: the satellite (writer and reader), the app's opening, every
CLI command. Real data directories and SQLite files; the CLI in-process (desktop.headless.main).
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from filelock import FileLock

from core.errors import ConfigError
from core.model import Action, Cmd
from core.satellite import dataformat
from core.satellite.config import DataDir
from core.satellite.replica import Replica
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.headless import main

SITE = "field.site"


def _version(db: Path) -> int:
    with closing(sqlite3.connect(db)) as c:
        return int(c.execute("PRAGMA user_version").fetchone()[0])


def _set_version(db: Path, v: int) -> None:
    with closing(sqlite3.connect(db)) as c:
        c.execute(f"PRAGMA user_version = {v}")
        c.commit()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _files(d: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the directory but its lock file: content and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.iterdir())
            if p.name != "outpost.lock"}


def _made(d: Path, project: Project) -> str:
    sat = Satellite(d, project)
    try:
        return sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"})])
    finally:
        sat.close()


def test_a_directory_records_the_format_this_outpost_writes(tmp_path: Path,
                                                           project: Project) -> None:
    d = tmp_path / "a"
    _made(d, project)
    db = DataDir(d).db_file
    assert dataformat.FORMAT >= 1 and _version(db) == dataformat.FORMAT
    assert dataformat.stored(db) == dataformat.FORMAT
    # a directory an Outpost before session 13 last wrote (nothing recorded): a reader leaves
    # it as it is, the first writable open records the format
    _set_version(db, 0)
    ro = Satellite(d, read_only=True)
    ro.close()
    assert _version(db) == 0
    Satellite(d).close()
    assert _version(db) == dataformat.FORMAT


def test_a_directory_of_a_newer_format_is_refused_and_left_as_it_was(
        tmp_path: Path, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    d, fresh = tmp_path / "a", tmp_path / "fresh"
    uid = _made(d, project)
    _made(fresh, project)
    db = DataDir(d).db_file
    newer = dataformat.FORMAT + 1
    _set_version(db, newer)
    before = _files(d)

    def refused(exc: BaseException) -> None:
        text = str(exc)
        assert f"data format {newer}" in text and f"up to {dataformat.FORMAT}" in text
        assert "newer Outpost" in text and "outpost connect URL --data NEW_DIR" in text
        assert "nothing was read or changed" in text

    for opening in (lambda: Satellite(d), lambda: Satellite(d, project),
                    lambda: Satellite(d, read_only=True), lambda: DataDir(d).lock(),
                    lambda: DataDir(d).check_readable(), lambda: Replica(db, project),
                    lambda: Replica(db, project, read_only=True)):
        with pytest.raises(ConfigError) as err:
            opening()
        refused(err.value)
    # the lock was given back: a process of the newer Outpost could take the directory
    lk = FileLock(DataDir(d).lock_file, timeout=0)
    lk.acquire()
    lk.release()

    # the app's opening (the profile's hub given: not stored either)
    from desktop.app import WindowSpec, open_satellite
    with pytest.raises(ConfigError) as err:
        asyncio.run(open_satellite(WindowSpec(d, hub="ws://127.0.0.1:9/")))
    refused(err.value)

    # every CLI command, writers and readers (and carry, from it and into it)
    commands = [
        ["status"], ["show", SITE], ["show", SITE, "s1"], ["history", SITE, "s1"],
        ["conflicts"], ["export", SITE], ["pub", SITE, "s2", "new", "name=X"],
        ["resolve", uid, "--keep", "mine"], ["discard", uid], ["sync", "--once", "--timeout", "1"],
        ["connect", "ws://127.0.0.1:9/"],
        ["carry", str(d), "--data", str(fresh)], ["carry", str(fresh), "--data", str(d)],
    ]
    for argv in commands:
        if argv[0] != "carry":
            argv = [argv[0], "--data", str(d), *argv[1:]]
        capsys.readouterr()
        assert main(argv) == 1, argv
        err_text = capsys.readouterr().err
        assert f"data format {newer}" in err_text, (argv, err_text)
    assert _files(d) == before
    assert _version(db) == newer
