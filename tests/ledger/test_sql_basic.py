"""The SQL ledger's own surface: opening, schema version, engine/metadata, replicate in a
caller's transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, Table, select

from core.errors import SchemaError, StorageError
from core.ledger.sql import SqlLedger, open_ledger
from core.model import Action, Cmd, Event, Trans
from core.schema import Project, parse_project


def site(key: str, **arg: object) -> Action:
    return Action("field.site", key, Cmd.NEW, {"name": "n", **arg})


def test_open_bare_path_and_reopen_keeps_everything(tmp_path: Path, project: Project) -> None:
    led = open_ledger(tmp_path / "l.db", project)
    res = led.publish(Trans((site("a"),), uid="u1"), "ann", now=1000)
    led.close()
    again = open_ledger(str(tmp_path / "l.db"), project)
    assert again.rev() == res.rev == 1000
    assert again.last_id() == 1
    assert again.uid_rev("u1") == 1000
    assert again.state("field.site", "a") == {"name": "n", "region": None, "lat": None,
                                              "lon": None, "notes": None}
    assert again.status_mig() == project.version
    again.close()


def test_other_schema_version_is_refused(tmp_path: Path, project: Project) -> None:
    SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project).close()
    other = parse_project('[x.y.fields]\nname = "str"\n', "other.toml")
    with pytest.raises(SchemaError) as err:
        SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", other)
    msg = str(err.value)
    assert project.version in msg and other.version in msg
    assert "open it with the schema it was made with" in msg


def test_replicate_inside_callers_transaction(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    queue = Table("sat_queue", led.metadata, Column("n", Integer, primary_key=True))
    led.metadata.create_all(led.engine)
    ev = Event(7, 5000, "field.site", "a", Cmd.NEW, {"name": "x"})
    with pytest.raises(RuntimeError), led.begin() as conn:
        conn.execute(queue.insert().values(n=1))
        led.replicate(5000, [ev], conn=conn)
        raise RuntimeError("caller fails after replicate: both roll back")
    assert led.rev() == 0
    assert led.state("field.site", "a") is None
    with led.begin() as conn:
        conn.execute(queue.insert().values(n=1))
        led.replicate(5000, [ev], conn=conn)
    assert led.rev() == 5000 and led.last_id() == 7
    assert led.state("field.site", "a") == {"name": "x", "region": None, "lat": None,
                                            "lon": None, "notes": None}
    with led.engine.connect() as c:
        assert c.execute(select(queue.c.n)).scalars().all() == [1]
    assert led.verify() == []
    led.close()


def test_sqlite_ledger_works_without_psycopg(tmp_path: Path) -> None:
    """A desktop install without psycopg: the SQLite ledger imports and works; PostgreSQL says
    what is missing."""
    code = f"""
import sys
sys.modules["psycopg"] = None  # import psycopg -> ImportError
from core.errors import ConfigError, StorageError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import load_project
from tests.conftest import DEMO_SCHEMA
project = load_project(DEMO_SCHEMA)
led = SqlLedger("sqlite:///{tmp_path / 'l.db'}", project)
led.publish(Trans((Action("field.site", "k", Cmd.NEW, {{"name": "n"}}),), uid="u"), "ann")
assert led.states("field.site")["k"]["name"] == "n"
led.close()
try:
    SqlLedger("postgresql://u:secret@127.0.0.1:1/x", project)
except ConfigError as exc:
    assert "psycopg" in str(exc) and "secret" not in str(exc), exc
    print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("url", ["postgresql://bob:s3cret@host:notaport/db",
                                 "mysql://bob:s3cret@h/db"])
def test_a_bad_url_error_never_shows_the_password(url: str, project: Project) -> None:
    with pytest.raises(StorageError, match="check the URL") as err:
        SqlLedger(url, project)
    assert "s3cret" not in str(err.value) and "bob:***@" in str(err.value)
