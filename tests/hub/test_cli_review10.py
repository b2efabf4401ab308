"""Review 10 (user, finding 7): `outpost-hub backup --help` and `restore --help` say what the
command does and what FILE is (they had a one-line summary and an unexplained `file`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import ROOT


@pytest.mark.parametrize(("cmd", "said", "file_help"), [
    ("backup", "one consistent snapshot", "the backup file to write"),
    ("restore", "a new empty database", "the backup file to read"),
])
def test_backup_and_restore_help_explain_themselves(cmd: str, said: str,
                                                    file_help: str) -> None:
    out = subprocess.run([sys.executable, "-m", "hubserver.cli", cmd, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert said in text
    assert file_help in text


def test_verify_notes_records_under_non_canonical_int_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Review 10 (user, finding 1): a ledger may hold records an older hub took under "002"
    beside "2"; `verify` names them (a note: the exit stays 0, they are not damage)."""
    from core.ledger.sql import open_ledger
    from core.model import Action, Cmd, Trans
    from core.schema import Model, parse_project
    from hubserver.cli import main
    from tests.satellite.test_review10_user import ITEM, SCHEMA

    schema = tmp_path / "schema.toml"
    schema.write_text(SCHEMA)
    db = tmp_path / "hub.db"
    led = open_ledger(db, parse_project(SCHEMA))
    led.publish(Trans((Action(ITEM, "2", Cmd.NEW, {"name": "two"}),)), "office")
    assert main(["verify", "--db", str(db), "--schema", str(schema)]) == 0
    assert "note:" not in capsys.readouterr().out
    old = Model.check_key
    with monkeypatch.context() as mp:  # as a hub before session 10 took it
        mp.setattr(Model, "check_key", lambda self, key, new=False: old(self, key))
        led.publish(Trans((Action(ITEM, "002", Cmd.NEW, {"name": "two again"}),)), "bob")
    led.close()
    assert main(["verify", "--db", str(db), "--schema", str(schema)]) == 0
    out = capsys.readouterr().out
    assert "note: inv.item: 1 record under an int key not in canonical form (e.g. '002', " \
           "canonical '2'; 1 beside a record under the canonical key" in out
    assert out.rstrip().endswith("ok")
