"""The app's File → Import CSV ends with one local commit of the staged transactions; since
session 15 a satellite opened as the app opens it (``overlay_later``) adds them to the overlay
in steps after that commit (:meth:`Satellite.build_overlay`, as the pending edits at open), not
at once (seconds on the UI thread at the end of a 50,000-row import under load). Meanwhile
their records are marked applying and an edit of one is refused; the end is told once and
every read equals a satellite that built them at once, local conflicts included (a staged
transaction on an older revision, as a sheet's ``_rev``, checked against the changes since).
Real SQLite files; steps counted, not timed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.api import Change, ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.satellite.test_overlay_later14 import _queue, _shape

SITE = "field.site"


def _import(sat: Satellite, old: int) -> list[str]:
    st = sat.staged()
    st.add([Action(SITE, k, Cmd.MOD, {"notes": f"sheet {k}"}) for k in "ac"])
    st.add([Action(SITE, "s1", Cmd.NEW, {"name": "S1"}), Action(SITE, "s2", Cmd.NEW,
                                                                 {"name": "S2"})])
    st.add([Action(SITE, "b", Cmd.MOD, {"name": "sheet b"})], base=old)  # clashes since
    st.add([Action(SITE, "e", Cmd.MOD, {"notes": "sheet e"})], base=old)
    return st.commit()


def test_an_imports_transactions_are_added_in_steps_after_its_commit(
        tmp_path: Path, project: Project) -> None:
    _queue(tmp_path / "sat", project)
    shutil.copytree(tmp_path / "sat", tmp_path / "ref")
    ref = Satellite(tmp_path / "ref", project)
    try:
        old = ref.rev() - 1  # before the hub's change of b
        _import(ref, old)
        assert ref.overlay_built()
        want, want_keys = _shape(ref), ref.keys(SITE)
        want_conflicts = sorted(r.err for r in ref.receipts([ReceiptState.PENDING]) if r.err)
    finally:
        ref.close()
    sat = Satellite(tmp_path / "sat", project, overlay_later=True)
    heard: list[Change] = []
    try:
        assert sat.build_overlay(whole=True) and sat.applying() == 0
        sat.listen(heard.append)
        uids = _import(sat, old)
        assert len(uids) == 4 and sat.status().pending == 10
        assert sat.applying() == 4 and not sat.overlay_built()  # not at once
        s1 = sat.record(SITE, "s1")
        assert s1 is None or s1.applying
        a = sat.record(SITE, "a")
        assert a is not None and a.applying and a.fields["notes"] is None
        with pytest.raises(ValidationError, match="still being applied"):
            sat.pub([Action(SITE, "a", Cmd.MOD, {"name": "over"})])
        told = len(heard)
        steps = 0
        while not sat.build_overlay(0.0):
            steps += 1
            assert steps <= 10
        assert steps == 3 and sat.applying() == 0 and len(heard) == told + 1
        assert _shape(sat) == want and sat.keys(SITE) == want_keys
        assert sorted(r.err for r in sat.receipts([ReceiptState.PENDING])
                      if r.err) == want_conflicts
        assert any(c.key == "b" for r in sat.receipts([ReceiptState.PENDING])
                   for c in r.conflicts)  # the sheet's b clashes with the hub's change
        assert not any(r.applying for r in sat.records(SITE))
    finally:
        sat.close()
    # the stored local conflict marks are those of the whole build: a reader counts them
    rd = Satellite(tmp_path / "sat", project, read_only=True)
    try:
        assert rd.status().conflicts == len(want_conflicts)
    finally:
        rd.close()


def test_an_imports_transactions_are_sent_once_applied(tmp_path: Path, project: Project) -> None:
    """Not in the outbox before they are applied (the hub's answer would build them at once,
    the stall the steps avoid); once applied the sync client is woken and they go."""
    w = Satellite(tmp_path, project)
    w.pub([Action(SITE, "x", Cmd.NEW, {"name": "X"})])
    w.close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    try:
        assert sat.build_overlay(whole=True)
        woken: list[bool] = []
        sat.on_local = lambda: woken.append(True)  # as the sync client sets it
        before = [t.uid for t in sat.outbox()]
        st = sat.staged()
        st.add([Action(SITE, "s1", Cmd.NEW, {"name": "S1"})])
        st.add([Action(SITE, "s2", Cmd.NEW, {"name": "S2"})])
        uids = st.commit()
        assert [t.uid for t in sat.outbox()] == before and len(before) == 1
        woken.clear()
        while not sat.build_overlay(0.0):
            pass
        assert woken
        assert [t.uid for t in sat.outbox()] == [*before, *uids]
    finally:
        sat.close()


def test_a_save_during_the_steps_and_a_whole_build_release_what_was_held(
        tmp_path: Path, project: Project) -> None:
    """A save during the steps is held too; when something builds the rest at once (an
    export, a resolve), the window's next call of build_overlay releases them all."""
    w = Satellite(tmp_path, project)
    w.pub([Action(SITE, "x", Cmd.NEW, {"name": "X"})])
    w.close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    try:
        assert sat.build_overlay(whole=True)
        woken: list[bool] = []
        sat.on_local = lambda: woken.append(True)
        st = sat.staged()
        st.add([Action(SITE, "s1", Cmd.NEW, {"name": "S1"})])
        st.add([Action(SITE, "s2", Cmd.NEW, {"name": "S2"})])
        uids = st.commit()
        saved = sat.pub([Action(SITE, "y", Cmd.NEW, {"name": "Y"})])  # during the steps
        assert sat.applying() == 2 and len(sat.outbox()) == 1
        sat.build_overlay(whole=True)  # e.g. File → Export: the rest at once
        assert sat.applying() == 0 and woken
        assert [t.uid for t in sat.outbox()][1:] == [*uids, saved]
    finally:
        sat.close()


def test_a_save_on_a_queue_empty_at_open_goes_to_the_outbox_at_once(
        tmp_path: Path, project: Project) -> None:
    """Nothing to apply at open (an empty queue): a save is no save during the steps, so it
    is not held (the window runs no steps to release it: the app on a daql hub sent none)."""
    Satellite(tmp_path, project).close()
    sat = Satellite(tmp_path, project, overlay_later=True)
    try:
        assert sat.applying() == 0
        uid = sat.pub([Action(SITE, "y", Cmd.NEW, {"name": "Y"})])
        assert [t.uid for t in sat.outbox()] == [uid]
    finally:
        sat.close()
