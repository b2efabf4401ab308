"""Schema-change review 15 (finding 4): a field, enum value or model an event ever set can
never be removed or renamed. The restore's refusal named the first offending event only
(one restore attempt per problem) and suggested a field of another type ("did you mean
'observed'?", a datetime, for the str 'observer'); it now names every one (the first 20,
and how many in all), says schema changes are add-only and what to do instead, and
suggests no field. The CLI of the hub, in process, over real SQLite files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.ledger.ops import backup
from core.ledger.sql import open_ledger
from core.model import Action, Cmd, Trans
from core.schema import Project, parse_project
from hubserver.auth import Users
from hubserver.cli import DEMO_SCHEMA, main
from tests.support.procs import ROOT


def test_restore_refusal_names_every_offending_event(
        tmp_path: Path, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.sqlite"
    led = open_ledger(str(db), project)
    try:
        led.publish(Trans((Action("field.obs", "o1", Cmd.NEW, {
            "species": "Ibex", "condition": "poor", "observer": "Ann"}),)), "ann")
        led.publish(Trans((Action("field.obs", "o1", Cmd.MOD, {
            "condition": "fair", "observer": None}),)), "ann")
        for i in range(25):
            led.publish(Trans((Action("field.site", f"s{i}", Cmd.NEW, {
                "name": f"S{i}", "lon": 7.5}),)), "ann")
        backup(led, tmp_path / "b.ledger")
    finally:
        led.close()
    v1 = DEMO_SCHEMA.read_text()
    v2 = (v1.replace('observer = { type = "str", label = "Observer" }',
                     'recorded_by = { type = "str", label = "Recorded by" }')
          .replace('"good", "fair", "poor"', '"good", "fair", "bad"')
          .replace('lon = { type = "float", label = "Longitude" }\n', ""))
    assert v2.count("recorded_by") == 1 and "poor" not in v2 and "lon =" not in v2
    (tmp_path / "v2.toml").write_text(v2)
    new = tmp_path / "new.sqlite"
    assert main(["restore", str(tmp_path / "b.ledger"), "--db", str(new),
                 "--schema", str(tmp_path / "v2.toml")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "27 of its events are not valid under the new schema" in err, err
    assert "(new field.obs o1): field 'condition' got 'poor'" in err, err
    assert "(mod field.obs o1): unknown field 'observer'" in err, err
    assert err.count("unknown field 'lon'") == 18 and "; and 7 more." in err, err
    assert "did you mean" not in err, err
    assert "Schema changes are add-only" in err and "cannot be removed or renamed" in err
    assert "keep the old field or value, and stop using it" in err, err
    assert "nothing was restored" in err, err


def test_did_you_mean_only_names_a_field_that_takes_the_value() -> None:
    renamed = parse_project(DEMO_SCHEMA.read_text().replace(
        'observer = { type = "str", label = "Observer" }',
        'recorded_by = { type = "str", label = "Recorded by" }'))
    obs = renamed.model("field.obs")
    with pytest.raises(ValidationError) as info:  # 'observed' is a datetime: not it
        obs.check_arg(Cmd.MOD, "o1", {"observer": "Ann"})
    assert "unknown field 'observer'" in str(info.value)
    assert "did you mean" not in str(info.value), info.value
    with pytest.raises(ValidationError) as info:  # a date-time value: it may be
        obs.check_arg(Cmd.MOD, "o1", {"observer": "2026-05-01T09:30:00Z"})
    assert "did you mean 'observed'?" in str(info.value), info.value
    with pytest.raises(ValidationError) as info:  # a restore's history: no suggestion
        obs.check_arg(Cmd.MOD, "o1", {"observer": "2026-05-01T09:30:00Z"}, stored=True)
    assert "did you mean" not in str(info.value)


def test_a_reader_that_goes_away_stops_nothing(tmp_path: Path, project: Project) -> None:
    """`outpost-hub restore ... | head -1` (review 15, LOW): the reader of stdout gone, the
    restore printed a BrokenPipeError traceback and stopped at its "restore done" line,
    before it copied the users file. Now it goes on to the end, quietly, exit 0."""
    db = tmp_path / "hub.sqlite"
    open_ledger(str(db), project).close()
    assert main(["user", "add", "ann", "--db", str(db)]) == 0
    assert main(["backup", str(tmp_path / "b.ledger"), "--db", str(db)]) == 0
    new = tmp_path / "new.sqlite"
    r, w = os.pipe()
    os.close(r)  # the reader went away before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hubserver.cli", "restore", str(tmp_path / "b.ledger"),
             "--db", str(new)], cwd=ROOT, stdout=w, stderr=subprocess.PIPE, text=True,
            timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    users = Users(Path(f"{new}.users.db"), create=False)
    try:
        assert [u.name for u in users.list()] == ["ann"]  # copied: the restore went on
    finally:
        users.close()
