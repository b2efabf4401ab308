"""Session 14: a conflict found here (the satellite's view: a hub change arrived after a
pending edit of the same fields) names, per field, who last changed it, as a hub's conflict
does (session 13). Real SQLite data directory; the hub's replies stored as the sync stores
them (our own ``Satellite.write``/``written``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Audit, Cmd, Event
from core.satellite.conflicts import conflict_fields, explain, own_of
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import SatRes

SITE = "field.site"


def _hub_change(sat: Satellite, rev: int, usr: str, key: str, cmd: Cmd,
                arg: dict[str, Any]) -> None:
    res = SatRes(rev, (Event(rev, rev, SITE, key, cmd, arg),), (),
                 audits=(Audit(rev, rev, rev, usr, None, f"{usr}-{rev}"),))
    sat.write(res)
    sat.written(res)


def test_a_local_conflict_names_each_fields_last_changer(tmp_path: Path,
                                                         project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        _hub_change(sat, 1000, "office", "a", Cmd.NEW, {"name": "A", "region": "N"})
        uid = sat.pub([Action(SITE, "a", Cmd.MOD, {"name": "mine", "region": "S"})])
        _hub_change(sat, 2000, "alice", "a", Cmd.MOD, {"name": "alice's"})
        _hub_change(sat, 3000, "bob", "a", Cmd.MOD, {"region": "E"})
        rc = sat.receipt(uid)
        assert rc is not None and rc.err
        [c] = rc.conflicts
        assert (c.rev, c.usr) == (3000, "bob")
        assert dict(c.by or {}) == {"name": (2000, "alice"), "region": (3000, "bob")}
        who = {f.field: f.usr for f in conflict_fields(sat, rc)}
        assert who == {"name": "alice", "region": "bob"}
        said = explain(rc, own=own_of(sat, [c.rev]))[0]
        assert "alice" in said and "bob" in said
    finally:
        sat.close()
