"""Wire review 13, finding 3: a backup made before session 12 that holds a value nested past
249 levels (no reply can carry it) was restored without a word, and the hub serving it then
stopped every satellite whose catch-up reached it (1011). `outpost-hub restore` now warns,
naming each value's record and the documented repair ("Values nested too deep"). The real
CLI entry point, real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.schema import parse_project
from hubserver.cli import main
from tests.hub.test_deep_review12 import DOC, _poison

SCHEMA = """
[project]
name = "j"

[doc.item]
key = "int"

[doc.item.fields]
name = "str"
data = "json"
"""


def _backup(tmp_path: Path, poison: bool) -> Path:
    proj = parse_project(DOC)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    try:
        if poison:
            _poison(led, proj)
        else:
            from core.model import Action, Cmd, Trans
            led.publish(Trans((Action("doc.item", "1", Cmd.NEW, {"name": "a"}),)), "ann")
        ops.backup(led, tmp_path / "b.ledger")
    finally:
        led.close()
    return tmp_path / "b.ledger"


@pytest.mark.parametrize("poison", [True, False])
def test_restore_warns_of_values_no_reply_can_carry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], poison: bool) -> None:
    schema = tmp_path / "schema.toml"
    schema.write_text(SCHEMA, encoding="utf-8")
    b = _backup(tmp_path, poison)
    target = tmp_path / "restored.db"
    assert main(["restore", str(b), "--db", str(target), "--schema", str(schema)]) == 0
    out, err = capsys.readouterr()
    assert "restore done" in out
    if not poison:
        assert "warning" not in err and "nested" not in err, err
        return
    assert "warning: the restored ledger holds 2 values nested too deep for any reply" in err
    assert "every satellite whose catch-up reaches one stops with 1011" in err, err
    assert '"Values nested too deep"' in err and str(b) in err, err
    assert "event 1 (doc.item 1, revision " in err and "field 'data'" in err, err
    assert "the audit of revision " in err, err
