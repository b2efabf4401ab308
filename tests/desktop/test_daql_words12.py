"""Session 12: the app's words for edits sent to a daql hub. The status bar counts edits put
aside (sent, their answer lost) apart from the conflicts (real widgets, offscreen)."""

from __future__ import annotations

from typing import Any

from core.satellite.api import SatStatus
from desktop.widgets.statusbar import SyncStatusBar


def test_the_status_bar_counts_edits_put_aside_apart_from_conflicts(qtbot: Any) -> None:
    """"Conflicts: 1, 2 put aside", not "Conflicts: 3"; a new one put aside is noticed as
    new (the inbox lists it), and with only edits put aside the count is not "Conflicts: 2"."""
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    arrived: list[int] = []
    bar.conflicts_arrived.connect(arrived.append)
    bar.show_status(SatStatus(conflicts=0, put_aside=2))  # at start: nothing new
    assert bar.conflicts.text() == "Conflicts: 0, 2 put aside"
    assert bar.conflict_count == 2  # the inbox's edits: "Open conflicts" is offered
    assert not bar.conflicts.icon().isNull()
    bar.show_status(SatStatus(conflicts=1, put_aside=2))
    assert bar.conflicts.text() == "Conflicts: 1, 2 put aside (1 new)"
    bar.show_status(SatStatus(conflicts=1, put_aside=3))
    assert bar.conflicts.text() == "Conflicts: 1, 3 put aside (2 new)"
    assert arrived == [1, 2]
    bar.conflicts_seen()
    assert bar.conflicts.text() == "Conflicts: 1, 3 put aside"
    bar.show_status(SatStatus(conflicts=1))
    assert bar.conflicts.text() == "Conflicts: 1"
