"""Session 15's leftover (schema changes): a topic's key type changed from str to int kept
records "007" and "7" as two records of one number (only `verify` noted it, after the
restore). The restore of such a schema change is now refused, naming the keys that would be
one number and the fix; records whose keys stay apart restore as before (a lone "007" is
noted by `verify`, as a record an old hub took). The hub's CLI in process, real SQLite
files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ledger.ops import backup
from core.ledger.sql import open_ledger
from core.model import Action, Cmd, Trans
from core.schema import parse_project
from hubserver.cli import main

ITEM = "inv.item"
V1 = """
[project]
name = "keys16"

[inv.item]
key = "str"
display = "name"

[inv.item.fields]
name = { type = "str", required = true }
"""
V2 = V1.replace('key = "str"', 'key = "int"')


def _backup(tmp_path: Path, keys: list[str], deleted: list[str]) -> Path:
    led = open_ledger(str(tmp_path / "hub.sqlite"), parse_project(V1))
    try:
        for k in keys:
            led.publish(Trans((Action(ITEM, k, Cmd.NEW, {"name": f"n{k}"}),)), "ann")
        for k in deleted:
            led.publish(Trans((Action(ITEM, k, Cmd.DEL),)), "ann")
        backup(led, tmp_path / "b.ledger")
    finally:
        led.close()
    (tmp_path / "v2.toml").write_text(V2)
    return tmp_path / "b.ledger"


def test_str_to_int_refuses_keys_that_are_one_number(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = _backup(tmp_path, ["007", "7", "12", "012", "5"], [])
    new = tmp_path / "new.sqlite"
    assert main(["restore", str(b), "--db", str(new), "--schema",
                 str(tmp_path / "v2.toml")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("2 groups of records would be one number each under the new int key type: "
            "inv.item: '012', '12' (all 12); inv.item: '007', '7' (all 7)") in err, err
    assert "`outpost pub TOPIC KEY del`" in err and 'keep key = "str"' in err, err
    assert "nothing was restored" in err, err
    assert not new.exists() or new.stat().st_size == 0, "refused before the target is touched"


def test_str_to_int_restores_keys_that_stay_apart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "007" was deleted before the backup: "7" is the only record of that number
    b = _backup(tmp_path, ["007", "7", "012", "5"], ["007"])
    new = tmp_path / "new.sqlite"
    assert main(["restore", str(b), "--db", str(new), "--schema",
                 str(tmp_path / "v2.toml")]) == 0, capsys.readouterr().err
    led = open_ledger(str(new), parse_project(V2), create=False)
    try:
        assert sorted(led.keys(ITEM)) == ["012", "5", "7"]
    finally:
        led.close()
    capsys.readouterr()
    assert main(["verify", "--db", str(new), "--schema", str(tmp_path / "v2.toml")]) == 0
    out = capsys.readouterr().out
    assert "note: inv.item: 1 record under an int key not in canonical form (e.g. '012'" \
        in out, out
