"""Queue durability on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError, ValidationError
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.config import DataDir, SatConfig
from core.satellite.satellite import Satellite
from core.schema import Project

SITE = "field.site"


def test_pub_close_reopen_still_pending(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    uid = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    sat.close()
    again = Satellite(tmp_path)  # the schema was stored with the data
    try:
        rec = again.receipt(uid)
        assert rec is not None and rec.state == ReceiptState.PENDING
        assert [t.uid for t in again.outbox()] == [uid]
        rv = again.record(SITE, "s1")
        assert rv is not None and rv.is_pending and rv.confirmed is None
        assert rv.fields is not None and rv.fields["name"] == "A"
        assert again.status().pending == 1
    finally:
        again.close()


def test_pub_rejects_what_does_not_apply_on_the_view(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        with pytest.raises(ValidationError, match="no such record"):
            sat.pub([Action(SITE, "nope", Cmd.MOD, {"name": "x"})])
        with pytest.raises(ValidationError, match="unknown field 'nmae'"):
            sat.pub([Action(SITE, "s1", Cmd.NEW, {"nmae": "x"})])
        sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        sat.pub([Action(SITE, "s1", Cmd.DEL)])
        assert sat.record(SITE, "s1") is None
        assert sat.status().pending == 2
    finally:
        sat.close()


def test_no_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outpost connect"):
        Satellite(tmp_path)


def test_config_is_private_and_token_not_in_repr(tmp_path: Path) -> None:
    dd = DataDir(tmp_path)
    dd.save_config(SatConfig("ws://127.0.0.1:1", "s3cret"))
    assert dd.config_file.stat().st_mode & 0o777 == 0o600
    cfg = dd.load_config()
    assert cfg.token == "s3cret" and "s3cret" not in repr(cfg)


def test_listeners_hear_pub(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    seen = []
    stop = sat.listen(seen.append)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    stop()
    sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "B"})])
    sat.close()
    assert len(seen) == 1 and seen[0].records == {SITE: frozenset({"s1"})}


def test_local_mark_only_sticks_to_pending_receipts(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        done = sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
        open_ = sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "B"})])
        assert sat.queue.accept(done, 7)
        # a stale mark for a receipt the hub accepted meanwhile must not stick to it
        sat.queue.set_local({done: "stale conflict", open_: "field changed"})
        rec = sat.queue.receipt(done)
        assert rec is not None and rec.state == ReceiptState.ACCEPTED and rec.err == ""
        rec = sat.queue.receipt(open_)
        assert rec is not None and rec.err == "field changed"
        sat.queue.set_local({})
        rec = sat.queue.receipt(open_)
        assert rec is not None and rec.err == ""
    finally:
        sat.close()
