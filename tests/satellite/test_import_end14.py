"""The end of a big import (session 14, big replicas 4): the overlay update after
``Staged.commit`` checked every staged transaction again (the steps had), and every earlier
pending edit on the imported records too (a transaction new to the queue cannot change an
earlier one's outcome). Now the steps' outcomes are taken when the overlay and the replica did
not move since the first step, and an appended transaction checks only itself; the overlay
equals a full rebase either way. Real SQLite files; ``QueueView._check`` calls counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.satellite.view import QueueView, rebase
from core.schema import Project
from tests.satellite.test_reads13 import _hub_change

SITE = "field.site"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = QueueView._check

    def check(self: QueueView, ledger: Any, q: Any, *a: Any, **k: Any) -> Any:
        seen.append(q.uid)
        return real(self, ledger, q, *a, **k)

    monkeypatch.setattr(QueueView, "_check", check)
    return seen


def _replica(sat: Satellite) -> None:
    for i in range(6):
        _hub_change(sat, 1000 + i, i + 1, f"r{i}", Cmd.NEW, {"name": f"R{i}"})


def _same_as_a_full_rebase(sat: Satellite) -> None:
    queued = [e.queued() for e in sat._open.values() if e.state != "rejected"]
    full = rebase(sat.replica.read, queued)
    ov = sat._qv.ov
    assert (ov.states, ov.pending, ov.conflicts, ov.conflict_sigs) == (
        full.states, full.pending, full.conflicts, full.conflict_sigs)


def test_a_commit_on_an_unmoved_overlay_checks_nothing_again(
        tmp_path: Path, project: Project, checks: list[str]) -> None:
    sat = Satellite(tmp_path, project)
    try:
        _replica(sat)
        earlier = sat.pub([Action(SITE, "r1", Cmd.MOD, {"region": "West"})])
        st = sat.staged()
        st.add([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"n{i}"}) for i in range(3)])
        st.add([Action(SITE, "r1", Cmd.MOD, {"name": "again"}),
                Action(SITE, "x", Cmd.NEW, {"name": "X"})])
        st.add([Action(SITE, "x", Cmd.DEL)])
        checks.clear()
        uids = st.commit()
        assert checks == []  # was 4: the three staged and the earlier edit of r1
        assert earlier not in checks
        r1 = sat.record(SITE, "r1")
        assert r1 is not None and r1.fields is not None
        assert (r1.fields["name"], r1.fields["region"], r1.fields["notes"]) == (
            "again", "West", "n1")
        assert r1.pending == (earlier, uids[0], uids[1])
        assert sat.record(SITE, "x") is None  # made and deleted, locally
        _same_as_a_full_rebase(sat)
    finally:
        sat.close()


def test_a_change_between_the_steps_checks_the_staged_again(
        tmp_path: Path, project: Project, checks: list[str]) -> None:
    """The hub's change of a staged record between two steps: the steps' outcomes do not
    hold (the first was checked before it), the commit checks them, and the staged edit of
    the changed field is marked a local conflict, as before."""
    sat = Satellite(tmp_path, project)
    try:
        _replica(sat)
        st = sat.staged()
        a = st.add([Action(SITE, "r2", Cmd.MOD, {"name": "mine"}, )], base=sat.rev())
        _hub_change(sat, 2000, 10, "r2", Cmd.MOD, {"name": "theirs"})
        b = st.add([Action(SITE, "r3", Cmd.MOD, {"notes": "fine"})])
        checks.clear()
        st.commit()
        assert checks == [a, b]
        assert a in sat._qv.ov.conflicts and b not in sat._qv.ov.conflicts
        _same_as_a_full_rebase(sat)
    finally:
        sat.close()


def test_an_edit_appended_checks_only_itself(
        tmp_path: Path, project: Project, checks: list[str]) -> None:
    sat = Satellite(tmp_path, project)
    try:
        _replica(sat)
        first = [sat.pub([Action(SITE, "r4", Cmd.MOD, {"notes": f"v{i}"})]) for i in range(3)]
        checks.clear()
        last = sat.pub([Action(SITE, "r4", Cmd.MOD, {"name": "last"})])
        assert checks == [last]  # was the four: the three before it on r4 again
        assert sat.record(SITE, "r4").pending == (*first, last)  # type: ignore[union-attr]
        _same_as_a_full_rebase(sat)
    finally:
        sat.close()
