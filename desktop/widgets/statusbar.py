"""The status bar: connection, hub, hub revision, pending, conflicts, last sync, last error,
progress of a catch-up, and the "Work offline" / "Sync now" controls."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QToolButton,
    QWidget,
)

from core.satellite.api import SatStatus
from desktop.format import compact_rev, readable_rev
from desktop.icons import icon

__all__ = ["SyncStatusBar"]


class SyncStatusBar(QStatusBar):
    """Shows a :class:`SatStatus`; emits the user's sync choices.

    Signals:
        conflicts_clicked(): the conflicts count was clicked.
        offline_toggled(bool): "Work offline" changed.
        sync_clicked(): "Sync now" was clicked.
    """

    conflicts_clicked = Signal()
    offline_toggled = Signal(bool)
    sync_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.conn_icon = QLabel()
        self.conn = QLabel()
        self.conn.setObjectName("conn")
        self.hub = QLabel()
        self.hub_rev = QLabel()
        self.pending = QLabel()
        self.pending.setObjectName("pending")
        self.conflicts = QPushButton()
        self.conflicts.setObjectName("conflicts")
        self.conflicts.setFlat(True)
        self.conflicts.setIcon(icon("conflict"))
        self.conflicts.setIconSize(QSize(14, 14))
        self.conflicts.setToolTip("Open the conflicts view (Ctrl+Shift+C)")
        self.conflicts.clicked.connect(self.conflicts_clicked)
        self.last_sync = QLabel()
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setStyleSheet("color: #b3261e;")
        self.error.setMaximumWidth(220)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setFormat("%v / %m")
        self.progress.hide()
        self.offline = QToolButton()
        self.offline.setText("Work offline")
        self.offline.setCheckable(True)
        self.offline.setToolTip("Stop talking to the hub; edits stay pending (Ctrl+Shift+O)")
        self.offline.toggled.connect(self.offline_toggled)
        self.sync = QToolButton()
        self.sync.setText("Sync now")
        self.sync.setIcon(icon("sync"))
        self.sync.setToolTip("Connect and send pending changes now (F5)")
        self.sync.clicked.connect(self.sync_clicked)
        for w in (self.conn_icon, self.conn, self.hub, self.hub_rev, self.pending,
                  self.conflicts, self.last_sync, self.error):
            self.addWidget(w)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.offline)
        self.addPermanentWidget(self.sync)
        self.show_status(SatStatus())

    def show_status(self, st: SatStatus) -> None:
        """Update every part from ``st``."""
        if st.offline_mode:
            state = "Working offline"
        elif st.online:
            state = "Syncing" if st.syncing else "Online"
        else:
            state = "Offline"
        since = f" since {compact_rev(st.since)}" if st.since else ""
        self.conn.setToolTip(f"{state} since {readable_rev(st.since)}" if st.since else state)
        self.conn.setText(state + since)
        self.conn_icon.setPixmap(icon("online" if st.online else "offline").pixmap(12, 12))
        self.hub.setText(st.hub.removeprefix("ws://") if st.hub else "No hub set")
        self.hub.setToolTip(f"Hub: {st.hub}" if st.hub else "No hub set: File → Connection")
        self.hub_rev.setText(f"Hub rev {compact_rev(st.hub_rev or st.rev)}")
        self.hub_rev.setToolTip("The hub's revision as last heard (its latest change)")
        self.pending.setText(f"Pending: {st.pending}")
        self.conflicts.setText(f"Conflicts: {st.conflicts}")
        self.conflicts.setStyleSheet("color: #b3261e; font-weight: 600;" if st.conflicts else "")
        self.last_sync.setText(f"Synced {compact_rev(st.last_sync)}")
        self.last_sync.setToolTip("Last successful sync with the hub")
        err = st.last_error
        self.error.setText(err if len(err) <= 40 else err[:38] + "…")
        self.error.setToolTip(st.last_error)
        done, total = st.progress
        if st.syncing and (done or total):
            self.progress.setRange(0, max(total, 0))
            self.progress.setValue(done)
            self.progress.setFormat("%v / %m events" if total else f"{done:,} events")
            self.progress.show()
        else:
            self.progress.hide()
        if self.offline.isChecked() != st.offline_mode:
            self.offline.blockSignals(True)
            self.offline.setChecked(st.offline_mode)
            self.offline.blockSignals(False)
