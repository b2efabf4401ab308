"""A backup records the ledger format of what it holds (session 14: ``backup_meta
ledger_format``), and this Outpost refuses to restore a backup of a newer format before it
changes anything: no target database, no users file, no directory made. ``verify`` names the
ledger's format. Real SQLite files and a real PostgreSQL database; the hub's CLI in-process
and as a process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.ledger.tables import LEDGER_FORMAT
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.cli import main
from tests.conftest import DEMO_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
SITE = "field.site"


def _backup(tmp_path: Path, project: Project) -> Path:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}", project)
    try:
        led.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"}),)), "ann")
        info = ops.backup(led, tmp_path / "b.ledger")
    finally:
        led.close()
    assert info.ledger_format == LEDGER_FORMAT
    return tmp_path / "b.ledger"


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as c:
        return dict(c.execute("SELECT name, value FROM backup_meta").fetchall())


def _set(path: Path, value: str | None) -> None:
    c = sqlite3.connect(path)
    try:
        with c:
            c.execute("DELETE FROM backup_meta WHERE name = 'ledger_format'")
            if value is not None:
                c.execute("INSERT INTO backup_meta VALUES ('ledger_format', ?)", (value,))
    finally:
        c.close()


def test_a_backup_records_the_ledger_format(tmp_path: Path, project: Project,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    b = _backup(tmp_path, project)
    assert _meta(b)["ledger_format"] == str(LEDGER_FORMAT)
    db = str(tmp_path / "hub.sqlite")
    assert main(["backup", str(tmp_path / "c.ledger"), "--db", db, "--schema",
                 str(DEMO_SCHEMA)]) == 0
    assert f"ledger format {LEDGER_FORMAT})" in capsys.readouterr().out
    assert main(["verify", "--db", db, "--schema", str(DEMO_SCHEMA)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "ok"  # stdout as before; the format on stderr
    assert f"ledger format {LEDGER_FORMAT}; this Outpost reads formats up to " \
        f"{LEDGER_FORMAT}" in out.err
    # a backup made before session 14 records none: read as format 1, restored as before
    _set(b, None)
    restored = ops.restore(b, f"sqlite:///{tmp_path / 'r.sqlite'}", project)
    try:
        assert restored.rev() > 0 and restored.ledger_format == LEDGER_FORMAT
    finally:
        restored.close()


@pytest.mark.parametrize("db_url", ["sqlite", "pg"], indirect=True)
def test_a_backup_of_a_newer_format_is_refused_before_anything_changes(
        db_url: str, project: Project, tmp_path: Path) -> None:
    b = _backup(tmp_path, project)
    newer = LEDGER_FORMAT + 1
    _set(b, str(newer))
    raw = b.read_bytes()

    def refused(text_: str) -> None:
        assert f"backup {b} was written by a newer Outpost" in text_, text_
        assert f"ledger format {newer}; this Outpost reads formats up to {LEDGER_FORMAT}" \
            in text_
        assert "nothing was restored or changed" in text_
        assert "Restore it with that newer Outpost" in text_

    with pytest.raises(ConfigError) as err:
        ops.restore(b, db_url, project)
    refused(str(err.value))
    with pytest.raises(ConfigError):
        ops.backup_notes(b)
    # the CLI, as an operator runs it: into a new file in a directory not made yet
    target = tmp_path / "new" / "hub.sqlite"
    dest = db_url if db_url.startswith("postgresql") else str(target)
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "restore", str(b), "--db", dest,
                        "--schema", str(DEMO_SCHEMA), "--users", str(tmp_path / "u.db")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    refused(r.stderr)
    assert not (tmp_path / "new").exists() and not (tmp_path / "u.db").exists()
    if db_url.startswith("postgresql"):  # the target database is left empty: no tables
        from sqlalchemy import create_engine, inspect

        eng = create_engine(db_url)
        try:
            with eng.connect() as c:
                assert inspect(c).get_table_names() == []
        finally:
            eng.dispose()
    else:
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    assert b.read_bytes() == raw  # the backup is only read
    # a damaged format entry is named as damage, also before anything
    _set(b, "x1")
    with pytest.raises(Exception) as err2:
        ops.restore(b, db_url, project)
    assert "ledger_format 'x1') is not a number" in str(err2.value)
