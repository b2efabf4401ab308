"""Operator review 12: `--users` naming the ledger itself, or another SQLite file (a backup,
another hub's ledger), was taken by `serve` and `user`: a `hub_user` table was written into
the served ledger or the backup, while `restore` refuses the same mistake. Both commands now
refuse it before anything is opened, naming the fix (real hub processes and SQLite files)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from core.ledger import open_ledger
from core.schema import load_project
from tests.conftest import DEMO_SCHEMA
from tests.hub.test_cli import hub_cmd
from tests.hub.test_ops_review10 import _add, _env, _run
from tests.hub.test_ops_review11 import _ledger


def _tables(path: Path) -> set[str]:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def test_serve_refuses_the_ledger_itself_as_its_users_file(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = tmp_path / "hub.sqlite"
    _ledger(db)
    before = db.read_bytes()
    r = subprocess.run(hub_cmd("serve", "--port", "0", "--db", str(db), "--users", str(db)),
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"--users {db} is the ledger itself (--db)" in r.stderr, r.stderr
    assert "nothing was changed" in r.stderr, r.stderr
    assert "hub_user" not in _tables(db)
    assert db.read_bytes() == before


def test_user_add_refuses_a_backup_or_another_ledger_as_users_file(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db, b = tmp_path / "hub.sqlite", tmp_path / "b.ledger"
    _ledger(db)
    assert _run(env, "backup", str(b), "--db", str(db)).returncode == 0
    other = tmp_path / "other.sqlite"
    open_ledger(f"sqlite:///{other}", load_project(str(DEMO_SCHEMA))).close()
    for target in (b, other):
        before = target.read_bytes()
        r = _run(env, "user", "add", "eve", "--db", str(db), "--users", str(target))
        assert r.returncode == 2, r.stderr
        assert f"--users {target} exists and is not a users file" in r.stderr, r.stderr
        assert target.read_bytes() == before
        assert "hub_user" not in _tables(target)
    # a users file of its own (new, or made by `user add`) is taken as before
    users = tmp_path / "team.users.db"
    assert _add(env, "eve", "--db", str(db), "--users", str(users))
    assert _add(env, "bob", "--db", str(db), "--users", str(users))
    assert "hub_user" in _tables(users)


def test_a_backup_without_a_users_file_says_so_and_restore_names_the_true_reason(
        tmp_path: Path) -> None:
    # ops review 12: a backup made from another machine (another HOME: the hub's users file
    # not where it looks) recorded no users file silently; restore then said "made before
    # session 11, or its ledger had none", both false
    env = _env(tmp_path / "home")
    db, b = tmp_path / "hub.sqlite", tmp_path / "b.ledger"
    _ledger(db)  # no users file beside it: as seen from another machine
    r = _run(env, "backup", str(b), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert f"users: none recorded (no users file at {db}.users.db" in r.stdout, r.stdout
    assert "warning" not in r.stderr, r.stderr  # an --auth none hub has none: not a warning
    r = _run(env, "restore", str(b), "--db", str(tmp_path / "new" / "hub.sqlite"))
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert f"the backup found no users file at {db.resolve()}.users.db when it was made" \
        in out, out
    assert "made before session 11" not in out, out
