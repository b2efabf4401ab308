"""The app's window before the overlay of a long queue is built (session 14, big replicas 1):
a satellite opened with ``overlay_later`` builds the overlay of its pending edits in steps
(:meth:`Satellite.build_overlay`); meanwhile its reads show what is built, each record an
unapplied edit touches marked ``applying`` (never shown as confirmed), an edit of such a record
is refused (it was made on a value without the unsynced edit), and anything that needs the
whole overlay (hub data) builds the rest at once (since session 15 a save of another
record does not: it is added to what is built). At the end one
change notice names every record, the local conflict marks are stored, and every read equals
a satellite built at open. Real SQLite files; steps counted, not timed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.api import Change, ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.satellite.test_reads13 import _hub_change

SITE = "field.site"


def _queue(path: Path, project: Project) -> None:
    """A replica of records a..e from the hub, then 6 pending edits: two of ``a`` (the
    second on the first), a new record, a delete of ``d``, an edit of ``b`` a later hub
    change collides with (a local conflict), one of ``c``; the writer closed."""
    w = Satellite(path, project)
    try:
        for i, k in enumerate("abcde"):
            _hub_change(w, 1000 + i, i + 1, k, Cmd.NEW, {"name": k.upper()})
        w.pub([Action(SITE, "a", Cmd.MOD, {"name": "a1"})])
        w.pub([Action(SITE, "a", Cmd.MOD, {"region": "West"})])
        w.pub([Action(SITE, "n", Cmd.NEW, {"name": "N"})])
        w.pub([Action(SITE, "d", Cmd.DEL)])
        w.pub([Action(SITE, "b", Cmd.MOD, {"name": "b-mine"})])
        w.pub([Action(SITE, "c", Cmd.MOD, {"name": "c1"}), Action(SITE, "e", Cmd.MOD,
                                                                  {"name": "e1"})])
        _hub_change(w, 2000, 10, "b", Cmd.MOD, {"name": "b-theirs"})
        assert w.status().conflicts == 1 and w.status().pending == 6
    finally:
        w.close()


def _seen(sat: Satellite) -> list[tuple[str, object, tuple[str, ...], tuple[str, ...]]]:
    return [(r.key, dict(r.fields or {}), r.pending, r.conflict) for r in sat.records(SITE)]


def _shape(sat: Satellite) -> list[tuple[str, object, int, int]]:
    """:func:`_seen` with the numbers of pending and conflicting edits (uids differ between
    two satellites that made the same edits)."""
    return [(k, f, len(p), len(c)) for k, f, p, c in _seen(sat)]


def test_reads_before_the_build_mark_unapplied_records_and_end_equal_to_a_full_build(
        tmp_path: Path, project: Project) -> None:
    _queue(tmp_path, project)
    full = Satellite(tmp_path, project)
    try:
        want = _seen(full)
        want_keys = full.keys(SITE)
        want_conflicts = full.status().conflicts
    finally:
        full.close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    heard: list[Change] = []
    sat.listen(heard.append)
    try:
        assert sat.applying() == 6 and not sat.overlay_built()
        # the status counts the stored marks: no build for it
        assert sat.status().conflicts == want_conflicts == 1 and sat.applying() == 6
        a = sat.record(SITE, "a")
        # never shown as confirmed: its unsynced edit is not applied yet, and it says so
        assert a is not None and a.applying and a.is_pending and a.fields["name"] == "A"
        d = sat.record(SITE, "d")
        assert d is not None and d.applying and d.fields is not None  # delete not applied
        assert "a" in sat.overlaid(SITE) and "e" in sat.overlaid(SITE)
        # an edit made on what was shown (without the unsynced edit) is refused, nothing queued
        with pytest.raises(ValidationError, match="still being applied"):
            sat.pub([Action(SITE, "a", Cmd.MOD, {"name": "over"})])
        assert sat.status().pending == 6 and sat.applying() == 6
        steps = 0
        while not sat.build_overlay(0.0):  # one transaction a step
            steps += 1
            assert steps <= 10
            assert not heard  # nothing told before the end
        assert steps == 5 and sat.applying() == 0 and sat.overlay_built()
        assert len(heard) == 1 and heard[0].records[SITE] == frozenset("abcden")
        assert heard[0].status and heard[0].receipts
        assert sat.build_overlay() and len(heard) == 1  # told once
        assert _seen(sat) == want and sat.keys(SITE) == want_keys
        assert not any(r.applying for r in sat.records(SITE))
        # the edit refused above can be made now, on the record with its unsynced edit
        sat.pub([Action(SITE, "a", Cmd.MOD, {"name": "over"})])
        assert sat.record(SITE, "a").fields["name"] == "over"  # type: ignore[union-attr,index]
    finally:
        sat.close()


def test_a_record_with_edits_before_and_after_a_step_stays_marked(
        tmp_path: Path, project: Project) -> None:
    """``a`` has two pending edits: after the first is applied it shows that one and is
    still marked applying (the second is not), then not."""
    _queue(tmp_path, project)
    sat = Satellite(tmp_path, project, overlay_later=True)
    try:
        assert not sat.build_overlay(0.0)
        a = sat.record(SITE, "a")
        assert a is not None and a.applying and a.fields["name"] == "a1"
        assert a.fields.get("region") != "West"
        assert not sat.build_overlay(0.0)
        a = sat.record(SITE, "a")
        assert a is not None and not a.applying and a.fields["region"] == "West"
        assert sat.record(SITE, "c").applying  # type: ignore[union-attr]
    finally:
        sat.close()


def test_what_needs_the_whole_overlay_builds_it_at_once(
        tmp_path: Path, project: Project) -> None:
    """Hub data arriving during the build gets the whole overlay (its rebase needs it).
    Session 15: a save (a new record, an edit, a delete) of records no unapplied edit touches
    no longer does (the rest built at once: a stall of seconds in the app): it is checked on,
    and added to, what is built; the build goes on in steps, and ends equal to a satellite
    that saved the same on a whole overlay, told once."""
    _queue(tmp_path, project)
    edits = [[Action(SITE, "x", Cmd.NEW, {"name": "X"})],
             [Action(SITE, "x", Cmd.MOD, {"region": "North"})],
             [Action(SITE, "x", Cmd.MOD, {"name": "X2"}), Action(SITE, "y", Cmd.NEW,
                                                                 {"name": "Y"})],
             [Action(SITE, "y", Cmd.DEL)]]
    ref = tmp_path / "ref"
    shutil.copytree(tmp_path, ref, ignore=shutil.ignore_patterns("ref", "*.lock"))
    full = Satellite(ref, project)
    try:
        for acts in edits:
            full.pub(acts)
        want, want_keys = _shape(full), full.keys(SITE)
        want_conflicts = sorted(r.err for r in full.receipts([ReceiptState.PENDING]) if r.err)
    finally:
        full.close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    heard: list[Change] = []
    sat.listen(heard.append)
    try:
        assert not sat.build_overlay(0.0)
        for acts in edits:
            assert sat.pub(acts)  # touches no unapplied record: its uid
        assert not sat.overlay_built() and sat.applying() == 5  # not built at once
        x = sat.record(SITE, "x")
        assert x is not None and not x.applying and x.is_pending
        assert (x.fields or {}).get("name") == "X2" and x.fields["region"] == "North"
        assert sat.record(SITE, "y") is None  # deleted again
        a = sat.record(SITE, "a")
        assert a is not None and a.applying  # the rest still marked
        # an edit of a record an unapplied edit touches is still refused
        with pytest.raises(ValidationError, match="still being applied"):
            sat.pub([Action(SITE, "e", Cmd.MOD, {"name": "over"})])
        told = len(heard)
        steps = 0
        while not sat.build_overlay(0.0):
            steps += 1
            assert steps <= 10
        assert steps == 4 and len(heard) == told + 1  # the end told once
        assert _shape(sat) == want and sat.keys(SITE) == want_keys
        assert sorted(r.err for r in sat.receipts([ReceiptState.PENDING])
                      if r.err) == want_conflicts
        assert sat.record(SITE, "a").fields["region"] == "West"  # type: ignore[union-attr,index]
    finally:
        sat.close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    try:
        _hub_change(sat, 3000, 20, "c", Cmd.MOD, {"name": "c-theirs"})  # hub data
        assert sat.overlay_built()
        c = sat.record(SITE, "c")
        assert c is not None and c.conflict  # the edit of c and e now collides
        assert len(sat.receipts([ReceiptState.PENDING])) == 6 + len(edits)
    finally:
        sat.close()
