"""Firstday review 14 (finding 5): a team hub made with ``--schema team.toml`` was refused
by every later command given without ``--schema`` (they used the demo schema), with advice
(back it up) that failed the same way, and ``restore`` without ``--schema`` told the user to
change the schema. Without ``--schema`` an existing ledger is now served, verified and backed
up with the schema it holds, a backup restored with its own; a ``--schema`` that is not the
ledger's is refused naming both and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.ledger.ops import backup_project
from core.ledger.sql import open_ledger, stored_project
from core.model import Action, Cmd, Trans
from core.schema import parse_project
from hubserver.cli import DEMO_SCHEMA, main
from tests.support.procs import ROOT

TEAM = """\
[project]
name = "team"

[inv.item]
label = "Items"
key = "int"
display = "title"

[inv.item.fields]
title = { type = "str", required = true, label = "Title" }
"""


def _team_ledger(url: str) -> None:
    led = open_ledger(url, parse_project(TEAM))
    try:
        led.publish(Trans((Action("inv.item", "1", Cmd.NEW, {"title": "Hammer"}),)), "ann")
    finally:
        led.close()


def test_commands_without_schema_use_the_ledgers_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, backup, new = tmp_path / "team.sqlite", tmp_path / "b.ledger", tmp_path / "new.sqlite"
    _team_ledger(str(db))
    team = parse_project(TEAM)
    stored = stored_project(db)
    assert stored is not None and stored.version == team.version and stored.name == "team"

    assert main(["verify", "--db", str(db)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ok")
    assert main(["backup", str(backup), "--db", str(db)]) == 0
    assert "backup done" in capsys.readouterr().out
    assert backup_project(backup).version == team.version
    assert main(["restore", str(backup), "--db", str(new)]) == 0  # the backup's own schema
    assert "restore done" in capsys.readouterr().out
    restored = stored_project(new)
    assert restored is not None and restored.version == team.version
    led = open_ledger(new, team)
    try:
        assert led.state("inv.item", "1") == {"title": "Hammer"}
    finally:
        led.close()


def test_a_schema_that_is_not_the_ledgers_is_refused_with_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "team.sqlite"
    _team_ledger(str(db))
    before = db.read_bytes()
    for argv in (["verify"], ["backup", str(tmp_path / "b.ledger")]):
        assert main([*argv, "--db", str(db), "--schema", str(DEMO_SCHEMA)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "project 'outpost-demo'" in err and "project 'team'" in err, err
        assert "leave out --schema to use the ledger's own" in err, err
        assert "nothing was changed" in err
    assert db.read_bytes() == before
    assert not (tmp_path / "b.ledger").exists()


def test_verify_of_no_ledger_says_so_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.sqlite"
    assert stored_project(missing) is None
    assert main(["verify", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "check --db" in err, err
    assert not missing.exists()


def test_serve_without_schema_names_the_ledgers_own(tmp_path: Path) -> None:
    db = tmp_path / "team.sqlite"
    _team_ledger(str(db))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubserver.cli", "serve", "--auth", "none", "--port", "0",
         "--db", str(db)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost-hub ready: ws://127.0.0.1:"), proc.stderr
        assert "schema the ledger's own (project 'team')" in line, line
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_user_commands_take_no_schema() -> None:
    for sub in ("add", "list", "remove"):
        out = subprocess.run([sys.executable, "-m", "hubserver.cli", "user", sub, "--help"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "--schema" not in out.stdout


@pytest.mark.pg
def test_stored_project_reads_a_postgresql_ledger(fresh_pg_db: str) -> None:
    assert stored_project(fresh_pg_db) is None  # an empty database: no ledger
    _team_ledger(fresh_pg_db)
    stored = stored_project(fresh_pg_db)
    assert stored is not None and stored.version == parse_project(TEAM).version
