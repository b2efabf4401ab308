"""Session 14: a reader (`outpost status`, `conflicts`: a read-only open beside the app or a
sync) counted the local conflict marks the writer stored, which it stores in a commit of
their own after the reply's: a reader in between missed the conflict the reply just made.
The window is hit deterministically: the reader opens after the writer's ``write`` (the
reply's commit) and before its ``written`` (the marks' commit), the steps the sync client
runs one after the other. Real SQLite data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Audit, Cmd, Event
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import Ack, SatRes

SITE = "field.site"


def _change(rev: int, key: str, cmd: Cmd, arg: dict[str, Any], usr: str = "bob") -> SatRes:
    return SatRes(rev, (Event(rev, rev, SITE, key, cmd, arg),), (),
                  audits=(Audit(rev, rev, rev, usr, None, f"{usr}-{rev}"),))


def test_a_reader_between_the_replys_commit_and_the_marks_sees_the_new_conflict(
        tmp_path: Path, project: Project) -> None:
    w = Satellite(tmp_path, project)
    try:
        first = _change(1000, "a", Cmd.NEW, {"name": "A"})
        w.write(first)
        w.written(first)
        uid = w.pub([Action(SITE, "a", Cmd.MOD, {"name": "mine"})])
        theirs = _change(2000, "a", Cmd.MOD, {"name": "theirs"})
        w.write(theirs)  # the reply's commit; its marks not stored yet
        ro = Satellite(tmp_path, read_only=True)
        try:
            assert ro.status().conflicts == 1  # session 13: 0 (the marks of before)
            rc = ro.receipt(uid)
            assert rc is not None and rc.state == ReceiptState.PENDING and rc.err
        finally:
            ro.close()
        w.written(theirs)  # the marks stored: readers trust them again
        ro = Satellite(tmp_path, read_only=True)
        try:
            assert ro.status().conflicts == 1 and not ro.overlay_built()
        finally:
            ro.close()
    finally:
        w.close()


def test_a_replay_of_the_users_own_edits_leaves_the_marks_trusted(
        tmp_path: Path, project: Project) -> None:
    """A reply that only acks the user's own edits cannot make a local conflict: no flag,
    no commit of the marks of its own (the offline replay's path)."""
    w = Satellite(tmp_path, project)
    try:
        uid = w.pub([Action(SITE, "b", Cmd.NEW, {"name": "B"})])
        other = w.pub([Action(SITE, "c", Cmd.NEW, {"name": "C"})])
        mine = SatRes(3000, (Event(1, 3000, SITE, "b", Cmd.NEW, {"name": "B"}),),
                      (Ack(uid, 3000),), audits=(Audit(3000, 3000, 3000, "me", None, uid),))
        w.write(mine)
        ro = Satellite(tmp_path, read_only=True)
        try:
            assert ro.status().pending == 1 and not ro.overlay_built()
        finally:
            ro.close()
        w.written(mine)
        assert w.receipt(other) is not None
    finally:
        w.close()


def test_a_change_of_a_record_no_edit_touches_leaves_the_marks_trusted(
        tmp_path: Path, project: Project) -> None:
    """Merge review 14: any other's change set the flag while an edit was open, so a reader
    beside a running catch-up built its whole overlay (5,000 pending edits: `outpost status`
    0.19 s -> 3.56 s). A change of a record no queued edit touches cannot make a local
    conflict: no flag; one of a record an edit touches still sets it."""
    w = Satellite(tmp_path, project)
    try:
        first = _change(1000, "a", Cmd.NEW, {"name": "A"})
        w.write(first)
        w.written(first)
        w.pub([Action(SITE, "a", Cmd.MOD, {"name": "mine"})])
        elsewhere = _change(2000, "z", Cmd.NEW, {"name": "Z"})
        w.write(elsewhere)  # the reply's commit; its marks' commit (written) not yet
        ro = Satellite(tmp_path, read_only=True)
        try:
            assert ro.status().conflicts == 0 and ro.status().pending == 1
            assert not ro.overlay_built()  # the stored marks trusted: no overlay built
        finally:
            ro.close()
        w.written(elsewhere)
        theirs = _change(3000, "a", Cmd.MOD, {"name": "theirs"})
        w.write(theirs)
        ro = Satellite(tmp_path, read_only=True)
        try:
            assert ro.status().conflicts == 1 and ro.overlay_built()
        finally:
            ro.close()
        w.written(theirs)
    finally:
        w.close()
