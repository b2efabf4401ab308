"""The status bar: connection, hub, hub revision, pending, conflicts, last sync, the last sync
problem in a few words (click it, or Ctrl+Shift+E, for the whole text), progress of a
catch-up, and the "Work offline" / "Sync now" controls.

Messages (:meth:`SyncStatusBar.showMessage`: "Saved as 12", an error of the window) show in
a label of their own after those parts: QStatusBar's own temporary message hid every part
but the permanent ones while it showed (10 s for an error), so the online state, pending
and conflict counts and the revision were gone exactly when the user looked."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QMouseEvent
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStatusBar,
    QToolButton,
    QWidget,
)

from core.satellite.api import SatStatus
from desktop.format import CatchupMeter, compact_rev, readable_rev, sync_problem
from desktop.icons import icon, set_icon
from desktop.look import set_tone
from desktop.widgets.elide import ElidedLabel

__all__ = ["ERROR_KEY", "SYNC_KEY", "SyncStatusBar"]

ERROR_KEY = "Ctrl+Shift+E"
"""Shortcut of the window's "Sync problem" action (the whole text of the last error)."""
SYNC_KEY = "F5"
#: the hub label's tooltip line for a hub that does not confirm edits (a daql hub)
DAQL_NOTE = ("\nA daql hub: it does not confirm edits. They go one at a time; one whose "
             "answer was lost (the connection broke) is put aside among the conflicts, not "
             "sent again, since it may have reached the hub: check the record, then keep "
             "mine (send it again) or keep theirs (drop it).")
"""Shortcut of the window's "Sync now" action."""

_NEW_STYLE = ("color: white; background: #b3261e; font-weight: 600; border-radius: 3px;"
              " padding: 0 6px;")


_MIN_CHARS = 6
"""The width (in average characters) a status part keeps however narrow the window."""


class _ClickLabel(ElidedLabel):
    """The sync problem's summary: clickable, and cut with "…" where the window is too
    narrow for it (its tooltip and Details… hold the whole text). Until session 14 its
    whole text was its minimum width: the 401 line made the window at least 1458 px wide,
    wider than a laptop's screen. ``text()`` stays the whole summary."""

    clicked = Signal()

    def __init__(self) -> None:
        super().__init__(min_chars=8)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(ev)


class _Bar(QProgressBar):
    """The catch-up / sending bar: 200 px where there is room, down to 120 px in a narrow
    window (a fixed 200 px minimum widened the window by it after each save online); wide
    enough for its text where there is room, up to 340 px, and a shorter text when it does
    not fit (:meth:`set_texts`; session 15: the text wrapped on two or three lines, cut)."""

    _long = ""
    _short = ""

    def set_texts(self, long: str, short: str) -> None:
        """Show ``long`` when it fits the bar's width, else ``short``."""
        self._long, self._short = long, short
        self._fit()
        self.updateGeometry()

    def full_text(self) -> str:
        """The whole text (shown when it fits, else the short one)."""
        return self._long or self.text()

    def _fit(self) -> None:
        fits = self.fontMetrics().horizontalAdvance(self._long) + 16 <= self.width()
        self.setFormat(self._long if fits or not self._short else self._short)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        if self._long:
            self._fit()

    def sizeHint(self) -> QSize:
        # wide enough for its text where there is room (session 15: "55,000 of 100,000
        # events · 3 s left" wrapped on two lines in 200 px, cut at both)
        hint = super().sizeHint()
        text = self.fontMetrics().horizontalAdvance(self._long) + 24 if self._long else 0
        return QSize(max(hint.width(), 200, min(text, 340)), hint.height())

    def minimumSizeHint(self) -> QSize:
        return QSize(120, super().minimumSizeHint().height())


class SyncStatusBar(QStatusBar):
    """Shows a :class:`SatStatus`; emits the user's sync choices.

    Signals:
        conflicts_clicked(): the conflicts count was clicked.
        error_clicked(): the error summary (or its "Details…") was clicked.
        conflicts_arrived(int): the hub rejected edits since the user last looked: how many
            conflicts are new (the count is highlighted until :meth:`conflicts_seen`).
        offline_toggled(bool): "Work offline" changed.
        sync_clicked(): "Sync now" was clicked.
    """

    conflicts_clicked = Signal()
    error_clicked = Signal()
    conflicts_arrived = Signal(int)
    offline_toggled = Signal(bool)
    sync_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.conn_icon = QLabel()
        # each part is cut with "…" where the window is narrow, the whole text in its
        # tooltip (review a11y 16: their whole texts made the window's minimum width, 1,588
        # px at an 18 pt font, Work offline / Sync now off a 1,366 px screen)
        self.conn = ElidedLabel(min_chars=_MIN_CHARS)
        self.conn.setObjectName("conn")
        self.hub = ElidedLabel(min_chars=_MIN_CHARS)
        self.hub.setObjectName("hub")
        self.hub_rev = ElidedLabel(min_chars=_MIN_CHARS)
        self.hub_rev.setObjectName("hub_rev")
        # cut with "…" where the window is narrow (the tooltip says the count too): the
        # "(sending 1 of 2)" after each save online no longer widens the window (session 14)
        self.pending = ElidedLabel(min_chars=10)
        self.pending.setObjectName("pending")
        # the window opened before the pending edits were applied to what it shows
        # (Satellite.build_overlay): said until they are
        self.applying = QLabel()
        self.applying.setObjectName("applying")
        set_tone(self.applying, "warn")
        self.applying.setToolTip(
            "Your unsynced edits are being applied to the records shown. A record with one "
            "not applied yet is marked pending and shows its saved value; it cannot be "
            "saved until its edit shows")
        self.applying.hide()
        self.conflicts = QPushButton()
        self.conflicts.setObjectName("conflicts")
        self.conflicts.setFlat(True)
        self.conflicts.setIconSize(QSize(14, 14))
        self.conflicts.setToolTip("Open the conflicts view (Ctrl+Shift+C)")
        self.conflicts.clicked.connect(self.conflicts_clicked)
        self.last_sync = ElidedLabel(min_chars=_MIN_CHARS)
        self.last_sync.setObjectName("last_sync")
        self.error = _ClickLabel()
        self.error.setObjectName("error")
        set_tone(self.error, "error")
        self.error.setCursor(Qt.CursorShape.PointingHandCursor)
        self.error.clicked.connect(self.error_clicked)
        self.details = QToolButton()
        self.details.setObjectName("error_details")
        self.details.setText("Details…")
        self.details.setAutoRaise(True)
        self.details.setToolTip(f"The whole text: what went wrong and what to do ({ERROR_KEY})")
        self.details.clicked.connect(self.error_clicked)
        self.details.hide()
        self.progress = _Bar()
        self.progress.setMaximumWidth(340)
        self.progress.hide()
        self.meter = CatchupMeter()
        # an upload (edits going out): [edits when it began (plus any saved since), pending
        # at the last status, clock time pending last moved]; None: none
        self._up: list[float] | None = None
        self._last_st = SatStatus()
        # after the hub answered every edit sent, the bar stays while they come back as the
        # hub's events (pending falls); this re-checks once they stopped coming
        self._up_timer = QTimer(self)
        self._up_timer.setSingleShot(True)
        self._up_timer.timeout.connect(lambda: self._show_progress(self._last_st,
                                                                   time.monotonic()))
        self.offline = QToolButton()
        self.offline.setText("Work offline")
        self.offline.setCheckable(True)
        self.offline.setToolTip("Stop talking to the hub; edits stay pending (Ctrl+Shift+O)")
        self.offline.toggled.connect(self.offline_toggled)
        self.sync = QToolButton()
        self.sync.setText("Sync now")
        set_icon(self.sync, "sync")
        # its name beside the icon (an icon alone did not say what it does)
        self.sync.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.sync.setToolTip(f"Connect and send pending changes now ({SYNC_KEY})")
        self.sync.clicked.connect(self.sync_clicked)
        # the window's messages, beside the parts above instead of over them; a long one
        # is cut (its tooltip holds it whole) rather than widening the window
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setMinimumWidth(0)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)
        for w in (self.conn_icon, self.conn, self.hub, self.hub_rev, self.pending,
                  self.applying, self.conflicts, self.last_sync, self.error, self.details):
            self.addWidget(w)
        self.addWidget(self.message, 1)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.offline)
        self.addPermanentWidget(self.sync)
        self._seen: int | None = None  # conflicts the user has been shown (None: none yet)
        self._new = 0
        self._count = 0
        self._aside = 0
        self.last_error = ""
        self.show_status(SatStatus())
        self._seen = None  # the first real status sets what is not new (conflicts at start)

    def show_applying(self, n: int) -> None:
        """Say that ``n`` unsynced edits are still being applied (0: hidden)."""
        self.applying.setText(f"Applying {n:,} unsynced edit{'s' if n != 1 else ''}…")
        self.applying.setVisible(n > 0)

    def showMessage(self, text: str, timeout: int = 0) -> None:
        """Show ``text`` for ``timeout`` ms (0: until the next message or
        :meth:`clearMessage`) beside the status, which stays in view."""
        self.message.setText(text)
        self.message.setToolTip(text)
        if timeout > 0:
            self._message_timer.start(timeout)
        else:
            self._message_timer.stop()
        self.messageChanged.emit(text)

    def clearMessage(self) -> None:
        self._message_timer.stop()
        if self.message.text():
            self.message.setText("")
            self.message.setToolTip("")
            self.messageChanged.emit("")

    def currentMessage(self) -> str:
        return self.message.text()

    def show_status(self, st: SatStatus, retry_in: float | None = None,
                    now: float | None = None) -> None:
        """Update every part from ``st``; ``retry_in``: seconds until the sync client tries
        the hub again (None: no retry waiting); ``now``: a clock time in seconds for the
        catch-up rate (default ``time.monotonic()``)."""
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
        self.hub.setText((st.hub.removeprefix("ws://") + (" (daql)" if st.hub_confirms is False
                                                          else "")) if st.hub else "No hub set")
        self.hub.setToolTip(
            (f"Hub: {st.hub}" + (DAQL_NOTE if st.hub_confirms is False else ""))
            if st.hub else "No hub set: File → Connection")
        self.hub_rev.setText(f"Hub rev {compact_rev(st.hub_rev or st.rev)}")
        self.hub_rev.setToolTip("The hub's revision as last heard (its latest change): "
                                + readable_rev(st.hub_rev or st.rev))
        answered, total = st.sending
        # a long queue going out: the count moves only as acks are stored; say it is going
        # (scale review 13: the pending count stood still 4.4 s with no word)
        self.pending.setText(f"Pending: {st.pending:,}"
                             + (f" (sending {answered:,} of {total:,})" if total else ""))
        self.pending.setToolTip(
            f"Edits sent to the hub on this connection: {answered:,} of {total:,} answered"
            if total else "Edits made here not yet confirmed by the hub")
        self._show_conflicts(st.conflicts, st.put_aside)
        self.last_sync.setText(f"Synced {compact_rev(st.last_sync)}")
        self.last_sync.setToolTip("Last successful sync with the hub: "
                                  + readable_rev(st.last_sync))
        self._show_error(st, retry_in)
        self._show_progress(st, time.monotonic() if now is None else now)
        if self.offline.isChecked() != st.offline_mode:
            self.offline.blockSignals(True)
            self.offline.setChecked(st.offline_mode)
            self.offline.blockSignals(False)

    def _show_conflicts(self, conflicts: int, aside: int = 0) -> None:
        # the inbox holds both: edits put aside (sent to a daql hub, the answer lost) are
        # counted apart from the conflicts (session 12: counted as conflicts), and new ones
        # are noticed as new conflicts are
        n = conflicts + aside
        if self._seen is None or n < self._seen:
            self._seen = n  # at start, and after resolving: nothing new
        self._count = n
        self._aside = aside
        new = n - self._seen
        self.conflicts.setText(f"Conflicts: {conflicts}"
                               + (f", {aside} put aside" if aside else "")
                               + (f" ({new} new)" if new else ""))
        # the warning icon only when there is something to look at
        self.conflicts.setIcon(icon("conflict") if n else QIcon())
        if new:  # white on red: readable on any palette
            set_tone(self.conflicts, "", _NEW_STYLE)
        else:
            set_tone(self.conflicts, "error" if n else "", "font-weight: 600;" if n else "")
        if new > self._new:
            self._new = new
            self.conflicts_arrived.emit(new)
        self._new = new

    @property
    def conflict_count(self) -> int:
        """The edits in the conflicts inbox: the conflicts and those put aside shown."""
        return self._count

    def conflicts_seen(self) -> None:
        """The user opened the conflicts view: the count is no longer highlighted as new."""
        self._seen, self._new = self._count, 0
        self._show_conflicts(self._count - self._aside, self._aside)

    def _show_error(self, st: SatStatus, retry_in: float | None) -> None:
        err = st.last_error
        self.last_error = err
        waiting = retry_in if (not st.online and not st.offline_mode) else None
        # a rejection counts the edits in the inbox, as "Conflicts: N" does (the error names
        # only those the last reply rejected)
        self.error.setText(sync_problem(err, waiting, rejected=st.conflicts))
        self.error.setToolTip(f"{err}\n\nClick for the whole text ({ERROR_KEY})" if err else "")
        self.details.setVisible(bool(err))

    UPLOAD_SETTLE_S = 3.0
    """After the hub answered every edit sent, how long the upload's bar waits for pending to
    fall further (the answered edits coming back as the hub's events) before it goes."""

    def _show_progress(self, st: SatStatus, now: float) -> None:
        self._last_st = st
        if not self.meter.update(st, now) or not (st.progress[0] or st.progress[1]):
            if not self._show_upload(st, now):
                self.progress.hide()
            return
        m = self.meter
        # a busy bar (range 0, 0) draws no text: until a share is known the bar stays empty
        self.progress.setRange(0, 1000)
        self.progress.setValue(round((m.fraction or 0.0) * 1000))
        # the short text in the bar (session 15: "52,000 of 100,000 events, 6,295/s, about
        # 8 s left" wrapped on two lines in its 200 px, cut), the whole one in its tooltip
        self.progress.set_texts(m.short(), m.shortest())
        self.progress.setTextVisible(True)
        self.progress.setToolTip(m.detail(st))
        self.progress.show()

    def _show_upload(self, st: SatStatus, now: float) -> bool:
        """The bar of edits going out (no catch-up running; user review 13, F6), by the edits
        synced (the pending count falling: an edit is pending until the hub's copy of it is
        here), not by the hub's answers, which run ahead (session 15: "Sending 2,800 of
        3,000" at 93% while 1,900 were pending, and the bar gone with 200 left). Shown from
        the first edit sent until pending is 0, or, once no edit waits for an answer (the
        connection ended, or every one sent was answered), offline or pending stopped falling
        for :attr:`UPLOAD_SETTLE_S`. True: shown."""
        answered, total = st.sending
        up = self._up
        if up is None:
            if not total:
                return False
            up = self._up = [float(st.pending), float(st.pending), now]
        base, prev, moved = up
        if st.pending > prev:
            base += st.pending - prev  # saved meanwhile: part of what goes out
        if st.pending != prev:
            moved = now
        self._up = up = [base, float(st.pending), moved]
        if (st.pending == 0 or base <= 0
                or (not total and (not st.online or now - moved >= self.UPLOAD_SETTLE_S))):
            self._up = None
            self._up_timer.stop()
            return False
        if not total:
            self._up_timer.start(int((self.UPLOAD_SETTLE_S - (now - moved)) * 1000) + 50)
        done = int(base) - st.pending
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(done * 1000 / base))
        self.progress.set_texts(f"{done:,} of {int(base):,} edits synced",
                                f"{done * 100 // int(base)}% synced")
        self.progress.setTextVisible(True)
        self.progress.setToolTip(
            f"Sending edits: {done:,} of {int(base):,} synced (the hub's copy is here); "
            + (f"the hub answered {answered:,} of the {total:,} sent or to send on this "
               "connection" if total else "the hub answered every one sent: the rest are "
               "confirmed as the hub's copies arrive"))
        self.progress.show()
        return True
