"""A ledger records its data format (session 13: ``evt_meta.fmt``), and this Outpost refuses one
a newer Outpost wrote before creating or changing anything in it: the ledger's opening (a
writer's and a reader's), and ``outpost-hub serve``, ``verify`` and ``backup``. Real SQLite
files and a real PostgreSQL database; the hub's CLI in-process, ``serve`` in a process of its
own (bounded by a timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.errors import ConfigError
from core.ledger.sql import SqlLedger
from core.ledger.tables import LEDGER_FORMAT
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.cli import main
from tests.conftest import DEMO_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
SITE = "field.site"


def _fmt(url: str) -> Any:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT fmt FROM evt_meta")).scalar()
    finally:
        eng.dispose()


def _set_fmt(url: str, v: int | None) -> None:
    eng = create_engine(url)
    try:
        with eng.begin() as c:
            c.execute(text("UPDATE evt_meta SET fmt = :v"), {"v": v})
    finally:
        eng.dispose()


def _state(url: str) -> tuple[Any, ...]:
    """What a change of the ledger would change: its tables, their columns and evt_meta."""
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            from sqlalchemy import inspect
            ins = inspect(c)
            tables = sorted(ins.get_table_names())
            cols = {t: sorted(x["name"] for x in ins.get_columns(t)) for t in tables}
            meta = tuple(c.execute(text("SELECT * FROM evt_meta")).one())
            n = c.execute(text("SELECT count(*) FROM evt_event")).scalar()
    finally:
        eng.dispose()
    return tuple(tables), tuple(sorted(cols.items())), meta, n


@pytest.mark.parametrize("db_url", ["sqlite", "pg"], indirect=True)
def test_a_ledger_of_a_newer_format_is_refused_and_left_as_it_was(
        db_url: str, project: Project, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    led = SqlLedger(db_url, project)
    led.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"}),)), "ann")
    led.close()
    assert _fmt(db_url) == LEDGER_FORMAT >= 1
    # a ledger last opened by a writer before session 13: a reader leaves it, a writer marks it
    _set_fmt(db_url, None)
    SqlLedger(db_url, project, create=False).close()
    assert _fmt(db_url) is None
    SqlLedger(db_url, project).close()
    assert _fmt(db_url) == LEDGER_FORMAT

    newer = LEDGER_FORMAT + 1
    _set_fmt(db_url, newer)
    before = _state(db_url)
    file = Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite") else None
    raw = file.read_bytes() if file is not None else b""

    def refused(text_: str) -> None:
        assert f"ledger format {newer}" in text_ and f"up to {LEDGER_FORMAT}" in text_, text_
        assert "newer Outpost" in text_ and "nothing was read or changed" in text_

    for create in (True, False):
        with pytest.raises(ConfigError) as err:
            SqlLedger(db_url, project, create=create)
        refused(str(err.value))
    backup = tmp_path / "b.ledger"
    for argv in (["verify"], ["backup", str(backup)]):
        capsys.readouterr()
        assert main([argv[0], "--db", db_url, "--schema", str(DEMO_SCHEMA), *argv[1:]]) == 2
        refused(capsys.readouterr().err)
    assert not backup.exists()
    # serve: refused at start (a hub that started would run until the timeout, failing)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from hubserver.cli import main; "
         "sys.exit(main(sys.argv[1:]))", "serve", "--db", db_url, "--schema",
         str(DEMO_SCHEMA), "--port", "0", "--auth", "none",
         "--users", str(tmp_path / "users.db")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=60)
    assert proc.returncode == 2
    refused(proc.stderr)
    assert _state(db_url) == before
    if file is not None:
        assert file.read_bytes() == raw
