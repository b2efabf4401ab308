"""While the unsynced edits are being applied at start (session 14's ``overlay_later``),
Sync now, a save of a record no unapplied edit touches and the conflicts view applied the rest
at once (a stall of seconds with a long queue). Session 15: Sync now and the conflicts view
wait for the steps (said in the status bar, done once after however many presses), and the
save is checked on what is applied so far, the steps going on.

Real widgets (offscreen), a real satellite (SQLite files); the build held by the gate of
``tests/desktop/test_overlay_later14.py`` around our own ``Satellite.build_overlay``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.satellite.satellite import Satellite
from desktop.mainwindow import MainWindow
from tests.desktop.test_overlay_later14 import gated  # noqa: F401 (a fixture)

SITE = "field.site"


class CountingSync:
    """Our :class:`desktop.sync.SyncControl`, counting Sync now."""

    def __init__(self) -> None:
        self.now = 0

    def set_offline(self, offline: bool) -> None:
        pass

    def sync_now(self) -> None:
        self.now += 1


def test_sync_now_the_conflicts_view_and_a_save_elsewhere_wait_for_no_whole_build(
        qtbot: Any, gated: tuple[Satellite, list[bool]]) -> None:  # noqa: F811
    sat, gate = gated
    sync = CountingSync()
    w = MainWindow(sat, sync, "t")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    w.show()
    qtbot.waitExposed(w)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 5)
    assert sat.applying() == 6
    for _ in range(3):
        w.sync_action.trigger()
    assert sync.now == 0 and sat.applying() == 6  # not built at once
    assert "applying 6 unsynced edits first" in w.status.currentMessage()
    assert w.show_conflicts() is None and w.conflicts_dialog is None
    assert sat.applying() == 6 and "conflicts view opens once" in w.status.currentMessage()
    # a new record: no unapplied edit touches it
    w.new_record()
    key = w.form.key
    w.form.set_value("name", "Fresh")
    w.save_action.trigger()
    rv = sat.record(SITE, key)
    assert rv is not None and rv.is_pending and (rv.fields or {})["name"] == "Fresh"
    assert sat.applying() == 6 and not sat.overlay_built()
    assert sat.status().pending == 7
    gate[0] = True
    qtbot.waitUntil(lambda: not w.status.applying.isVisible())
    assert sync.now == 1  # once, after the steps
    assert w.conflicts_dialog is not None and w.conflicts_dialog.isVisible()
    assert sat.status().conflicts == 1  # b's edit collides with the hub's change
    assert sat.status().pending == 7


def test_an_imports_edits_are_applied_in_steps_after_its_commit(
        qtbot: Any, gated: tuple[Satellite, list[bool]], tmp_path: Path) -> None:  # noqa: F811
    """File → Import CSV: its transactions are added to what the window shows in steps
    after the commit, as at start ("Applying N unsynced edits…"), not at once."""
    sat, gate = gated
    w = MainWindow(sat, CountingSync(), "t")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    w.show()
    qtbot.waitExposed(w)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 5)
    sheet = tmp_path / "new.csv"
    sheet.write_text("key,name\nx1,Imported one\nx2,Imported two\n", encoding="utf-8")
    done: list[bool] = []
    job = w.import_csv(str(sheet))  # builds the rest of the start's edits (whole) first
    assert job is not None
    job.finished.connect(lambda ok, _t, _x: done.append(ok))
    qtbot.waitUntil(lambda: bool(done))
    assert done == [True] and sat.status().pending == 7
    assert sat.applying() == 1 and w.status.applying.isVisible()
    assert w.status.applying.text() == "Applying 1 unsynced edit…"
    x1 = sat.record(SITE, "x1")
    assert x1 is None or x1.applying
    gate[0] = True
    qtbot.waitUntil(lambda: not w.status.applying.isVisible())
    assert sat.applying() == 0
    qtbot.waitUntil(lambda: w.records.rowCount() == 7)
    rv = sat.record(SITE, "x1")
    assert rv is not None and not rv.applying and (rv.fields or {})["name"] == "Imported one"


def test_a_failed_step_is_tried_again_after_a_second_then_at_full_speed(
        qtbot: Any, gated: tuple[Satellite, list[bool]]) -> None:  # noqa: F811
    """A step that failed (the replica unreadable a moment) is said and tried again a second
    later; once one succeeds the steps go on at every turn of the event loop (before, they
    stayed one a second for the rest of the build)."""
    from core.errors import StorageError

    sat, gate = gated
    w = MainWindow(sat, CountingSync(), "t")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    real = sat.build_overlay
    fails = [1]

    def build(budget: float = 0.05, *, whole: bool = False) -> bool:
        if fails[0]:
            fails[0] -= 1
            raise StorageError("database is locked")
        return real(budget, whole=whole)

    sat.build_overlay = build  # type: ignore[method-assign]
    w._apply_step()
    assert w._apply_timer.interval() == 1000 and "cannot apply" in w.status.currentMessage()
    w._apply_timer.stop()  # the next step by hand
    gate[0] = False
    w._apply_step()  # succeeds (the gate holds the build: not done yet)
    assert w._apply_timer.interval() == 0
