"""The conflicts view: rejected transactions with base / mine / theirs per field.

Every field of a rejected edit is listed, those that did not conflict marked "(no
conflict)": keep theirs drops the whole edit, and the user sees what it drops before
choosing. Under the table (a splitter: the table keeps its height however long the text)
each selected record's conflict in plain words ("they deleted this record; you changed Name
to …") and what each choice does. Keep mine (republish on the current base), keep theirs
(drop my whole edit), or pick per field with the "Keep" check boxes and "Apply choices".
Resolving updates the status at once (the satellite notifies its listeners).

The buttons act on the selected edits only, never on "everything" by default: a row selected
selects every row of its edit; the view opens with the first edit selected; with nothing
selected the buttons are disabled; acting on several edits at once asks first, naming the
count ("Drop your 27 edits?", Cancel the default).

A record created under a key someone else took meanwhile (two laptops offline gave two records
one key) can be kept both ways: "Keep both" (Ctrl+B) publishes mine under a new key, shown
and editable under the table, and theirs stays; "Keep mine" would set my values on their
record (the fields only theirs has stay, listed as rows), so it asks first. A required field
of a record a resolution creates is shown ticked and greyed, with a tooltip saying why
(``ConflictRow.locked``).
"""

from __future__ import annotations

import html
import itertools

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.errors import OutpostError, ValidationError
from core.ids import clean_key
from core.model import Sig
from core.satellite.api import Change, Keep, SatelliteAPI
from core.satellite.conflicts import SETTLED, latest_settled
from core.satellite.keepboth import check_new_keys
from desktop.format import plural
from desktop.icons import icon
from desktop.look import set_tone
from desktop.models.conflicts import ConflictsModel

__all__ = ["BOTH_KEY", "ConflictsDialog"]

BOTH_KEY = "Ctrl+B"
"""The conflicts view's shortcut for Keep both."""

_NOTHING, _LOOK, _REBUILD = 0, 1, 2
"""What the changes the conflicts view missed call for (:meth:`ConflictsDialog.catch_up`)."""

RESOLVE_PROGRESS = 20
"""From this many edits resolved at once the view shows their progress (and Cancel)."""
RESOLVE_CHUNK = 20
"""Keep mine / keep theirs on many: edits resolved per step, in one local commit each
(``Satellite.resolve_many``): Cancel and the window's events between two steps."""


class ConflictsDialog(QDialog):
    """Lists conflicts and resolves them through :meth:`SatelliteAPI.resolve`.

    Signals:
        failed(str): resolving failed; the message says why.
        resolved(str): what a resolution did that the rows no longer show (Keep both: the
            new key of the user's record), for the window's status bar.
    """

    failed = Signal(str)
    resolved = Signal(str)

    def __init__(self, sat: SatelliteAPI, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Conflicts — Outpost")
        self.setWindowIcon(icon("conflict"))
        self.resize(1000, 524)
        self._sat = sat
        self.model = ConflictsModel(sat, self)
        # what the changes since the rows were built call for (nothing, a look at the
        # inbox's stamp, a rebuild), judged without a read as each comes: hidden, acted on
        # at the next show; shown, once per turn of the event loop (session 13: after the
        # view was opened once, every change rebuilt its rows, closed or not)
        self._missed = _NOTHING
        self._catching_up = False
        self._unlisten = sat.listen(self._on_change)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        # several rows: about six, whatever the details say (they scroll instead)
        self.table.setMinimumHeight(self.table.verticalHeader().defaultSectionSize() * 6 + 30)
        # Tab leaves the table for the details and the buttons (review a11y 16: it walked the
        # cells and wrapped, so a keyboard alone could not reach Keep mine); the arrows move
        # in it, Space ticks a field's Keep
        self.table.setTabKeyNavigation(False)
        self.keep_mine = QPushButton("&Keep mine")
        self.keep_mine.setToolTip("Publish my change again on top of theirs")
        self.keep_theirs = QPushButton("Keep &theirs")
        self.keep_theirs.setToolTip(
            "Drop my whole change, every field listed for it (those marked \"no conflict\" "
            "too); the hub's values stay")
        self.keep_both = QPushButton("Keep &both")
        self.keep_both.setToolTip(
            "For a record you created under a key someone else took meanwhile: add yours as a "
            "new record under the new key shown below (refs of your edit to it follow); their "
            f"record stays as it is ({BOTH_KEY})")
        self.both_action = QAction("Keep both", self)
        self.both_action.setShortcut(QKeySequence(BOTH_KEY))
        self.both_action.triggered.connect(self.keep_both.click)  # a disabled button: no-op
        self.addAction(self.both_action)
        self.apply = QPushButton("&Apply choices")
        self.apply.setToolTip("Per field: checked keeps mine, unchecked keeps theirs (a "
                              "delete: checked deletes anyway)")
        self.close_button = QPushButton("&Close")
        self.keep_mine.clicked.connect(lambda: self.resolve_selected(Keep.MINE))
        self.keep_theirs.clicked.connect(lambda: self.resolve_selected(Keep.THEIRS))
        self.keep_both.clicked.connect(lambda: self.resolve_selected(Keep.BOTH))
        self.apply.clicked.connect(lambda: self.resolve_selected(None))
        self.close_button.clicked.connect(self.close)
        # no default button: a QDialog's push buttons are "auto default", so Enter pressed in
        # the table (to move on, or by mistake) clicked Keep mine, the first of them. A
        # choice that drops or sends edits takes a click or Space on the focused button
        for b in (self.keep_mine, self.keep_theirs, self.keep_both, self.apply,
                  self.close_button):
            b.setAutoDefault(False)
            b.setDefault(False)
        buttons = QHBoxLayout()
        for b in (self.keep_mine, self.keep_theirs, self.keep_both, self.apply):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # a Tab stop: the conflict in words is read (and copied) from the keyboard too
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                             | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.details.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # (ClickFocus by the flags)
        self.details_area = QScrollArea()
        self.details_area.setWidget(self.details)
        self.details_area.setWidgetResizable(True)
        self.details_area.setFrameShape(QFrame.Shape.NoFrame)
        # three lines at least: a record's conflict in words reads whole or scrolls
        self.details_area.setMinimumHeight(self.details.fontMetrics().lineSpacing() * 3 + 6)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.table)
        self.split.addWidget(self.details_area)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([300, 100])
        # keep both: which records clash, what each choice does, the new key (editable)
        self.both_text = QLabel()
        self.both_text.setWordWrap(True)
        self.both_text.setTextFormat(Qt.TextFormat.PlainText)
        self.new_key = QLineEdit()
        self.new_key.setToolTip("The key your record gets with Keep both: a free one is "
                                "offered; type another if you like (it must be free)")
        self.new_key_label = QLabel("&New key for your record (Keep both):")
        self.new_key_label.setBuddy(self.new_key)
        # the typed key is checked as typed (Keep both disabled while it is not a free,
        # valid key): a refused key and a failed resolution showed only in the main
        # window's status bar, behind this dialog (field-team review 10)
        self.new_key.textChanged.connect(self._check_new_key)
        self.key_error = QLabel()
        self.key_error.setObjectName("key_error")
        self.key_error.setWordWrap(True)
        self.key_error.setTextFormat(Qt.TextFormat.PlainText)
        set_tone(self.key_error, "error")
        self.key_error.hide()
        self.error = QLabel()  # why the last resolution failed, until the next one
        self.error.setObjectName("resolve_error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        set_tone(self.error, "error", "font-weight: 600;")
        self.error.hide()
        # after Keep both: the user's later edits that stayed on their record (merge review
        # 11: only `outpost resolve` named them), until the next resolution
        self.later = QLabel()
        self.later.setObjectName("later_edits")
        self.later.setWordWrap(True)
        self.later.setTextFormat(Qt.TextFormat.PlainText)
        set_tone(self.later, "warn")
        self.later.hide()
        key_row = QHBoxLayout()
        key_row.addWidget(self.new_key_label)
        key_row.addWidget(self.new_key, 1)
        self._proposed: dict[str, dict[str, str]] = {}  # uid -> {"top key": new key}
        self._typed: tuple[str, str] | None = None  # (uid, sig) the line edit holds a key of
        self.confirm_box: QMessageBox | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(self.intro)
        lay.addWidget(self.split, 1)
        lay.addWidget(self.both_text)
        lay.addLayout(key_row)
        lay.addWidget(self.key_error)
        lay.addWidget(self.error)
        lay.addWidget(self.later)
        lay.addLayout(buttons)
        self._following = False  # _follow_selection is selecting whole edits
        self._kept: list[str] = []  # the uids selected before the model's last reset
        self.model.modelAboutToBeReset.connect(self._keep_selection)
        self.model.modelReset.connect(self._update)
        self.table.selectionModel().selectionChanged.connect(self._follow_selection)
        # Tab: the rows, the conflict in words (then its scroll area: the arrows scroll a
        # long one), the new key (Keep both), then the buttons
        order = (self.table, self.details, self.details_area, self.new_key, self.keep_mine,
                 self.keep_theirs, self.keep_both, self.apply, self.close_button)
        for a, b in itertools.pairwise(order):
            QWidget.setTabOrder(a, b)
        self._update()
        self.select_first()

    def selected_uids(self) -> list[str]:
        """The transactions of the selected rows, in the table's order (none selected:
        none; never all by default)."""
        n = self.model.rowCount()
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()
                       if 0 <= i.row() < n})
        return list(dict.fromkeys(self.model.row(r).uid for r in rows))

    def select_uids(self, uids: list[str] | set[str]) -> None:
        """Select every row of the transactions ``uids`` (and nothing else)."""
        want = set(uids)
        sel = QItemSelection()
        last = self.model.columnCount() - 1
        for r, row in enumerate(self.model.rows()):
            if row.uid in want:
                sel.select(self.model.index(r, 0), self.model.index(r, last))
        sm = self.table.selectionModel()
        self._following = True
        try:
            sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._following = False
        self._update_buttons()
        self._show_details()

    def select_first(self) -> None:
        """Select the first edit when none is selected: what the view frames at first is
        what its buttons act on."""
        uids = self.model.uids()
        if uids and not self.selected_uids():
            self.select_uids(uids[:1])
            self.table.scrollToTop()

    def showEvent(self, event: QShowEvent) -> None:
        self.catch_up()  # what changed while hidden, before it paints
        self.select_first()
        super().showEvent(event)

    def _on_change(self, ch: Change) -> None:
        """A change notice: kept (no read, no rebuild); shown, looked at on the next turn of
        the event loop, with the others that came by then."""
        if self.model.holding:
            return  # resolving: the rows are rebuilt once after
        if self.model.touches(ch):
            self._missed = _REBUILD
        elif ch.receipts:
            self._missed = max(self._missed, _LOOK)
        if self.isVisible() and self._typed is not None and not self.new_key.isHidden():
            self._check_new_key()  # the key typed for Keep both may be taken now (one read)
        if self.isVisible() and not self._catching_up:
            self._catching_up = True
            QTimer.singleShot(0, self.catch_up)

    def catch_up(self) -> bool:
        """Rebuild the rows if the changes since they were built may change them
        (:meth:`ConflictsModel.wants`); True when it did."""
        self._catching_up = False
        missed, self._missed = self._missed, _NOTHING
        if missed == _NOTHING or (missed == _LOOK and not self.model.inbox_changed()):
            return False
        self.model.refresh()
        return True

    def _confirm(self, keep: Keep | None, n: int, over: bool = False) -> bool:
        """Ask before acting on several edits at once (Cancel is the default); ``over``:
        all are on the hub already, over a colleague's change (ConflictsModel.overwrote)."""
        if over and keep == Keep.THEIRS:
            text, yes = f"Send theirs back for {n} edits?", f"Send back for {n} edits"
            info = (f"Keep theirs sends back the colleagues' values the {n} selected edits "
                    "overwrote on the hub, as new edits.")
        elif over and keep == Keep.MINE:
            text, yes = f"Leave your {n} edits?", f"Keep mine for {n} edits"
            info = (f"Keep mine leaves the {n} selected edits on the hub as they are; the "
                    "values they overwrote are not sent back.")
        elif keep == Keep.THEIRS:
            text, yes = f"Drop your {n} edits?", f"Drop {n} edits"
            info = (f"Keep theirs drops every field of the {n} selected edits, those marked "
                    "“no conflict” too; the hub's values stay. Dropped edits cannot be "
                    "brought back.")
        elif keep == Keep.MINE:
            text, yes = f"Send your {n} edits again?", f"Keep mine for {n} edits"
            info = (f"Keep mine sends every field of the {n} selected edits again, on top "
                    "of the changes made on the hub.")
        elif keep == Keep.BOTH:
            text, yes = f"Keep both for {n} edits?", f"Keep both for {n} edits"
            info = (f"Each of the {n} selected edits adds its record under a new key; the "
                    "records created on the hub under those keys stay as they are.")
        else:
            text, yes = f"Apply your choices to {n} edits?", f"Apply to {n} edits"
            info = (f"For each of the {n} selected edits: the ticked fields are sent again, "
                    "the unticked ones dropped.")
        box = QMessageBox(QMessageBox.Icon.Warning, "Resolve conflicts", text,
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("confirm_resolve")
        box.setInformativeText(info)
        ok = box.addButton(yes, QMessageBox.ButtonRole.DestructiveRole
                           if keep == Keep.THEIRS else QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        return box.clickedButton() is ok

    def resolve_selected(self, keep: Keep | None) -> list[str]:
        """Resolve the selected transactions (none selected: nothing); ``None`` applies the
        per-field choices. Several at once are confirmed first.

        Keep mine of a transaction that created a record under a key someone else took
        meanwhile asks first (it sets the user's values on their record): nothing is resolved until
        the question (:attr:`confirm_box`) is answered. Keep both resolves the selected
        transactions that have such a record.

        Returns the uids of the new transactions published.
        """
        uids = self.selected_uids()
        if not uids or self.model.holding:  # resolving already (its progress is up)
            return []
        self.show_error("")
        if keep in (Keep.MINE, None):
            # Apply choices with a field of mine ticked changes their record just as well
            clashing = [(u, sig) for u in uids for sig in self._clashes(u)]
            if clashing:
                self._confirm_mine(uids, clashing, keep)  # names them, and the count
                return []
        if keep == Keep.BOTH:
            uids = [u for u in uids if self._clashes(u)]
        return self._resolve_asked(uids, keep)

    def _resolve_asked(self, uids: list[str], keep: Keep | None,
                       confirm: bool = True) -> list[str]:
        """Resolve ``uids`` once the put-aside edits among them are asked about, or (none,
        ``confirm``) several at once are confirmed: every path that may send a put-aside
        edit again asks (session 14: Apply choices and the "sets your values on their
        record" question sent them again without a word)."""
        aside = ([u for u in uids if self.model.put_aside(u)]
                 if keep != Keep.BOTH and len(uids) > 1 else [])
        left_out: list[str] = []
        if aside and len(aside) < len(uids):
            # put-aside edits among others (review muser 13: they were sent again or
            # dropped without a word): named, and left out unless the user says otherwise
            take = self._confirm_aside(keep, uids, aside)
            if take is None:
                return []
            if not take:
                left_out = aside
                uids = [u for u in uids if u not in set(aside)]
        elif confirm and len(uids) > 1 and not self._confirm(
                keep, len(uids), all(self.model.overwrote(u) for u in uids)):
            return []
        return self._resolve(uids, keep, left_out=left_out)

    def _aside_names(self, uids: list[str]) -> str:
        """The records of the edits ``uids``, named by their rows' labels (five at most)."""
        names = [next((r.label or r.sig for r in self.model.rows() if r.uid == u), u)
                 for u in uids]
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    def _confirm_aside(self, keep: Keep | None, uids: list[str], aside: list[str]
                       ) -> bool | None:
        """Ask before keep mine/theirs on several edits, some of them put aside (sent, the
        answer lost: the hub may hold them already): True resolves them too, False leaves
        them out (the default), None resolves nothing (Cancel)."""
        n, m = len(uids), len(aside)
        rest = n - m
        mine = keep != Keep.THEIRS
        what = ("Keep mine" if keep == Keep.MINE else "Keep theirs" if keep == Keep.THEIRS
                else "Apply choices")
        text = (f"{m} of the {n} selected edits {'was' if m == 1 else 'were'} put aside: "
                f"sent to the hub, the answer lost ({self._aside_names(aside)}).")
        info = ("The hub may hold them already. "
                + ("Keep mine sends them again" if keep == Keep.MINE else
                   "Apply choices sends them again whole (they have no field to choose)"
                   if keep is None else "Keep theirs drops them, even if the hub holds them")
                + f"; leave them out to look at each first. {what} acts on the other "
                + (f"{rest} edits." if rest != 1 else "edit.")
                + " Dropped edits cannot be brought back." * (not mine))
        box = QMessageBox(QMessageBox.Icon.Warning, "Resolve conflicts", text,
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("confirm_resolve_aside")
        box.setInformativeText(info)
        out = box.addButton(f"{what} for {rest}, leave {m} put aside out",
                            QMessageBox.ButtonRole.AcceptRole)
        every = box.addButton(f"{what} for all {n}", QMessageBox.ButtonRole.ActionRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(out)
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        return True if clicked is every else False if clicked is out else None

    def _resolve(self, uids: list[str], keep: Keep | None,
                 left_out: list[str] | None = None) -> list[str]:
        """Resolve ``uids`` one after the other, the rows rebuilt once at the end (not after
        each edit: session 13), with a progress dialog for many (window-modal: each step
        hands pending events to the window, which paints; Cancel stops between two edits,
        those resolved stay resolved). The first that fails stops it, said in the view.
        A Cancel says how many were resolved, in the view and the status bar, and leaves
        nothing selected (review muser 13), as do put-aside edits ``left_out``."""
        out: list[str] = []
        said: list[str] = []
        done = 0
        stopped = False
        aside = {u for u in uids if self.model.put_aside(u)} if len(uids) > 1 else set()
        n_aside = n_again = 0  # put-aside edits resolved, and sent again
        progress = self._progress(len(uids)) if len(uids) >= RESOLVE_PROGRESS else None
        # keep mine / keep theirs: RESOLVE_CHUNK edits a step, each step one local commit
        # (Satellite.resolve_many, session 14: a commit per edit, ~10 ms each); a step
        # resolves all its edits or none
        whole = keep in (Keep.MINE, Keep.THEIRS)
        steps = ([uids[i:i + RESOLVE_CHUNK] for i in range(0, len(uids), RESOLVE_CHUNK)]
                 if whole else [[u] for u in uids])
        try:
            with self.model.held():
                for i, uid in enumerate(uids):
                    if whole and i % RESOLVE_CHUNK:
                        continue  # in the step of the edit before
                    if progress is not None:
                        if progress.wasCanceled():
                            stopped = True
                            break
                        progress.setLabelText(f"Resolving {i + 1} of {len(uids)} edits…")
                        progress.setValue(i)  # modal: the window takes its events here
                    if whole:
                        chunk = steps[i // RESOLVE_CHUNK]
                        assert keep is not None
                        try:
                            news = self._sat.resolve_many(chunk, keep, seen=self.model.seen)
                        except OutpostError as exc:
                            self.failed.emit(f"cannot resolve: {exc}")
                            self.show_error(f"Cannot resolve: {exc}")
                            break
                        done += len(chunk)
                        for u, new in zip(chunk, news, strict=True):
                            n_aside += u in aside
                            if new:
                                out.append(new)
                                n_again += u in aside
                        continue
                    try:
                        choice: Keep | dict[str, dict[str, Keep]] = (
                            keep if keep is not None else self.model.picks(uid))
                        if keep == Keep.BOTH and i and not all(
                                self._free(sig, k) for sig, k in self._clashes(uid).items()):
                            # the key offered went to the edit resolved before (the rows
                            # are not rebuilt in between, which drew another one)
                            del self._proposed[uid]
                        keys = self._keys(uid) if keep == Keep.BOTH else None
                        names = {sig: self._record_name(uid, sig) for sig in keys or {}}
                        new = self._sat.resolve(uid, choice, keys=keys, seen=self.model.seen)
                    except OutpostError as exc:
                        self.failed.emit(f"cannot resolve: {exc}")
                        self.show_error(f"Cannot resolve: {exc}")
                        break
                    done += 1
                    n_aside += uid in aside
                    if new:
                        out.append(new)
                        n_again += uid in aside
                    for sig, k in (keys or {}).items():  # user review 12: it said nothing
                        said.append(self._kept_both_text(sig, k))
                        self.resolved.emit(said[-1])
                    try:  # resolved: a failed read here must not say it was not
                        later = self._sat.later_edits(uid, keys) if keys else {}
                    except OutpostError as exc:
                        said.append(f"Kept both; its later edits could not be read: {exc}")
                        continue
                    said += [_later_text(names[sig], (keys or {})[sig], len(us))
                             for sig, us in later.items()]
        finally:
            if progress is not None:
                progress.close()
                progress.deleteLater()
            summary = self._summary(keep, len(uids), done, stopped, n_aside, n_again,
                                    left_out or [])
            said += summary
            self.later.setText("\n".join(said))
            self.later.setVisible(bool(said))
            self._missed = _NOTHING  # rebuilt now: what came meanwhile is in the rows
            self.model.refresh()
            if summary:
                self.select_uids([])  # those left are not picked for the next click
                self.resolved.emit(" ".join(summary))
        return out

    def _summary(self, keep: Keep | None, n: int, done: int, stopped: bool,
                 n_aside: int, n_again: int, left_out: list[str]) -> list[str]:
        """What a resolve of ``n`` edits says beyond the rows: stopped by Cancel after
        ``done``; ``n_aside`` put-aside edits among them resolved, ``n_again`` of them sent
        again (the others dropped); the put-aside ones ``left_out``."""
        how = {Keep.MINE: " (kept mine: sent again)", Keep.THEIRS: " (kept theirs: dropped)",
               Keep.BOTH: " (kept both)", None: " (choices applied)"}[keep]
        lines = []
        if stopped:
            lines.append(f"Stopped: {done:,} of {plural(n, 'edit')} resolved{how}; "
                         f"{n - done:,} left.")
        if n_again:
            lines.append(f"{plural(n_again, 'put-aside edit')} sent again.")
        if n_aside - n_again:
            lines.append(f"{plural(n_aside - n_again, 'put-aside edit')} dropped"
                         + (" (nothing to send again: the hub holds your values)."
                            if keep in (Keep.MINE, None) else "."))
        if left_out:
            m = len(left_out)
            lines.append(f"Left out {plural(m, 'put-aside edit')} (sent, the answer lost): "
                         f"still listed; select {'it' if m == 1 else 'them'} to send again "
                         "or drop.")
        return lines

    def _progress(self, n: int) -> QProgressDialog:
        """The progress of resolving ``n`` edits."""
        p = QProgressDialog(f"Resolving {n} edits…", "Cancel", 0, n, self)
        p.setObjectName("resolve_progress")
        p.setWindowTitle("Resolve conflicts")
        p.setWindowModality(Qt.WindowModality.WindowModal)
        # shown at once (not after 0.3 s as an import's): window-modal, it keeps the
        # window's clicks (another Keep mine, closing it) out while its events are handled
        p.setMinimumDuration(0)
        p.setAutoClose(False)
        p.setAutoReset(False)
        p.setValue(0)
        p.show()
        return p

    def show_error(self, text: str) -> None:
        """Show why a resolution failed (empty: hide it) in the dialog itself."""
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def key_problem(self) -> str:
        """What is wrong with the key typed for Keep both (empty: nothing, or no key is
        typed): the checks ``resolve`` makes (``check_new_keys``: valid for its model,
        free), and not a key the edit itself uses."""
        if self._typed is None or self.new_key.isHidden():
            return ""
        uid, sig = self._typed
        top, _, old = sig.partition(" ")
        key = clean_key(self.new_key.text())
        if key and any((r.top, r.key) == (top, key) for r in self.model.rows()
                       if r.uid == uid):
            return (f"the new key {key!r} for {top} {old} is a key this edit uses itself: "
                    "give another")
        try:
            check_new_keys(self._sat.project, [], {Sig(top, old): self.new_key.text()},
                           lambda sigs: {s: self._free(f"{s.top} {s.key}", s.key)
                                         for s in sigs})
        except ValidationError as exc:
            return str(exc)
        return ""

    def _check_new_key(self, *_: object) -> None:
        """Keep both is enabled only with a valid, free key typed; why not shows below it."""
        problem = self.key_problem()
        self.key_error.setText(f"⚠ {problem[:1].upper()}{problem[1:]}" if problem else "")
        self.key_error.setVisible(bool(problem))
        if problem:
            self.keep_both.setEnabled(False)
            self.both_action.setEnabled(False)
        elif self._typed is not None:
            self.keep_both.setEnabled(True)
            self.both_action.setEnabled(True)

    def _clashes(self, uid: str) -> dict[str, str]:
        """The records of ``uid`` created under a key taken meanwhile and the new key keep
        both offers each (asked once per transaction: a UUID offered is not drawn again)."""
        got = self._proposed.get(uid)
        if got is None:
            try:
                got = self._sat.both_keys(uid)
            except OutpostError:
                got = {}
            self._proposed[uid] = got
        return got

    def _free(self, sig: str, key: str) -> bool:
        rv = self._sat.record(sig.partition(" ")[0], key)
        return rv is None or (rv.fields is None and rv.confirmed is None)

    def _keys(self, uid: str) -> dict[str, str]:
        keys = dict(self._clashes(uid))
        if self._typed is not None and self._typed[0] == uid and not self.new_key.isHidden():
            keys[self._typed[1]] = self.new_key.text()
        return keys

    def _confirm_mine(self, uids: list[str], clashing: list[tuple[str, str]],
                      keep: Keep | None = Keep.MINE) -> None:
        """Ask before keep mine (or Apply choices, ``keep`` None) replaces the values of
        records someone else created; with several edits selected the box says how many."""
        names = ", ".join(dict.fromkeys(self._record_name(u, sig) for u, sig in clashing))
        what = "Keep mine" if keep == Keep.MINE else "Apply choices"
        many = (f"\n\n{what} acts on the {len(uids)} selected edits." if len(uids) > 1
                else "")
        pairs = set(clashing)
        only = list(dict.fromkeys(self.model.title(r.top, r.field) for r in self.model.rows()
                                  if r.theirs_only and (r.uid, r.sig) in pairs))
        kept = (f" The fields only theirs has stay as they are: {', '.join(only)}."
                if only else "")
        box = QMessageBox(QMessageBox.Icon.Warning, f"{what} sets your values on their record",
                          f"You created {names} under a key someone else used for their own "
                          f"record meanwhile.\n\n{what} sets your values on their record: "
                          f"one record is left, theirs with your values.{kept} Keep both adds "
                          "yours as a new record under a new key and leaves theirs as it is."
                          + many,
                          QMessageBox.StandardButton.Cancel, self)
        replace = box.addButton("Set my values on their record",
                                QMessageBox.ButtonRole.AcceptRole)
        both = box.addButton("Keep both instead", QMessageBox.ButtonRole.ActionRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button: QAbstractButton) -> None:
            self.confirm_box = None
            if button is replace:
                # the put-aside edits among them are asked about too (session 14: sent
                # again without a word); the count was said in this box
                self._resolve_asked(uids, keep, confirm=False)
            elif button is both:
                self._resolve([u for u in uids if self._clashes(u)], Keep.BOTH)

        box.buttonClicked.connect(answered)
        self.confirm_box = box
        box.open()

    def _kept_both_text(self, sig: str, new_key: str) -> str:
        """Keep both's result for the record ``sig``, as ``outpost resolve`` says it: "Kept
        both: yours is now Plots 7; theirs stays Plots 3"."""
        top, _, key = sig.partition(" ")
        m = self._sat.project.model(top)

        def named(k: str) -> str:
            return f"{m.title} {k}" if m.key == "int" else f"{m.title}, key {k}"
        return f"Kept both: yours is now {named(new_key)}; theirs stays {named(key)}."

    def _record_name(self, uid: str, sig: str) -> str:
        top, _, key = sig.partition(" ")
        label = next((r.label for r in self.model.rows()
                      if r.uid == uid and (r.top, r.key) == (top, key)), "") or sig
        # the row's label names the record as the hub has it (theirs): only its topic part
        return f"a record in {label.partition(': ')[0]} (key {key})"

    def _update_both(self, uids: list[str]) -> None:
        """Keep both's sentence, button and new key for the transactions ``uids``."""
        clashing = [(u, sig, k) for u in uids for sig, k in self._clashes(u).items()]
        self.keep_both.setEnabled(bool(clashing))
        self.both_action.setEnabled(bool(clashing))
        one = len(clashing) == 1
        self.new_key.setVisible(one)
        self.new_key_label.setVisible(one)
        if not clashing:
            self.both_text.setText("")
            self.both_text.setVisible(False)
            self._typed = None
            self._check_new_key()
            return
        if one:
            u, sig, k = clashing[0]
            if self._typed != (u, sig):
                self._typed = (u, sig)
                self.new_key.setText(k)
            where = "under the key below"
        else:
            where = "under new keys (" + ", ".join(
                f"{self._record_name(u, sig)} → {k}" for u, sig, k in clashing) + ")"
        names = ", ".join(dict.fromkeys(self._record_name(u, sig) for u, sig, _ in clashing))
        self.both_text.setText(
            f"You created {names} under a key someone else used for their own record "
            f"meanwhile. Keep both: yours is added as a new record {where}, theirs stays as "
            "it is. Keep mine: your values are set on their record (what only theirs has "
            "stays), one record is left. Keep theirs: yours is dropped.")
        self.both_text.setVisible(True)
        self._check_new_key()

    def _settled_text(self) -> str:
        """The latest edits settled by themselves, said under the intro (user review 13 F4:
        both set lon to 9.9; they never reach the table: nothing to choose)."""
        items = []
        for r, by in latest_settled(self._sat):
            recs = ", ".join(dict.fromkeys(
                f"{self.model.record_label(c.top, c.key, r)} ("
                + ", ".join(self.model.title(c.top, f) for f in c.fields) + ")"
                for c in r.conflicts))
            items.append(html.escape(recs) + (": your other changes were sent" if by is not None
                                              else ": nothing else to send"))
        # "settled: same values on both sides", as `outpost conflicts` says it
        why = html.escape(SETTLED.partition(": ")[2])
        return (f"<i>Settled by themselves ({why}):</i> " + "; ".join(items)) if items else ""

    def _update(self) -> None:
        n = len(self.model.uids())
        aside = sum(1 for u in self.model.uids() if self.model.put_aside(u))
        if n and aside == n:
            self.intro.setText(
                (f"{n} edits of yours were" if n != 1 else "1 edit of yours was")
                + " sent to the hub, but the answer was lost: the hub may or may not hold "
                "them. <b>Mine</b> is your edit, <b>Theirs</b> what the hub holds now. Send it "
                "again (keep mine) if the hub does not hold it; drop it (keep theirs) if it "
                "does.")
        elif n and all(self.model.overwrote(u) for u in self.model.uids()):
            self.intro.setText(
                (f"{n} edits of yours" if n != 1 else "1 edit of yours")
                + " overwrote a colleague's change: the hub (a daql hub) had taken theirs just "
                "before yours arrived and applied yours over it. <b>Mine</b> is your value, "
                "now on the hub, <b>Theirs</b> the value it overwrote. Keep mine leaves "
                "yours; <b>keep theirs sends theirs back</b> as a new edit; or tick per "
                "field which to keep and apply.")
        elif n:
            # refused here, never sent (a daql hub): said, not "rejected" (session 12)
            here = sum(1 for u in self.model.uids() if self.model.not_sent(u))
            self.intro.setText(
                (f"{n} changes of yours conflict" if n != 1 else "1 change of yours conflicts")
                + " with changes made on the hub"
                + ("; found here, not sent: this hub (a daql hub) does not check an edit "
                   "against newer changes, so sending would have overwritten them"
                   if here == n else f"; {here} of them found here, not sent (a daql hub "
                   "does not check an edit against newer changes)" if here else "")
                + ". For each field: <b>Base</b> is the value you started from, "
                "<b>Mine</b> your change, <b>Theirs</b> the hub's; fields marked <i>no "
                "conflict</i> collided with nothing but were "
                + ("held back" if here == n else "rejected") + " with the rest. Keep "
                "mine sends every field of your change"
                + ("" if here == n else " again") + "; <b>keep theirs drops all of "
                "them</b>; or tick per field which to keep and apply.")
        else:
            self.intro.setText("No conflicts: every change you made was accepted or is "
                               "waiting to be sent.")
        settled = self._settled_text()
        if settled:
            self.intro.setText(f"{self.intro.text()}<br>{settled}")
        # keys offered stay while they are free (hub data may have taken one since)
        listed = set(self.model.uids())
        self._proposed = {u: k for u, k in self._proposed.items()
                          if u in listed and all(self._free(sig, key) for sig, key in k.items())}
        self.table.resizeColumnsToContents()
        for c in range(self.model.columnCount()):
            if self.table.columnWidth(c) > 220:
                self.table.setColumnWidth(c, 220)
        # the edits selected before the reset, those still listed (none: nothing selected,
        # the buttons disabled: a resolved edit's neighbour is not picked for the user)
        kept, self._kept = self._kept, []
        left = set(kept) & set(self.model.uids())
        if left:
            self.select_uids(left)
        self._update_buttons()
        self._show_details()

    def _keep_selection(self) -> None:
        self._kept = self.selected_uids()

    def _update_buttons(self) -> None:
        uids = self.selected_uids()
        on = bool(uids)
        for b in (self.keep_mine, self.keep_theirs, self.apply):
            b.setEnabled(on)
        # edits put aside (sent, their answer lost) are sent again or dropped whole: no
        # per-field choice for them, and the buttons say so when only they are selected
        aside = on and all(self.model.put_aside(u) for u in uids)
        if aside:
            self.apply.setEnabled(False)
        # edits on the hub already, over a colleague's change: keep theirs sends theirs back
        over = on and all(self.model.overwrote(u) for u in uids)
        # the same mnemonics whatever the words (Alt+K, Alt+T)
        self.keep_mine.setText("Send it again (&keep mine)" if aside
                               else "Leave it (&keep mine)" if over else "&Keep mine")
        self.keep_theirs.setText("Drop it (keep &theirs)" if aside
                                 else "Send theirs back (keep &theirs)" if over
                                 else "Keep &theirs")

    def _follow_selection(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        """A row selected or deselected takes every row of its edit along (the buttons act
        on whole edits: the selection shows all they act on)."""
        if not self._following:
            n = self.model.rowCount()

            def uids(sel: QItemSelection) -> set[str]:
                return {self.model.row(i.row()).uid for i in sel.indexes()
                        if i.isValid() and 0 <= i.row() < n}

            added = uids(selected)
            want = (set(self.selected_uids()) | added) - (uids(deselected) - added)
            if want != set(self.selected_uids()) or added:
                self.select_uids(want)
                return
        self._update_buttons()
        self._show_details()

    def _show_details(self, *_: object) -> None:
        """The selected transactions' conflicts in plain words."""
        uids = self.selected_uids()
        if uids:
            self.details.setText("\n".join(f"• {t}" for t in self.model.explain(uids)))
        elif self.model.rowCount():
            self.details.setText("Select an edit to see its conflict in words and resolve "
                                 "it (Ctrl+A selects them all).")
        else:
            self.details.setText("")
        self._update_both(uids)

    def detach(self) -> None:
        """Stop following the satellite (the dialog is going away)."""
        self._unlisten()
        self._unlisten = lambda: None


def _later_text(name: str, new_key: str, n: int) -> str:
    """What Keep both left behind, in the app's words (``outpost resolve`` says it too):
    the user's ``n`` later edits of the record ``name``, saved before the conflict was
    known, stayed on its key, i.e. on their record, not on the user's one (``new_key``)."""
    them = "it" if n == 1 else "them"
    return (f"Kept both: {plural(n, 'later edit')} you made to {name} before the conflict "
            f"was known stayed on that key, now their record; yours is now key {new_key}. "
            f"Check {them} in History (Ctrl+H) and make {them} again on {new_key} if meant "
            "for yours.")
