"""Read commands beside a big pending queue (review 13, findings 4 and 5), on real SQLite files.

A read-only satellite (``outpost status/show/conflicts``, opened beside the app) built the
overlay of the whole pending queue at every open: 1.2 s of CPU for 100 pending transactions
of 500 rows, paid by `outpost status` too, and 20 times over while the app stored sync replies
(`_read` opened again after each commit: 47 s). The overlay is now built at its first use,
the status counts the local conflicts the writer stored, and a read overlapped by commits is
read at most three times, then shown with a note. Overlay builds and opens are counted through
our own classes (``QueueView.update``, the read callback), not timed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Audit, Cmd, Event
from core.satellite.machine import Phase, SyncInfo
from core.satellite.satellite import Satellite
from core.satellite.view import QueueView
from core.schema import Project
from core.wire import SatRes
from desktop import headless

SITE = "field.site"


def _hub_change(sat: Satellite, rev: int, eid: int, key: str, cmd: Cmd,
                arg: dict[str, Any]) -> None:
    """Another user's change of ``key`` arriving from the hub (a reply of one event)."""
    res = SatRes(rev, (Event(eid, rev, SITE, key, cmd, arg),), (),
                 audits=(Audit(rev, rev, rev, "bob", None, f"bob-{eid}"),))
    sat.write(res)
    sat.written(res)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many overlay updates run (each :meth:`QueueView.update` call), with how many
    queued transactions."""
    seen: list[int] = []
    real = QueueView.update

    def update(self: QueueView, ledger: Any, upserts: Any = (), *a: Any, **k: Any) -> Any:
        ups = list(upserts)
        seen.append(len(ups))
        return real(self, ledger, ups, *a, **k)

    monkeypatch.setattr(QueueView, "update", update)
    yield seen


def _queue_with_a_local_conflict(path: Path, project: Project) -> list[str]:
    """A directory with 4 pending edits, the first of which a hub change since collides with
    (a local conflict); the writer closed. Returns the pending uids."""
    w = Satellite(path, project)
    try:
        _hub_change(w, 1000, 1, "a", Cmd.NEW, {"name": "A"})
        uids = [w.pub([Action(SITE, "a", Cmd.MOD, {"name": "mine"})])]
        uids += [w.pub([Action(SITE, f"n{i}", Cmd.NEW, {"name": f"N{i}"})]) for i in range(3)]
        _hub_change(w, 2000, 2, "a", Cmd.MOD, {"name": "theirs"})
        assert w.status().conflicts == 1 and w.status().pending == 4
    finally:
        w.close()
    return uids


def test_status_beside_a_pending_queue_builds_no_overlay(
        tmp_path: Path, project: Project, builds: list[int]) -> None:
    """`outpost status` (a read-only open, then status()) builds no overlay, and still counts
    the local conflict; a command that shows records builds it once, at its first read."""
    uids = _queue_with_a_local_conflict(tmp_path, project)
    builds.clear()
    ro = Satellite(tmp_path, read_only=True)
    try:
        st = ro.status()
        assert (st.pending, st.conflicts) == (4, 1)
        assert builds == [] and not ro.overlay_built()
        recs = {r.key: r for r in ro.records(SITE)}
        assert builds == [4] and ro.overlay_built()  # all four, once
        assert recs["a"].conflict == (uids[0],) and recs["a"].fields["name"] == "theirs"
        assert recs["n2"].pending == (uids[3],)
        assert ro.status().conflicts == 1 and ro.record(SITE, "n0") is not None
        assert builds == [4]  # not again
    finally:
        ro.close()


def test_the_status_command_builds_no_overlay(
        tmp_path: Path, project: Project, builds: list[int],
        capsys: pytest.CaptureFixture[str]) -> None:
    _queue_with_a_local_conflict(tmp_path, project)
    builds.clear()
    args = argparse.Namespace(data=str(tmp_path), json=True)
    assert headless._cmd_status(args) == 0
    assert '"pending": 4, "conflicts": 1' in capsys.readouterr().out
    assert builds == []


def test_a_writer_still_builds_the_overlay_at_open(
        tmp_path: Path, project: Project, builds: list[int]) -> None:
    """The directory's writer (the app, `outpost sync`) needs the overlay at once: it stores
    the local conflict marks the readers count."""
    _queue_with_a_local_conflict(tmp_path, project)
    builds.clear()
    w = Satellite(tmp_path, project)
    try:
        assert builds == [4] and w.overlay_built() and w.status().conflicts == 1
    finally:
        w.close()


def test_a_read_overlapped_by_every_commit_is_read_three_times_with_a_note(
        tmp_path: Path, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """The app stores a reply during every read (a long sync): the read command reads
    three times, not twenty, shows the last read and says a sync is running (stderr)."""
    w = Satellite(tmp_path, project)
    reads: list[int] = []

    def read(sat: Satellite) -> int:
        reads.append(sat.status().pending)
        n = len(reads)
        _hub_change(w, 1000 + n, n, f"h{n}", Cmd.NEW, {"name": "H"})  # the app commits
        return n

    try:
        w.set_sync(SyncInfo(Phase.LIVE))  # the holder's record: live, online
        w.pub([Action(SITE, "x", Cmd.NEW, {"name": "X"})])
        got = headless.read_settled(argparse.Namespace(data=str(tmp_path)), read)
        assert reads == [1, 1, 1] and got == 3
        err = capsys.readouterr().err
        assert "changed while this was read, 3 times: the process that has it open " \
               "(pid " in err and "run the command again once the sync is done" in err
        # a read no commit overlapped: once, no note
        reads.clear()
        assert headless.read_settled(argparse.Namespace(data=str(tmp_path)),
                              lambda s: reads.append(1) or "ok") == "ok"
        assert reads == [1] and capsys.readouterr().err == ""
    finally:
        w.close()


def test_conflicts_beside_pending_edits_without_a_local_conflict_builds_no_overlay(
        tmp_path: Path, project: Project, builds: list[int],
        capsys: pytest.CaptureFixture[str]) -> None:
    """`outpost conflicts` lists the local conflicts: with none marked by the writer, it
    needs no overlay; with one, it builds it and shows the conflict's fields."""
    w = Satellite(tmp_path, project)
    try:
        _hub_change(w, 1000, 1, "a", Cmd.NEW, {"name": "A"})
        w.pub([Action(SITE, "a", Cmd.MOD, {"name": "mine"})])
        w.pub([Action(SITE, "n", Cmd.NEW, {"name": "N"})])
    finally:
        w.close()
    builds.clear()
    args = argparse.Namespace(data=str(tmp_path), json=False, uid=None, all=False)
    assert headless._cmd_conflicts(args) == 0
    first = capsys.readouterr().out
    assert builds == []
    ro = Satellite(tmp_path, read_only=True)
    try:
        assert [r.err for r in ro.receipts()] == ["", ""] and builds == []
    finally:
        ro.close()
    _queue_with_a_local_conflict(tmp_path / "b", project)
    builds.clear()
    assert headless._cmd_conflicts(argparse.Namespace(
        data=str(tmp_path / "b"), json=False, uid=None, all=False)) == 0
    out = capsys.readouterr().out
    assert builds == [4] and "theirs" in out and "mine" in out and out != first
