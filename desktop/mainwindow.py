"""The main window: topics sidebar, records table with filter, record form, history,
conflicts, status bar; new / save / delete / undo / redo through the embedded satellite.

Widgets only display and forward: every edit becomes actions published with
:meth:`SatelliteAPI.pub`; every satellite change notice is forwarded to the item models.
Slots turn errors into visible messages (status bar, form, message box).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QItemSelection, QModelIndex, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QKeySequence,
    QShortcut,
    QStatusTipEvent,
    QTextCursor,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.errors import OutpostError
from core.model import Action, Cmd
from core.revision import Rev, format_rev, parse_rev
from core.satellite.api import Change, ReceiptState, SatelliteAPI
from desktop.drafts import DRAFTS_FILE, Draft, load_drafts, save_drafts
from desktop.format import (
    BAD_HUB_VALUE,
    bad_value_steps,
    new_dir_steps,
    plural,
    stopped_for_good,
)
from desktop.headless import CsvImport, cell_text
from desktop.icons import icon, refresh_icons, set_icon
from desktop.look import retone
from desktop.models.records import RecordTableModel
from desktop.models.topics import TopicListModel
from desktop.sync import NoSync, SyncControl
from desktop.undo import PubCommand, RevertCommand, inverse
from desktop.widgets.conflicts import ConflictsDialog
from desktop.widgets.csvjob import CsvJob, ExportRun, export_steps, import_steps
from desktop.widgets.form import REVERT_KEY, RecordForm
from desktop.widgets.help import HELP_KEY, FilterKeys, ShortcutsDialog, about_text, shortcut_rows
from desktop.widgets.history import HistoryView
from desktop.widgets.keys import undo_falls_through
from desktop.widgets.statusbar import ERROR_KEY, SYNC_KEY, SyncStatusBar

__all__ = ["DRAFT_DELAY_MS", "MainWindow"]

log = logging.getLogger("outpost.desktop")

DRAFT_DELAY_MS = 1000
"""The unsaved typing is written to the drafts file this long after the last edit."""

_BOX_LINES = 12
"""A CSV result longer than this many lines shows them in a scrollable text view."""


class MainWindow(QMainWindow):
    """One satellite's window.

    Args:
        sat: the satellite (replica + local queue) this window edits.
        sync: the sync controls ("work offline", "sync now").
        title: shown in the window title (profile name).
        on_settings: called by File → Connection settings (the app opens its dialog).
    """

    def __init__(self, sat: SatelliteAPI, sync: SyncControl | None = None, title: str = "",
                 on_settings: Callable[[], None] | None = None):
        super().__init__()
        self.sat = sat
        self.sync = sync or NoSync()
        self._on_settings = on_settings
        self.setWindowTitle(f"Outpost — {title}" if title else "Outpost")
        self.setWindowIcon(icon("app"))
        self.resize(1200, 750)
        self.undo_stack = QUndoStack(self)
        self.topics = TopicListModel(sat, self)
        self.topics.reloading = lambda top: (top in self.record_models
                                             and self.record_models[top].reloading)
        self.record_models: dict[str, RecordTableModel] = {}
        self.forms: dict[str, RecordForm] = {}
        self._form_chains: dict[int, list[QWidget]] = {}  # a form's Tab stops (_tab_order)
        self.conflicts_dialog: ConflictsDialog | None = None
        self._top = ""
        self.csv_job: CsvJob | None = None  # an import or export running
        self.csv_box: QMessageBox | None = None  # its summary, error or what a cancel left
        # the rows without a key the import that just ended skipped as repeats: (file, sheet,
        # their lines, the file's stamp), for the result box's "Make them anyway"
        self._csv_again: tuple[str, bool, frozenset[int], tuple[int, int, int]] | None = None
        # the unsaved typing kept at SIGTERM (keep_drafts), put back at the next start
        data = getattr(getattr(sat, "data", None), "path", None)
        self.drafts_path: Path | None = Path(data) / DRAFTS_FILE if data else None
        self.terminating = False  # SIGTERM: close without questions, the drafts are kept
        # the unsaved typing is written to the drafts file a moment after each edit (and at
        # once when a form is saved or reverted), so a crash or kill -9 loses none of it
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_DELAY_MS)
        self._draft_timer.timeout.connect(self.write_drafts)
        self._drafts_left: list[Draft] = []  # kept drafts not put back in a form (yet)
        # never a question from a satellite change notice (a sync callback: a modal there
        # ran inside the sync's asyncio task, which stalled; session 16): the depth of the
        # notices being handled, and the keys of the rows a table is taking out now
        self._notice = 0
        self._removing: frozenset[str] = frozenset()
        self._saving = ""  # the key of the record the form is saving (its own notice)
        self._left = ""  # the edited record's row left the table in this notice (said after)
        self._left_read = ""  # the key of the (unedited) record shown whose row left it
        # the key of the (unedited) record in the form with the keyboard whose row left the
        # table: kept in the form, not swapped for the next row (merge review 16b)
        self._held = ""
        self._draft_error = ""  # the last error writing the drafts (said once)
        self._save_error = ""  # the last save's error said (taken back once one works)

        # sidebar
        self.topic_view = QListView()
        self.topic_view.setModel(self.topics)
        # widths made for a 9-10 pt font grow with the user's font (review a11y 16: at 18 pt
        # topic names and the Latitude/Longitude headers were cut)
        self._scale = max(1.0, self.topic_view.fontMetrics().averageCharWidth() / 7)
        self.topic_view.setMaximumWidth(round(230 * self._scale))
        self.topic_view.setMinimumWidth(round(160 * self._scale))
        self.topic_view.selectionModel().currentChanged.connect(self._topic_changed)
        # records
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter records (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        undo_falls_through(self.filter)
        self._filter_keys = FilterKeys(self.filter, self.into_results)  # Down, Esc
        self.table = QTableView()
        self.table.setSortingEnabled(True)
        # no sort column at first: rows in key order (UUIDv7 ≈ creation order) need no read
        # of the whole topic, which keeps the first paint fast on big replicas
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(
            max(24, self.table.fontMetrics().height() + 6))
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # plain Del in the records table deletes the selected record, as Ctrl+Del does (the
        # same question when the form has typing, the same undo); only where the table
        # itself has the keys: a field's Del deletes a character (session 14: it did
        # nothing and said nothing)
        self._table_del = QShortcut(QKeySequence(Qt.Key.Key_Delete), self.table)
        self._table_del.setContext(Qt.ShortcutContext.WidgetShortcut)
        self._table_del.activated.connect(self._table_delete)
        # Tab leaves the table for the form (review a11y 16: it walked the cells, opening the
        # next record at each row's end, and never left); Enter or F2 edits the selected
        # record: the keyboard moves to the form's first field
        self.table.setTabKeyNavigation(False)
        self._table_edit = [QShortcut(QKeySequence(k), self.table) for k in
                            (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_F2)]
        for sc in self._table_edit:
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(self.into_form)
        # shown while the current table reads its rows off the UI thread (a big topic opened,
        # sorted or filtered); the rows shown meanwhile are the table's previous ones
        self.loading = QLabel()
        self.loading.setObjectName("loading")
        self.loading.setStyleSheet("color: palette(mid); padding: 0 4px;")
        self.loading.hide()
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        top_row = QHBoxLayout()
        top_row.addWidget(self.filter, 1)
        top_row.addWidget(self.loading)
        cl.addLayout(top_row)
        cl.addWidget(self.table, 1)
        # form + history
        self.form_stack = QStackedWidget()
        self.history = HistoryView(sat)
        self.history.restore_requested.connect(self._restore)
        self.side = QTabWidget()
        self.side.addTab(self.form_stack, icon("save"), "Record")
        self.side.addTab(self.history, icon("history"), "History")
        self.side.setMinimumWidth(360)
        # Tab stops at its tab bar (in _tab_order's place) only: the tab widget itself, a Tab
        # stop after the history whose focus goes to the tab bar, sent Tab back round the
        # History tab for ever
        self.side.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (its focus proxy's too)
        self.side.tabBar().setFocusPolicy(Qt.FocusPolicy.TabFocus)
        split = QSplitter()
        split.addWidget(self.topic_view)
        split.addWidget(center)
        split.addWidget(self.side)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 2)
        split.setSizes([180, 640, 380])
        self.setCentralWidget(split)
        # status bar
        self.status = SyncStatusBar()
        self.status.conflicts_clicked.connect(self.show_conflicts)
        self.status.offline_toggled.connect(self._offline_toggled)
        self.status.sync_clicked.connect(self._sync_now)
        self.status.error_clicked.connect(self.show_sync_problem)
        # new rejections: the count is highlighted and the window asks for attention (the
        # taskbar), no dialog pops up
        self.status.conflicts_arrived.connect(lambda _n: QApplication.alert(self))
        self.setStatusBar(self.status)
        self.problem_box: QMessageBox | None = None
        self._read_only = ""  # why the hub lets this user only read ("": it may write)
        self._stopped = ""  # why sync stopped for good ("": it did not; stopped_for_good)
        self._tip = ""  # the status tip shown last (event)
        # while a retry is waiting, the status bar counts down to it
        self._retry_timer = QTimer(self)
        self._retry_timer.setInterval(1000)
        self._retry_timer.timeout.connect(self.refresh_status)
        self._make_actions()
        self._unlisten = sat.listen(self.on_change)
        # a long queue's overlay is built after the window appeared, a step per turn of the
        # event loop (session 14: it held the window back 6.4 s at load 14); the sync
        # starts once it is built (its first reply would build the rest at once)
        self._when_applied: list[Callable[[], None]] = []
        self._asked: set[str] = set()  # what waits for it at the user's request (_once_applied)
        self._apply_timer = QTimer(self)
        self._apply_timer.setInterval(0)
        self._apply_timer.timeout.connect(self._apply_step)
        if sat.applying():
            self.status.show_applying(sat.applying())
            self._apply_timer.start()
        self.refresh_status()
        # "Work offline" kept from the last run shows at start (the action follows the button)
        self.offline_action.setChecked(self.status.offline.isChecked())
        if self.topics.rowCount():
            self.topic_view.setCurrentIndex(self.topics.index(0, 0))
        # the other topics' counts after the first paint (each is a read of the topic)
        QTimer.singleShot(0, self.topics.count_all)
        self.restore_drafts()
        self.key_scan = self._learn_int_keys()

    # -- actions -------------------------------------------------------------------------------

    def _make_actions(self) -> None:
        def act(text: str, name: str, keys: QKeySequence | str | QKeySequence.StandardKey,
                slot: Callable[[], Any], tip: str) -> QAction:
            a = QAction(text, self)
            set_icon(a, name)
            a.setShortcut(QKeySequence(keys))
            a.setToolTip(f"{tip} ({QKeySequence(keys).toString()})")
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.new_action = act("&New", "new", QKeySequence.StandardKey.New, self.new_record,
                              "New record")
        self.save_action = act("&Save", "save", QKeySequence.StandardKey.Save, self.save,
                               "Save the record")
        self.delete_action = act("&Delete", "delete", "Ctrl+Delete", self.delete_record,
                                 "Delete the record")
        self.revert_action = act("Re&vert", "restore", REVERT_KEY, self.revert_form,
                                 "Back to the record as saved (Esc in a field: that field)")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        set_icon(self.undo_action, "undo")
        self.undo_action.setShortcuts(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        set_icon(self.redo_action, "redo")
        # the toolbar's buttons say only "Undo" / "Redo", the step in their tooltip and in
        # the Edit menu (review a11y 16: "Undo edit Region of Sites: …" grew with each save,
        # moving every button after it)
        self.undo_action.setIconText("Undo")
        self.redo_action.setIconText("Redo")
        self.undo_stack.undoTextChanged.connect(
            lambda t: self._step_tip(self.undo_action, "Undo", t))
        self.undo_stack.redoTextChanged.connect(
            lambda t: self._step_tip(self.redo_action, "Redo", t))
        # through step(): checked against the form's typing, and said (user review 12)
        for a, redo_ in ((self.undo_action, False), (self.redo_action, True)):
            a.triggered.disconnect()
            a.triggered.connect(lambda _c=False, r=redo_: self.step(redo=r))
        # every binding of the platform (setShortcut kept only the first: Ctrl+Y on Linux),
        # and Ctrl+Shift+Z everywhere, as docs/desktop.md says
        redo = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        if QKeySequence("Ctrl+Shift+Z") not in redo:
            redo.append(QKeySequence("Ctrl+Shift+Z"))
        self.redo_action.setShortcuts(redo)
        self.sync_action = act("&Sync now", "sync", SYNC_KEY, self._sync_now,
                               "Connect and send pending changes")
        self.conflicts_action = act("&Conflicts", "conflict", "Ctrl+Shift+C",
                                    self.show_conflicts, "Open the conflicts view")
        self.history_action = act("&History", "history", "Ctrl+H", self.show_history,
                                  "History of the record")
        self.problem_action = act("Sync &problem…", "conflict", ERROR_KEY,
                                  self.show_sync_problem,
                                  "The last sync problem: what went wrong and what to do")
        self.offline_action = QAction("Work &offline", self)
        self.offline_action.setCheckable(True)
        self.offline_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.offline_action.toggled.connect(self.status.offline.setChecked)
        self.addAction(self.offline_action)
        self.find_action = find = QAction("Filter", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.focus_filter)
        self.addAction(find)
        self.import_action = act("&Import CSV…", "import", "Ctrl+I", self.import_csv,
                                 "Import a CSV file into the current topic")
        self.export_action = act("&Export CSV…", "export", "Ctrl+E", self.export_csv,
                                 "Export the current topic as a CSV file")
        # `outpost import --from-spreadsheet` / `export --for-spreadsheet` (no shortcut)
        self.import_sheet_action = QAction("Import CSV from a &spreadsheet export…", self)
        self.import_sheet_action.setToolTip(
            "Import a file written by Export CSV for a spreadsheet: a cell's leading ' is "
            "taken off")
        self.import_sheet_action.triggered.connect(lambda: self.import_csv(sheet=True))
        self.export_sheet_action = QAction("Export CSV &for a spreadsheet…", self)
        self.export_sheet_action.setToolTip(
            "Export for opening in a spreadsheet: a cell starting with = + - @ gets a ' "
            "before it, so that the spreadsheet shows it instead of running it as a formula")
        self.export_sheet_action.triggered.connect(lambda: self.export_csv(sheet=True))
        self.help_action = QAction("&Keyboard shortcuts", self)
        self.help_action.setShortcut(QKeySequence(HELP_KEY))
        self.help_action.triggered.connect(self.show_shortcuts)
        self.addAction(self.help_action)
        self.about_action = QAction("&About Outpost", self)
        self.about_action.triggered.connect(self.show_about)
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.about_box: QMessageBox | None = None
        settings = QAction("Connection se&ttings…", self)
        set_icon(settings, "settings")
        settings.triggered.connect(self._settings)
        bar = self.addToolBar("Main")
        bar.setObjectName("main_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.new_action, self.save_action, self.delete_action):
            bar.addAction(a)
        bar.addSeparator()
        bar.addAction(self.undo_action)
        bar.addAction(self.redo_action)
        bar.addSeparator()
        for a in (self.sync_action, self.conflicts_action, self.history_action):
            bar.addAction(a)
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.import_sheet_action)
        file_menu.addAction(self.export_sheet_action)
        file_menu.addSeparator()
        file_menu.addAction(settings)
        file_menu.addAction(self.offline_action)
        quit_action = file_menu.addAction("&Quit")
        # the platform's binding; Ctrl+Q where its theme has none (Qt's offscreen and
        # generic themes: File → Quit had no key, though the docs name Ctrl+Q)
        quit_action.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit)
                                 or [QKeySequence("Ctrl+Q")])
        quit_action.triggered.connect(self.close)
        edit = menu.addMenu("&Edit")
        for a in (self.new_action, self.save_action, self.revert_action, self.delete_action,
                  self.undo_action, self.redo_action):
            edit.addAction(a)
        view = menu.addMenu("&Sync")
        for a in (self.sync_action, self.conflicts_action, self.history_action,
                  self.problem_action):
            view.addAction(a)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.help_action)
        help_menu.addAction(self.about_action)
        self.menus = (file_menu, edit, view, help_menu)
        self._step_tip(self.undo_action, "Undo", "")
        self._step_tip(self.redo_action, "Redo", "")

    @staticmethod
    def _step_tip(a: QAction, what: str, text: str) -> None:
        """The Undo or Redo button's tooltip names the step it would take, ``text`` (the
        button itself says only "Undo" / "Redo")."""
        with contextlib.suppress(RuntimeError):  # the window being deleted, its actions too
            key = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            a.setToolTip(f"{what} {text} ({key})" if text else f"{what} ({key})")

    # -- topics and records --------------------------------------------------------------------

    @property
    def topic(self) -> str:
        return self._top

    @property
    def records(self) -> RecordTableModel:
        return self.record_models[self._top]

    @property
    def form(self) -> RecordForm:
        return self.forms[self._top]

    def select_topic(self, top: str) -> None:
        self.topic_view.setCurrentIndex(self.topics.index(self.topics.row_of(top), 0))

    def _topic_changed(self, cur: QModelIndex, _prev: QModelIndex) -> None:
        if not cur.isValid():
            return
        top = self.topics.topic_at(cur.row())
        if top != self._top and self._top in self.forms and not self.settle_edits(
                self._top, "switching topic"):
            # Cancel: back on the topic of the edited record (its form is as it was)
            sm = self.topic_view.selectionModel()
            back = self.topics.index(self.topics.row_of(self._top), 0)
            sm.blockSignals(True)
            try:
                sm.setCurrentIndex(back, sm.SelectionFlag.ClearAndSelect)
            finally:
                sm.blockSignals(False)
            self.topic_view.viewport().update()
            return
        self._top = top
        if top not in self.record_models:
            self.record_models[top] = model = RecordTableModel(
                self.sat, top, self, size=self.topics.count_of(top))
            # a reload reads every key: the sidebar takes its count instead of reading again
            model.modelReset.connect(lambda m=model: self._table_reloaded(m))
            model.busy_changed.connect(lambda _b, m=model: self._table_busy(m))
            model.sort_applied.connect(lambda c, o, m=model: self._sort_shown(m, c, o))
            # before the view's own handlers (connected by setModel, later): the view moves
            # the selection to the next row while a row is taken out
            model.rowsAboutToBeRemoved.connect(
                lambda _p, first, last, m=model: self._rows_going(m, first, last))
            model.rowsRemoved.connect(lambda *_a, m=model: self._rows_gone(m))
            form = RecordForm(self.sat, self.sat.project.model(top))
            form.save_requested.connect(self._save_fields)
            form.typed.connect(self._draft_timer.start)  # (re)started: one write per pause
            form.dirty_changed.connect(self._dirty_changed)
            form.field_reverted.connect(
                lambda name, fields, raw, t=top: self._field_reverted(t, name, fields, raw))
            # the Revert button is Edit → Revert: one undo step, said in the status bar
            form.revert_button.clicked.disconnect()
            form.revert_button.clicked.connect(self.revert_form)
            self.forms[top] = form
            self.form_stack.addWidget(form)
            # no narrower than the form needs (the 360 px made for a 10 pt font cut its
            # labels, "Latitude", "Longitu", at 18 pt: review a11y 16)
            self.side.setMinimumWidth(max(360, self.side.minimumSizeHint().width()))
            self._show_read_only(form)
            form.set_sync_stopped(self._stopped)
        model = self.record_models[top]
        model.set_filter(self.filter.text())
        self._tab_order(self.forms[top])
        self.table.setModel(model)
        self.table.selectionModel().selectionChanged.connect(self._record_selected)
        self._sort_shown(model, *model.sort_order)  # this table's order, not the last one's
        self._table_busy(model)
        self.form_stack.setCurrentWidget(self.forms[top])
        self.forms[top].clear()
        self.history.set_record(top, "")
        if model.complete:
            self.topics.set_count(top, model.total())
        widths = {"str": 190, "text": 260, "int": 80, "float": 100, "bool": 60, "date": 110,
                  "datetime": 170, "enum": 100, "ref": 190, "json": 160}
        first = model.key_column + 1  # after the Key column of an int-keyed topic
        k = self._scale
        if first:
            self.table.setColumnWidth(0, round(80 * k))
        for c, f in enumerate(model.model_def.fields, first):
            self.table.setColumnWidth(c, round(widths.get(f.type, 140) * k))

    def _tab_order(self, form: RecordForm) -> None:
        """Tab goes topics → filter → records → the form (its fields, Revert, Save) → the
        Record/History tabs → the history (its versions, the version's fields, Restore this
        version). A topic's form is made when the topic is first shown, after the rest of the
        window: Tab reached it last (review a11y 16: Shift+Tab from the topics landed on the
        last field)."""
        chain = self._form_chains.get(id(form))
        if chain is None:  # the form's own order (its fields as laid out), taken once
            chain = []
            w = form.nextInFocusChain()
            while w is not form and form.isAncestorOf(w) and w not in chain:
                if w.focusPolicy() != Qt.FocusPolicy.NoFocus:  # (setTabOrder skips them)
                    chain.append(w)
                w = w.nextInFocusChain()
            self._form_chains[id(form)] = chain
        h = self.history
        order = [self.topic_view, self.filter, self.table, *chain, self.side.tabBar(),
                 h.table, h.state, h.restore]
        for a, b in itertools.pairwise(order):
            QWidget.setTabOrder(a, b)

    def into_form(self) -> bool:
        """Enter or F2 in the records table: the keyboard to the first field of the form
        showing the selected record (False: no record shown)."""
        if not self._top or not self.form.isEnabled():
            return False
        self.side.setCurrentWidget(self.form_stack)
        self.form.focus_first()
        return True

    def _learn_int_keys(self) -> threading.Thread | None:
        """A replica made before session 9 keeps no greatest key of its int-keyed topics: the
        first Ctrl+N of such a topic scanned its events on the UI thread (0.3-0.5 s at
        1,000,000 events). A worker thread scans them at once instead (the thread, or None
        when nothing is to scan); a Ctrl+N before it is done waits for that scan."""
        learn = getattr(self.sat, "learn_int_keys", None)
        replica = getattr(self.sat, "replica", None)
        if not callable(learn) or replica is None or not replica.unknown_int_tops():
            return None

        def work() -> None:
            try:
                learn()
            except Exception:  # e.g. the window closed, the satellite with it: Ctrl+N reads
                log.debug("greatest int keys not read ahead", exc_info=True)

        t = threading.Thread(target=work, name="outpost-int-keys", daemon=True)
        t.start()
        return t

    def _table_reloaded(self, model: RecordTableModel) -> None:
        if model.complete:
            self.topics.counted(model.topic, model.total())

    def _table_busy(self, model: RecordTableModel) -> None:
        if model.topic != self._top:
            return  # another topic's table: its state shows when it is selected again
        if model.busy:
            # key order is the Key column's (int-keyed topics) or none: a load, not a sort
            keyed = model.sort_order == (model.key_column, Qt.SortOrder.AscendingOrder)
            what = ("Filtering" if model.filter_text else
                    "Sorting" if not keyed and model.total() else "Loading")
            self.loading.setText(f"{what} {model.model_def.title}…")
        self.loading.setVisible(model.busy)

    def _sort_shown(self, model: RecordTableModel, col: int, order: Qt.SortOrder) -> None:
        """Show the current table's order in the header (the view re-sorting to the same
        order is a no-op in the model)."""
        if model.topic != self._top:
            return
        header = self.table.horizontalHeader()
        if (header.sortIndicatorSection(), header.sortIndicatorOrder()) != (col, order):
            header.setSortIndicator(col, order)

    def _filter_changed(self, text: str) -> None:
        if self._top:
            self.records.set_filter(text)

    def select_key(self, key: str) -> bool:
        """Select the record ``key`` of the current topic; False when it is not shown."""
        row = self.records.row_of(key)
        if row < 0:
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.records.index(row, 0))
        return True

    def current_key(self) -> str:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.records.key_at(rows[0].row()) if rows else ""

    def _rows_going(self, model: RecordTableModel, first: int, last: int) -> None:
        """A table takes rows out (hub data, a save, an undo: a record deleted or no longer
        matching the filter): noted before the view moves the selection to the next row, so
        that :meth:`_record_selected` does not take that move for the user's."""
        if model.topic != self._top:
            return
        self._removing = frozenset(model.key_at(r) for r in range(first, last + 1))
        form = self.forms.get(self._top)
        if (form is not None and form.has_edits and not form.is_new
                and form.key in self._removing and form.key != self._saving
                and not self._deleted(self._top, form.key)):
            self._left = form.key  # still there, no longer matching the filter: said
        elif (form is not None and form.key and not form.dirty and not form.is_new
              and form.key in self._removing):
            if self._keyboard_in(form):
                # not edited, but the keyboard is in it: the next typing is for this record,
                # so the form keeps it (merge review 16b: the next row was loaded under the
                # cursor, and the typing saved into it); a deleted one: _refresh_form
                self._held = form.key
            elif not self._deleted(self._top, form.key):
                # read from the table: the next row is shown, as for a deleted one, and said
                self._left_read = form.key

    def _keyboard_in(self, form: RecordForm) -> bool:
        """Whether the window's keyboard focus is in ``form`` (also while another
        application is active: the cursor comes back there)."""
        focus = self.focusWidget()
        return focus is not None and form.isAncestorOf(focus)

    def _rows_gone(self, model: RecordTableModel) -> None:
        if model.topic != self._top:
            return
        self._removing = frozenset()
        if not self._notice:
            self._say_left()  # e.g. a read ending: no notice to say it after

    def _say_left(self) -> None:
        """Say what :meth:`_rows_going` noted: the record shown left the table."""
        if self._left:
            self._say_left_edited()
        held, self._held = self._held, ""
        left, self._left_read = self._left_read, ""
        if not self.filter.text() or not self._top:
            return
        form = self.form
        if held and form.key == held and form.deleted_by is None and not form.is_new:
            # the record under the keyboard, kept: named as it is now (the change that took
            # it out of the filter is in the form already)
            self.status.showMessage(
                f"{form.title.text()} no longer matches the filter "
                f"\u201c{self.filter.text()}\u201d: it stays in the form", 10000)
        elif left:
            try:
                rv = self.sat.record(self._top, left)
            except OutpostError:
                rv = None
            if rv is None or rv.fields is None:
                return  # deleted meanwhile: said as deleted
            # its title now, not the one the form showed before the change (review 16b)
            title = form.title_of(left, rv.fields)
            now = form.title.text() if form.key and form.key != left else ""
            self.status.showMessage(
                f"{title} no longer matches the filter \u201c{self.filter.text()}\u201d"
                + (f"; showing {now}" if now else ""), 10000)

    def _say_left_edited(self) -> None:
        """The record being edited left the table (its row no longer matches the filter):
        the form keeps it with the typing, the table shows nothing selected; said in the
        status bar and the form's state line."""
        key, self._left = self._left, ""
        form = self.forms.get(self._top)
        if form is None or form.key != key or not form.has_edits:
            return
        self._reselect(key)  # none: no other record shown as selected
        text = (f"{form.title.text()} no longer matches the filter "
                f"\u201c{self.filter.text()}\u201d: it stays in the form with your unsaved "
                f"changes; save them (Ctrl+S) or revert ({REVERT_KEY})")
        self.status.showMessage(text, 15000)
        said = form.state.text()
        form.state.setText("\u26a0 No longer matches the filter: kept here with your unsaved "
                           "changes." + (f" {said}" if said else ""))

    def _record_selected(self, _sel: QItemSelection, _old: QItemSelection) -> None:
        key = self.current_key()
        if not key:
            return
        form = self.form
        if key != form.key and self._held and form.key == self._held:
            # the row of the record under the keyboard was taken out and the view moved the
            # selection: not the user's move; the form keeps its record, nothing selected
            self._reselect("")
            return
        if key != form.key and form.has_edits:
            if (not form.is_new and form.deleted_by is None
                    and self._deleted(self._top, form.key)):
                # the record being edited was deleted (the removed row moved the selection):
                # no choice of the user's; the form keeps its values and says so
                self._keep_deleted(form)
                return
            if self._removing or self._notice:
                # not the user's move: a row taken out (the edited record's, no longer
                # matching the filter, or the row under a new record's form) moved the
                # selection. No question (session 16: a modal from inside the sync task,
                # Save its default): the form keeps its record, the table selects it or none
                self._reselect("" if form.is_new or form.key in self._removing
                               else form.key)
                return
            if not self.settle_edits(self._top, "opening another record"):
                self._reselect(form.key)  # Cancel: the selection stays on the edited record
                return
        try:
            rv = self.sat.record(self._top, key)
            if rv is not None:
                self.form.load(rv)
        except OutpostError as exc:  # e.g. the database went away: say so, show no record
            self.form.clear()
            self.show_error(f"cannot show {key}: {exc}")
        self.history.set_record(self._top, key)

    def _reselect(self, key: str) -> None:
        """Select ``key``'s row (none when it is not shown) without loading it again."""
        sm = self.table.selectionModel()
        sm.blockSignals(True)
        try:
            row = self.records.row_of(key) if key else -1
            if row >= 0:
                self.table.selectRow(row)
            else:
                self.table.clearSelection()
        finally:
            sm.blockSignals(False)
        self.table.viewport().update()

    def _deleted(self, top: str, key: str) -> bool:
        try:
            rv = self.sat.record(top, key)
        except OutpostError:
            return False
        return rv is None or rv.fields is None

    def _deleted_by(self, top: str, key: str) -> str:
        """Who deleted the record, as its history says ("another user" when it does not)."""
        try:
            for h in reversed(self.sat.history(top, key)):
                if h.cmd == Cmd.DEL:
                    return h.usr or "another user"
        except OutpostError:
            pass
        return "another user"

    def _keep_deleted(self, form: RecordForm) -> None:
        """The record of ``form`` (with unsaved edits) was deleted: keep the values, say by
        whom, offer Re-create / Discard; the table shows no other record as selected."""
        form.mark_deleted(self._deleted_by(self._top, form.key))
        self._reselect("")
        self.side.setCurrentWidget(self.form_stack)

    def ask_unsaved(self, form: RecordForm, doing: str) -> QMessageBox.StandardButton:
        """Save / Discard / Cancel (Save the default) for a form's unsaved edits."""
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes", "",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("unsaved_changes")
        what = ("The new record" if form.is_new and form.deleted_by is None else
                "The deleted record" if form.deleted_by is not None else "The record")
        box.setText(f"{what} has unsaved changes. Save them before {doing}?")
        box.setInformativeText("Discard drops what you typed; Cancel goes back to it.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        return QMessageBox.StandardButton(box.exec())

    def keep_drafts(self) -> int:
        """SIGTERM (nobody may be there to answer): keep every form's unsaved typing in the
        data directory (:mod:`desktop.drafts`), nothing saved or sent; the window then
        closes without asking (:attr:`terminating`). Returns how many forms were kept.

        Raises:
            StorageError: the drafts could not be written (the window still asks then)."""
        self._draft_timer.stop()
        drafts = self._drafts()
        if drafts and self.drafts_path is not None:
            save_drafts(self.drafts_path, drafts + self._drafts_left)
            self.terminating = True
        elif not drafts:
            self.terminating = True
        return len(drafts)

    def _drafts(self) -> list[Draft]:
        return [Draft(top, f.key, f.is_new, format_rev(f.base or self.sat.rev()),
                      f.changes(), f.invalid_texts())
                for top, f in self.forms.items() if f.has_edits]

    def write_drafts(self) -> bool:
        """Write the forms' unsaved typing to the drafts file now (the file goes when there
        is none), atomically: the next start puts it back after a crash, a kill -9, a flat
        battery (session 11: it was written only at SIGTERM). False when it could not be
        written (said once in the status bar; the typing is still in the form)."""
        self._draft_timer.stop()
        if self.drafts_path is None or self.terminating:
            return False
        try:
            save_drafts(self.drafts_path, self._drafts() + self._drafts_left)
        except OutpostError as exc:
            # the directory gone (session 16: "No such file or directory" said only that)
            why = self.sat.dir_gone() or f"{exc}: they are only in the form until saved"
            if why != self._draft_error:
                self._said(why)
            self._draft_error = why
            return False
        if self._draft_error:
            self._unsay(self._draft_error)
        self._draft_error = ""
        return True

    def _dirty_changed(self, dirty: bool) -> None:
        """A form saved or reverted: its draft goes at once; one just edited is kept."""
        if dirty:
            self._draft_timer.start()
        else:
            self.write_drafts()

    def restore_drafts(self) -> None:
        """Put back the typing :meth:`keep_drafts` or :meth:`write_drafts` kept (the first
        draft; the others stay in the file for the next start), unsaved, on the revision it
        was typed on. The file keeps it until the form is saved or reverted (the usual Save /
        Discard / Cancel apply), so a second crash loses nothing either."""
        if self.drafts_path is None:
            return
        drafts = load_drafts(self.drafts_path)
        if not drafts:
            return
        d, rest = drafts[0], drafts[1:]
        self._drafts_left = rest  # kept in every write of the drafts until put back
        try:
            if not self._put_back(d):
                return
        except (OutpostError, ValueError) as exc:
            self.show_error(f"cannot put back the unsaved changes kept in "
                            f"{self.drafts_path}: {exc}")
            return
        self.write_drafts()  # as put back (on its base)
        self.status.showMessage(
            "Your unsaved changes from when Outpost was last stopped are back in the form: "
            "save (Ctrl+S) or discard them", 20000)

    def _put_back(self, d: Draft) -> bool:
        """Show the typing ``d`` in its topic's form, unsaved, on its base (the record
        selected; a record deleted since: a new one with that key); False when the topic
        cannot be shown.

        Raises:
            OutpostError, ValueError: its topic is unknown, its base not a revision."""
        model = self.sat.project.model(d.topic)
        self.select_topic(d.topic)
        if self._top != d.topic:
            return False
        form = self.form
        rv = None if d.new else self.sat.record(d.topic, d.key)
        if rv is None or rv.fields is None:
            form.start_new(d.key)  # new, or deleted since: saving it creates it again
        else:
            self._reselect(d.key)
            form.load(rv)
            self.history.set_record(d.topic, d.key)
        for name, value in d.fields.items():
            if model.field(name) is not None:
                form.set_value(name, value)
        for name, text in d.raw.items():  # typed, not valid yet: shown as typed
            if model.field(name) is not None and name in form.editors:
                form.set_text(name, text)
        form.set_base(parse_rev(d.base))
        self.side.setCurrentWidget(self.form_stack)
        return True

    def settle_edits(self, top: str, doing: str) -> bool:
        """Before the form of ``top`` is left or dropped: ask Save / Discard / Cancel when it
        has unsaved edits. True when nothing is lost unasked (saved, discarded, or nothing to
        save); False on Cancel or a save that failed (the form stays as it is)."""
        form = self.forms.get(top)
        if form is None or not form.has_edits:
            return True
        if self._notice:
            # never a modal from a change notice (a sync callback): the form stays as it is
            log.warning("not asking to save the form while %s: in a change notice", doing)
            return False
        answer = self.ask_unsaved(form, doing)
        if answer == QMessageBox.StandardButton.Discard:
            form.revert()
            return True
        if answer != QMessageBox.StandardButton.Save:
            return False
        fields = form.validated_changes()
        if fields is None:
            return False  # invalid: the errors show under the fields
        return self._save_form(top, form, fields, reselect=False)

    # -- editing -------------------------------------------------------------------------------

    def _to_front(self) -> None:
        """Activate this window (a shortcut pressed in the conflicts view acts here)."""
        if not self.isActiveWindow():
            self.raise_()
            self.activateWindow()

    def show_history(self) -> None:
        """Sync → History (Ctrl+H): the History tab, the keyboard in its list of versions
        (review a11y 16: it stayed in the records table); Tab reaches Restore this version."""
        self._to_front()
        self.side.setCurrentWidget(self.history)
        self.history.table.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def into_results(self) -> bool:
        """Down in the filter box: the keyboard moves to the results, on the selected row
        or else the first (False: no rows, the key goes on to the box)."""
        if not self._top or self.records.rowCount() == 0:
            return False
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self.table.selectionModel().selectedRows():
            self.table.selectRow(0)
        return True

    def shortcut_list(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut of the window (Help → Keyboard shortcuts): made from the
        actions of its menus, then those of no menu, as they are now."""
        in_menus = [a for m in self.menus for a in m.actions()]
        return shortcut_rows([*in_menus, *self._shortcut_actions(), *self.actions()])

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help → Keyboard shortcuts (F1)."""
        if self.shortcuts_dialog is not None:
            self.shortcuts_dialog.close()
            self.shortcuts_dialog.deleteLater()
        self.shortcuts_dialog = dlg = ShortcutsDialog(self.shortcut_list(), self)
        dlg.show()
        dlg.raise_()
        return dlg

    def show_about(self) -> QMessageBox:
        """Help → About: the version, the data directory and the hub."""
        data = getattr(getattr(self.sat, "data", None), "path", None)
        hub = ""
        with contextlib.suppress(OutpostError):  # e.g. the replica is gone: the rest helps
            hub = self.sat.status().hub
        box = QMessageBox(QMessageBox.Icon.Information, "About Outpost",
                          about_text(str(data) if data else "", hub),
                          QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.about_box = box
        box.open()
        return box

    def focus_filter(self) -> None:
        self._to_front()
        self.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter.selectAll()

    def new_record(self) -> None:
        if not self._top:
            return
        self._to_front()
        if not self.settle_edits(self._top, "starting a new record"):
            return
        try:
            # int keys: one above every key this replica knows (deleted and pending ones too)
            key = self.sat.new_key(self._top)
        except OutpostError as exc:
            self.show_error(f"cannot make a new key: {exc}")
            return
        self.table.clearSelection()
        self.side.setCurrentWidget(self.form_stack)
        self.form.start_new(key)
        self.form.focus_first()

    def save(self) -> None:
        if self._top:
            self.form.request_save()

    def revert_form(self) -> None:
        """Edit → Revert (Ctrl+R): the form back to the record as saved (a new record's to
        its defaults; a record deleted under the edits: Discard)."""
        if self._top and self.form.dirty:
            self._to_front()
            form = self.form
            typed = next((d for d in self._drafts() if d.topic == self._top), None)
            title = form.title.text()
            form.revert()
            if typed is None:  # an untouched new record: nothing typed to bring back
                return
            # one undo step (merge review 11: Ctrl+R, "reload" in a browser, lost the typing
            # with no undo, and its draft went too): Ctrl+Z puts it back, draft included
            self.undo_stack.push(RevertCommand(
                f"revert {title}", lambda: self._unrevert(typed, title),
                lambda: self._revert_again(typed), lambda: self._unrevert_refusal(typed, title),
                lambda: self._revert_again_refusal(typed, title)))
            n = len(typed.fields.keys() | typed.raw.keys())
            undo = self.undo_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            self.status.showMessage(f"{undo} brings back the typing — reverted "
                                    f"{plural(n, 'changed field')} of {title}", 15000)

    def _unrevert_refusal(self, typed: Draft, title: str) -> str | None:
        """Why the typing of a Revert cannot be put back now (None: it can). The advice
        names no save, Revert or Esc: each is an undo step of its own, pushed above the
        refused one, so the undo after it would not reach that typing (review muser12)."""
        form = self.forms.get(typed.topic)
        if form is not None and form.has_edits:
            return (f"cannot bring back the typing reverted in {title}: the form has "
                    "changes made since, which it would overwrite; put those fields back as "
                    "they were (Ctrl+Z in each of them), then undo again")
        return None

    def _unrevert(self, typed: Draft, title: str) -> bool:
        """Undo of a Revert: the typing back in the form (and in the drafts file)."""
        why = self._unrevert_refusal(typed, title)
        if why is not None:
            self.show_error(why)
            return False
        try:
            if not self._put_back(typed):
                return False
        except (OutpostError, ValueError) as exc:
            self.show_error(f"cannot bring back the typing reverted in {title}: {exc}")
            return False
        self.write_drafts()
        self.status.showMessage(f"The typing reverted in {title} is back: save (Ctrl+S) or "
                                f"revert ({REVERT_KEY})", 15000)
        return True

    def _revert_again_refusal(self, typed: Draft, title: str) -> str | None:
        """Why the redo of a Revert would throw away changes made since its typing came back
        (None: it would not): the form shows the record with other changes than that typing
        (session 13: the redo reverted them too, with no undo step of their own)."""
        form = self.forms.get(typed.topic)
        if form is None or form.key != typed.key or not form.dirty:
            return None  # nothing to revert there: the redo does nothing
        if (form.changes(), form.invalid_texts()) != (typed.fields, typed.raw):
            return (f"cannot revert {title} again: the form has changes made since its "
                    "typing came back, which the revert would throw away with no undo; take "
                    "them out first (Ctrl+Z in each field), then redo from the records table (in a "
                    "field, Ctrl+Shift+Z redoes its own changes)")
        return None

    def _revert_again(self, typed: Draft) -> None:
        """Redo of a Revert: the form reverted again while it shows that record."""
        form = self.forms.get(typed.topic)
        if form is not None and form.key == typed.key and form.dirty:
            form.revert()

    def _field_reverted(self, top: str, name: str, fields: dict[str, Any],
                        raw: dict[str, str]) -> None:
        """Esc put back a field's value as loaded: one undo step, as Ctrl+R's (user review
        12: Esc threw the typing away for good, with no word)."""
        form = self.forms[top]
        if not fields and not raw:
            return
        typed = Draft(top, form.key, form.is_new, format_rev(form.base or self.sat.rev()),
                      fields, raw)
        label = form.editors[name].field.title
        title = form.title.text()
        self.undo_stack.push(RevertCommand(
            f"revert {label} of {title}", lambda: self._unrevert_field(typed, name, title),
            lambda: self._revert_field_again(typed, name),
            lambda: self._unrevert_field_refusal(typed, name, title),
            lambda: self._revert_field_again_refusal(typed, name, title)))
        undo = self.undo_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        self.status.showMessage(f"{undo} brings back the typing — reverted {label} of "
                                f"{title}", 15000)

    def _shows(self, typed: Draft) -> RecordForm | None:
        """The form of ``typed``'s record when the window shows it now (None: it does not)."""
        form = self.forms.get(typed.topic)
        if (typed.topic == self._top and form is not None and form.key == typed.key
                and form.is_new == typed.new and form.isEnabled()):
            return form
        return None

    def _unrevert_field_refusal(self, typed: Draft, name: str, title: str) -> str | None:
        """Why the typing of an Esc cannot be put back now (None: it can); see
        ``_unrevert_refusal`` (Esc as advice pushed a step above the refused one)."""
        form = self._shows(typed)
        if form is None:
            return self._unrevert_refusal(typed, title)
        if form.editors[name].touched:
            label = form.editors[name].field.title
            return (f"cannot bring back the typing reverted in {label} of {title}: the field "
                    "has changes made since, which it would overwrite; take them out first "
                    "(Ctrl+Z in the field), then undo again")
        return None

    def _unrevert_field(self, typed: Draft, name: str, title: str) -> bool:
        """Undo of an Esc: the field's typing back (the record shown again if need be)."""
        form = self._shows(typed)
        if form is None:
            return self._unrevert(typed, title)  # the record shown again, then the field
        label = form.editors[name].field.title
        why = self._unrevert_field_refusal(typed, name, title)
        if why is not None:
            self.show_error(why)
            return False
        if typed.fields:
            form.set_value(name, typed.fields[name])
        else:
            form.set_text(name, typed.raw[name])
        form.editors[name].widget.setFocus(Qt.FocusReason.OtherFocusReason)
        self.write_drafts()
        self.status.showMessage(f"The typing reverted in {label} of {title} is back: save "
                                f"(Ctrl+S) or revert ({REVERT_KEY})", 15000)
        return True

    def _revert_field_again_refusal(self, typed: Draft, name: str, title: str) -> str | None:
        """Why the redo of an Esc would throw away changes of the field made since its
        typing came back (None: it would not; see ``_revert_again_refusal``)."""
        form = self._shows(typed)
        if form is None or not form.editors[name].touched:
            return None  # nothing to revert there: the redo does nothing
        if form.editors[name].typing() != (typed.fields, typed.raw):
            label = form.editors[name].field.title
            return (f"cannot revert {label} of {title} again: the field has changes made "
                    "since its typing came back, which the revert would throw away with no "
                    "undo; take them out first (Ctrl+Z in the field), then redo from the records "
                    "table (in the field, Ctrl+Shift+Z redoes its own changes)")
        return None

    def _revert_field_again(self, typed: Draft, name: str) -> None:
        """Redo of an Esc: the field reverted again while the window shows that record."""
        form = self._shows(typed)
        if form is not None and form.editors[name].touched:
            form.editors[name].put_back_loaded()

    def step(self, redo: bool = False) -> bool:
        """Edit → Undo / Redo (Ctrl+Z / Ctrl+Shift+Z, also from a field with nothing of its
        own to undo): the next step of the undo stack, said in the status bar. From a form
        with unsaved typing, a step that publishes (a save, a delete: maybe of another
        record) is refused and said: user review 12, the Ctrl+Z pressed in a field to get
        its typing back undid an earlier save of another record, without a word. False
        when nothing was done.

        The undo of a Revert or an Esc that cannot put its typing back now (other typing
        would be overwritten) is refused *before* the stack moves, so the step stays on top
        for the undo after the advised fix (review muser12: the index had moved below it, and
        the next Esc, Ctrl+R or save discarded it with the typing)."""
        stack = self.undo_stack
        i = stack.index() if redo else stack.index() - 1
        cmd = stack.command(i) if 0 <= i < stack.count() else None
        if cmd is None:
            return False
        what = "redo" if redo else "undo"
        focus = QApplication.focusWidget()
        if (isinstance(cmd, PubCommand) and self._top and self.form.has_edits
                and focus is not None and self.form.isAncestorOf(focus)):
            # not "save or revert the form first" (review muser12): a save or a Revert is a
            # step of its own, which the next undo would take instead, so that advice looped
            self.status.showMessage(
                f"Not done: {what} would change {cmd.text()}, not your typing in this form; "
                f"{what} it from the records table (your typing stays)", 15000)
            return False
        if isinstance(cmd, RevertCommand) and (not redo or cmd.back):
            # the redo of a step whose typing came back: reverting again would throw away
            # changes made since (session 13: checked as the undo is)
            why = cmd.redo_refusal() if redo else cmd.refusal()
            if why is not None:
                self.show_error(why)
                return False
        self.status.clearMessage()
        if redo:
            stack.redo()
        else:
            stack.undo()
            if isinstance(cmd, RevertCommand) and not cmd.back:
                # not put back after all (said): the step back on top, for a later undo (its
                # redo does nothing when its undo did nothing)
                stack.redo()
                return False
        if isinstance(cmd, PubCommand) and not self.status.currentMessage():
            # said (a delete's undo says "Back: ..." itself; an error says itself)
            self.status.showMessage(f"{'Redone' if redo else 'Undone'}: {cmd.text()}", 15000)
        return True

    def _save_fields(self, fields: dict[str, Any]) -> None:
        self._save_form(self._top, self.form, fields)

    def _save_form(self, top: str, form: RecordForm, fields: dict[str, Any],
                   reselect: bool = True) -> bool:
        """Publish the form's ``fields``; True when saved. ``reselect``: show the saved
        record (False: the caller goes on to another record or topic)."""
        key = form.key
        # the base is the revision the form loaded the record at: a change that arrived
        # while the user was editing is then a conflict, not silently overwritten
        if form.is_new:
            # a re-create keeps the deleted record's own key (refs to it point at it again);
            # new_key is above every key known, the deleted ones too
            if self.sat.project.model(top).key == "int" and not form.deleted_by:
                # the key offered by Ctrl+N may have been taken meanwhile (hub data arrived,
                # another save): a new record takes the next free key when it is saved
                try:
                    fresh = self.sat.new_key(top)
                except OutpostError as exc:
                    self.show_error(f"cannot make a new key: {exc}")
                    return False
                if int(fresh) > int(key):
                    self.status.showMessage(f"{key} was taken meanwhile: saved as {fresh}",
                                            10000)
                    key = fresh
                    form.set_new_key(key)
            # named by its label, as elsewhere (session 14: "Undo new 01a21f59")
            label = _short(form.title_of(key, fields))
            self._saving = key  # its row may leave the table: not said as left unsaved
            try:
                ok = self.publish([Action(top, key, Cmd.NEW, fields)],
                                  f"re-create {label}" if form.deleted_by else f"new {label}",
                                  base=form.base)
            finally:
                self._saving = ""
        else:
            model = self.sat.project.model(top)
            names = ", ".join(f.title for f in model.fields if f.name in fields)
            self._saving = key
            try:
                ok = self.publish([Action(top, key, Cmd.MOD, fields)],
                                  f"edit {names} of {_short(form.title.text())}",
                                  base=form.base)
            finally:
                self._saving = ""
        if ok and not reselect:
            form.clear()  # saved; the caller shows another record or topic
        elif ok:
            if top == self._top and not self.select_key(key):
                self._reselect("")  # no other record shown as selected
                if self.filter.text():
                    self.status.showMessage(
                        f"Saved {form.title.text()}; it no longer matches the filter "
                        f"\u201c{self.filter.text()}\u201d (shown here until you open "
                        "another record)", 15000)
            rv = self.sat.record(top, key)
            if rv is not None:
                form.load(rv)
            # the edit is saved: the keys go to the records again, as after any step of a
            # record editor (Ctrl+Z undoes the save, arrows move on), not to the field typed in
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        return ok

    def delete_record(self) -> None:
        key = self.current_key()
        if not key:
            self.status.showMessage("Select a record to delete", 4000)
            return
        top, form = self._top, self.form
        what = self._title(top, key)
        if form.has_edits and not self.ask_delete_typed(what):
            return  # Cancel: the record and the typing stay as they are
        if self.publish([Action(top, key, Cmd.DEL)], f"delete {what}",
                        undone=lambda: self._undeleted(top, key, what)):
            # nothing selected, as the form shows nothing (merge review 11: the removed row
            # moved the selection to the next one while the form said "No sites selected",
            # and a second Ctrl+Delete deleted that one)
            self.table.clearSelection()
            form.clear()
            self.history.set_record(top, "")
            # no question (a field user deletes in a row); the delete is one undo step, and
            # the status bar says so (session 11: nothing said it had happened), the hint
            # first (a long title cut it off)
            undo = self.undo_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            self.status.showMessage(f"{undo} to undo — deleted {what}", 15000)

    def _table_delete(self) -> None:
        """Del in the records table: Delete (not while a cell is being edited)."""
        if self.table.state() != QAbstractItemView.State.EditingState \
                and self.delete_action.isEnabled():
            self.delete_record()

    def ask_delete_typed(self, what: str) -> bool:
        """Delete / Cancel (Cancel the default) before deleting a record whose form has
        unsaved typing: True for Delete. Ctrl+Delete itself asks nothing (a field user
        deletes in a row, and Ctrl+Z undoes it), but the undo of a delete brings back the
        record as saved, not the typing: deleting it unasked dropped the typing for good
        (user review 12; Ctrl+Delete, "delete the next word" in a text field, did it)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes",
                          f"Delete {what} with your unsaved changes?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("delete_typed")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setInformativeText("Delete drops what you typed in it (Ctrl+Z brings the record "
                               "back as saved, not the typing); Cancel goes back to it.")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def _title(self, top: str, key: str) -> str:
        """A record's title as its form names it ("Sites: Alder Creek"), its key when it
        cannot be read."""
        form = self.forms.get(top)
        if form is not None and form.key == key and not form.is_new:
            return form.title.text()
        try:
            rv = self.sat.record(top, key)
        except OutpostError:
            rv = None
        if form is None or rv is None or rv.fields is None:
            return f"{top} {key}"
        return form.title_of(key, rv.fields)

    def _undeleted(self, top: str, key: str, what: str) -> None:
        """The undo of a delete: the record selected and shown again, and said."""
        if top == self._top and not self.form.has_edits and self.select_key(key):
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        self.status.showMessage(f"Back: {what} (undid its delete)", 15000)

    def _restore(self, acts: list[Action]) -> None:
        self.publish(acts, "restore version")

    def publish(self, acts: Sequence[Action], text: str, base: Rev | None = None,
                undone: Callable[[], None] | None = None) -> bool:
        """Publish ``acts`` through the satellite as one undoable step; False on error.

        ``base``: the replica revision the edit was made on (default: the current one);
        ``undone``: called after each undo of it that published."""
        try:
            undo = inverse(self.sat, acts)
            if base is None:
                base = self.sat.rev()  # what the user sees now
            self.sat.pub(acts, base=base)
        except OutpostError as exc:
            # the directory gone: its cause, not the read that failed on it first
            why = self.sat.dir_gone() or str(exc)
            self._said(why)
            if self._top in self.forms:
                self.form.show_errors(why)
            return False
        # a failed save's error is stale now (session 16: "… disk is full … nothing was
        # applied" stayed 10 s after the save that worked once space was back)
        self._unsay(self._save_error)
        # undo and redo publish on the same base: a colleague's later change of these
        # fields then makes them a conflict instead of being overwritten
        self.undo_stack.push(PubCommand(self.sat, text, acts, undo, self.show_error, base,
                                        undone))
        return True

    def show_error(self, text: str) -> None:
        """Show an error where the user looks: the status bar (and its tooltip)."""
        self.status.showMessage(text, 10000)

    def _said(self, text: str) -> None:
        """A save's (or the drafts') error: shown, and taken back once one works
        (:meth:`_unsay`)."""
        self._save_error = text
        self.show_error(text)

    def _unsay(self, text: str) -> None:
        """Take ``text`` (an error :meth:`_said`) off the status bar if it is still there:
        what failed works again."""
        if text and self.status.currentMessage() == text:
            self.status.clearMessage()
        if text == self._save_error:
            self._save_error = ""

    # -- sync ----------------------------------------------------------------------------------

    def on_change(self, ch: Change) -> None:
        """Forward a satellite change notice to every model and view. It asks nothing: it
        may come from inside the sync's asyncio task, where a modal's event loop stalls the
        sync and breaks asyncio (session 16)."""
        self._notice += 1
        try:
            self._on_change(ch)
        finally:
            self._notice -= 1
        if not self._notice:
            self._say_left()

    def _on_change(self, ch: Change) -> None:
        if not self._apply_timer.isActive() and self.sat.applying():
            # new edits to apply in steps (File → Import CSV's, session 15), as at start
            self.status.show_applying(self.sat.applying())
            self._apply_timer.setInterval(0)
            self._apply_timer.start()
        # the record shown in a clean form: when the hub deleted it, the removed row moves
        # the selection to its neighbour, which the status bar then says
        form = self.forms.get(self._top)
        shown = ((self._top, form.key, form.title.text())
                 if form is not None and form.key and not form.is_new and not form.dirty
                 and (ch.reset or form.key in ch.records.get(self._top, ())) else None)
        try:
            # the tables first: after a catch-up their (coalesced) reloads then run before
            # the sidebar's recount, which takes their counts instead of reading again
            for m in self.record_models.values():
                m.on_change(ch)
            known = {t: m.total() for t, m in self.record_models.items()
                     if (ch.reset or t in ch.records) and m.complete}
            self.topics.on_change(ch, known)
            self.history.on_change(ch)
            if ch.status or ch.receipts:
                self.refresh_status()
            self._refresh_form(ch)
            if shown is not None:
                self._say_deleted(*shown)
        except OutpostError as exc:  # e.g. the database went away: show it, keep running
            self.show_error(f"cannot refresh the view: {exc}")

    def _say_deleted(self, top: str, key: str, title: str) -> None:
        """The record ``key`` was shown (unedited) when a change came: when someone deleted it
        on the hub (not one's own delete, which is pending), say so and by whom."""
        rv = self.sat.record(top, key)
        if rv is not None and (rv.fields is not None or rv.pending):
            return
        if rv is None and not any(h.cmd == Cmd.DEL for h in self.sat.history(top, key)):
            return  # a record of one's own, deleted before the hub had it: nobody else did
        now = self.form.key if self._top == top else ""
        then = (f"; showing {self.form.title.text()}" if now and now != key
                else "")
        self.status.showMessage(f"{title} was deleted by {self._deleted_by(top, key)} on the "
                                f"hub{then}", 10000)

    def _refresh_form(self, ch: Change) -> None:
        if not self._top or self._top not in self.forms:
            return
        form = self.form
        if not form.key or form.is_new:
            return
        if form.dirty:  # keep the user's edits; their base makes a collision a conflict
            if ch.reset or form.key in ch.records.get(self._top, ()):
                rv = self.sat.record(self._top, form.key)
                if rv is None or rv.fields is None:
                    self._keep_deleted(form)  # deleted under the edits: kept, said so
                else:
                    form.note_changed(rv)
            return
        if ch.reset or form.key in ch.records.get(self._top, ()):
            rv = self.sat.record(self._top, form.key)
            if rv is None or rv.fields is None:
                if self._keyboard_in(form):
                    # the keyboard is in it: kept with its values, said deleted (Re-create /
                    # Discard), not emptied or swapped under the cursor (merge review 16b)
                    self._keep_deleted(form)
                else:
                    form.clear()
            else:
                with _cursor_kept(form):
                    form.load(rv)

    def show_conflicts(self) -> ConflictsDialog | None:
        """Sync → Conflicts: the conflicts view, shown. While the unsynced edits are being
        applied at start it opens once they are (its rows need them all: session 15, it
        applied the rest at once, a stall of seconds), said in the status bar; None then."""
        if self._apply_timer.isActive():
            self.status.showMessage(
                f"Conflicts: applying {self.sat.applying():,} unsynced edits first; the "
                "conflicts view opens once they are", 10000)
            self._once_applied("conflicts", self.show_conflicts)
            return None
        if self.conflicts_dialog is None:
            self.conflicts_dialog = dlg = ConflictsDialog(self.sat, self)
            dlg.failed.connect(self.show_error)
            dlg.resolved.connect(lambda text: self.status.showMessage(text, 15000))
            # the window's shortcuts work in the conflicts view too (a shortcut acts in the
            # windows its action is added to); Ctrl+Delete does not: it would delete the
            # record selected in the window, not anything the view shows
            dlg.addActions([a for a in self._shortcut_actions() if a is not self.delete_action])
        # rebuilt only if what changed since its rows were built concerns them (session 13:
        # every open rebuilt them, 1.2 s with 1,092 conflicts)
        self.conflicts_dialog.catch_up()
        self.status.conflicts_seen()
        self.conflicts_dialog.show()
        self.conflicts_dialog.raise_()
        return self.conflicts_dialog

    def _shortcut_actions(self) -> list[QAction]:
        """The actions of the shortcuts in docs/desktop.md."""
        return [self.new_action, self.save_action, self.revert_action, self.delete_action,
                self.undo_action,
                self.redo_action, self.sync_action, self.offline_action,
                self.conflicts_action, self.history_action, self.find_action,
                self.problem_action, self.import_action, self.export_action,
                self.help_action]

    # -- CSV import and export ------------------------------------------------------------------

    def import_csv(self, file: str = "", sheet: bool = False, *,
                   again: frozenset[int] | None = None,
                   stamp: tuple[int, int, int] | None = None) -> CsvJob | None:
        """File → Import CSV…: ``outpost import`` of ``file`` (asked for when empty) into the
        current topic, a step per turn of the event loop with progress and Cancel; the
        summary, or the error naming the line and the fix, shows when it ends. ``sheet``
        (Import CSV from a spreadsheet export…): ``--from-spreadsheet``. ``again``: only
        these lines, made even when equal to a record (``--again --lines``: the result box's
        Make them anyway, of the file as ``stamp`` says the first import read it)."""
        if not self._top or self.csv_job is not None:
            return None
        self._to_front()
        if not file:
            file, _ = QFileDialog.getOpenFileName(
                self, f"Import CSV into {self.records.model_def.title}", "",
                "CSV files (*.csv);;All files (*)")
            if not file:
                return None
        job = CsvImport(self.sat, self._top, file, sheet=sheet,  # type: ignore[arg-type]
                        staged=True, again=again is not None, lines=again, stamp=stamp)
        self._csv_again = None

        def summary() -> str:
            # the app's own words for the rows queued alone (the CLI's name its commands)
            clashes = (f"{plural(len(job.clashes), 'row')} changed cells someone else "
                       "changed since the file was exported: "
                       + _few(f"{c['key']} ({', '.join(c['fields']) or 'the record'})"
                              for c in job.clashes)
                       + ". Those cells were queued as a change of their own (the row's other "
                       "cells as usual); once synced, choose yours or theirs in the conflicts "
                       "view" if job.clashes else "")
            c = job.counts
            kept = (f"{plural(c.kept_rows, 'row')} still had the value of fields another "
                    "user changed since the export: those were left as they are now: "
                    + _few((f"{key} ({', '.join(fs)})" for _, _, key, fs in c.kept),
                           c.kept_rows) if c.kept_rows else "")
            own = (f"{plural(c.own_rows, 'row')} had the value from before a change of "
                   "yours not synced yet (the file comes from a laptop that did not have it): "
                   "your change was kept: "
                   + _few((f"{key} ({', '.join(fs)})" for _, _, key, fs in c.own),
                          c.own_rows) if c.own_rows else "")
            # review muser13: another value than the pending edit's and the one before it
            differs = (f"{plural(c.own_differs_rows, 'row')} had another value in a field you "
                       "changed and have not synced yet (the file comes from a laptop that "
                       "synced later: the value may be a change this laptop has not received, "
                       "or the file's own): your change was kept: "
                       + _few((f"{key} ("
                               + ", ".join(f"{k}: the file has {cell_text(v)}"
                                           for k, v in cs.items()) + ")"
                               for _, _, key, cs in c.own_differs), c.own_differs_rows)
                       + f". Sync now ({SYNC_KEY}) to see whose it is, then import the file "
                       "again to send the file's" if c.own_differs_rows else "")
            unreceived = (f"{plural(c.unreceived_rows, 'row')} named records this laptop has "
                          "not received yet (the file comes from a laptop that synced later): "
                          "skipped, not made as new records: "
                          + _few((key for _, _, key in c.not_received), c.unreceived_rows)
                          + f". Sync now ({SYNC_KEY}), then import the file again"
                          if c.unreceived_rows else "")
            keys = (f"{plural(c.new_key_rows, 'row')} had a key that was not in the export, "
                    "so each made a new record: "
                    + _few((key for _, _, key in c.new_keys), c.new_key_rows)
                    + ". To make new records, leave the key empty; a record's key cannot be "
                    "changed (if you meant to, delete the new record)" if c.new_key_rows
                    else "")
            gone = (f"{plural(c.dropped_rows, 'unchanged row')} of records deleted since "
                    f"the export {'was' if c.dropped_rows == 1 else 'were'} skipped: "
                    + _few((f"{key} (deleted {who})" for _, _, key, who in c.dropped),
                           c.dropped_rows) if c.dropped_rows else "")
            # every line skipped and the record it equals (user review 13: only a count)
            again = (f"{plural(c.repeat_rows, 'row')} without a key "
                     f"{'was' if c.repeat_rows == 1 else 'were'} skipped: "
                     + ("it equals" if c.repeat_rows == 1 else "each equals")
                     + " a record that exists in every field (made by an earlier import of "
                     "the file?), so that importing a sheet again does not make its new rows "
                     "again: "
                     + _few((f"line {line} (= {key})" for line, _, key in c.repeats),
                            c.repeat_rows)
                     + ". To make them anyway, click Make them anyway"
                     if c.repeat_rows else "")
            if c.repeat_rows and job.stamp is not None:
                self._csv_again = (file, sheet, frozenset(c.repeat_at), job.stamp)
            notes = [n for n in (job.overwrite_note(), job.zone_note(),
                                 job.ahead_note(f"Sync now ({SYNC_KEY})"),
                                 clashes, kept, own, differs, unreceived, keys, gone,
                                 again,
                                 *job.dangling_lines(),
                                 job.sheet_note("File → Import CSV from a spreadsheet export…"))
                     if n]
            return job.summary() + "".join(f".\n\n{n[0].upper()}{n[1:]}" for n in notes)

        return self._run_csv(CsvJob(self, f"Import of {Path(file).name}", import_steps(job),
                                    summary, job.stopped))

    def export_csv(self, file: str = "", sheet: bool = False) -> CsvJob | None:
        """File → Export CSV…: the current topic's records as ``outpost export`` writes
        them, to ``file`` (asked for when empty), replaced only once complete. ``sheet``
        (Export CSV for a spreadsheet…): ``--for-spreadsheet``."""
        if not self._top or self.csv_job is not None:
            return None
        self._to_front()
        if not file:
            file, _ = QFileDialog.getSaveFileName(
                self, f"Export {self.records.model_def.title} as CSV",
                f"{self._top}.csv", "CSV files (*.csv);;All files (*)")
            if not file:
                return None
        run = ExportRun(self.sat, self._top, file, sheet=sheet)
        return self._run_csv(CsvJob(self, f"Export of {self._top}", export_steps(run),
                                    run.summary, run.stopped))

    def _run_csv(self, job: CsvJob) -> CsvJob:
        # an import checks its rows on, and an export writes, the records with every
        # unsynced edit: the rest of a build started at open is done now (its steps are
        # lazy: nothing read yet)
        self.sat.build_overlay(whole=True)
        self.csv_job = job
        for a in (self.import_action, self.export_action, self.import_sheet_action,
                  self.export_sheet_action):
            a.setEnabled(False)
        job.finished.connect(self._csv_done)
        return job

    def _csv_done(self, ok: bool, title: str, text: str) -> None:
        self.csv_job = None
        redo, self._csv_again = self._csv_again, None
        for a in (self.import_action, self.import_sheet_action):
            a.setEnabled(not self._read_only)  # a reader's stay off
        self.export_action.setEnabled(True)
        self.export_sheet_action.setEnabled(True)
        self.status.showMessage(f"{title}: {text.splitlines()[0]}", 10000)
        if self.csv_box is not None:
            self.csv_box.close()
        # not modal: the window stays usable while the summary is read
        text = text[:1].upper() + text[1:]
        lines = text.splitlines()
        long = len(lines) > _BOX_LINES
        # a long list (every bad row of a file: 50 lines) in a scrollable text view below the
        # first line, shown open, not a label as tall as the list (user review 12: the box was
        # 1,512-2,912 px tall, its Close button off the screen)
        self.csv_box = box = QMessageBox(
            QMessageBox.Icon.Information if ok else QMessageBox.Icon.Warning, title,
            f"{lines[0]}\n\n(the {len(lines) - 1:,} lines below)" if long else text,
            QMessageBox.StandardButton.Close, self)
        box.setObjectName("csv_result")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setWindowModality(Qt.WindowModality.NonModal)
        if long:
            box.setDetailedText("\n".join(lines[1:]))
            for b in box.buttons():  # "Show Details…": open from the start
                if box.buttonRole(b) == QMessageBox.ButtonRole.ActionRole:
                    b.click()
        if ok and redo is not None:
            # the skipped repeats made after all: only their lines, of the same file
            make = box.addButton("Make them anyway", QMessageBox.ButtonRole.ActionRole)
            make.setObjectName("make_anyway")
            file, sheet, skipped, stamp = redo

            def make_them() -> None:
                box.close()
                self.import_csv(file, sheet, again=skipped, stamp=stamp)

            make.clicked.connect(make_them)
        box.show()

    def csv_text(self) -> str:
        """The text of the CSV result box: its text, or its first line and the lines below
        (a long list, in a scrollable text view)."""
        box = self.csv_box
        if box is None:
            return ""
        if not box.detailedText():
            return box.text()
        return box.text().split("\n\n(the ", 1)[0] + "\n" + box.detailedText()

    def _offline_toggled(self, offline: bool) -> None:
        self.offline_action.setChecked(offline)
        try:
            self.sync.set_offline(offline)
        except OutpostError as exc:
            self.show_error(str(exc))
        self.status.showMessage("Working offline" if offline else "Going online", 3000)
        # the sync machine may not change state (the hub was already out of reach), so
        # no status notice would come: show "Working offline" / "Offline" now
        self.refresh_status()

    APPLY_STEP_S = 0.03
    """CPU seconds of one step of building the pending edits' overlay after the window
    appeared (:meth:`_apply_step`)."""

    def _apply_step(self) -> None:
        """One step of applying the pending edits to what the window shows
        (``Satellite.build_overlay``); at the end the satellite's change notice brings the
        records' pending marks and values, and what waited for it runs (the sync)."""
        try:
            done = self.sat.build_overlay(self.APPLY_STEP_S)
        except OutpostError as exc:  # e.g. the replica unreadable: said, tried again
            self.show_error(f"cannot apply the unsynced edits: {exc}")
            self._apply_timer.setInterval(1000)
            return
        self._apply_timer.setInterval(0)  # again at once after a failed step
        if not done:
            self.status.show_applying(self.sat.applying())
            return
        self._apply_timer.stop()
        self.status.show_applying(0)
        todo, self._when_applied = self._when_applied, []
        for fn in todo:
            fn()

    def _once_applied(self, what: str, fn: Callable[[], None]) -> None:
        """:meth:`when_applied` of ``fn``, once however often it is asked for (``what``
        names it): pressing F5 three times while applying syncs once after."""
        if what not in self._asked:
            self._asked.add(what)

            def run() -> None:
                self._asked.discard(what)
                fn()

            self.when_applied(run)

    def when_applied(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the pending edits are applied to what the window shows (at once
        when they are)."""
        if self._apply_timer.isActive():
            self._when_applied.append(fn)
        else:
            fn()

    def refresh_status(self) -> None:
        """Show the satellite's status, with the wait until the next retry of the hub (none
        while working offline by choice: the countdown's timer stops at once, and starts
        again with the first retry once online)."""
        retry = getattr(self.sync, "retry_in", None)
        try:
            st = self.sat.status()
            # offline by choice: the client is being stopped, its last retry time is moot
            wait = retry() if callable(retry) and not st.offline_mode else None
        except OutpostError as exc:
            self.show_error(f"cannot refresh the status: {exc}")
            return
        refused = self._refused() if st.last_error else 0
        if refused:
            wait = None  # sync stopped on the refusal: nothing is retried
        self.status.show_status(st, wait)
        self._show_token()
        # sync stopped for good (another schema, ledger, a restore): a pending record's
        # state line says it does not reach the hub (session 15: "waiting for the hub")
        self._stopped = stopped_for_good(st.last_error)
        for f in self.forms.values():
            f.set_sync_stopped(self._stopped)
        if refused:
            self.status.error.setText(f"{self.status.error.text()} — sync stopped; "
                                      f"Sync now ({SYNC_KEY}) tries again")
        self._show_read_only()
        if wait is None:
            self._retry_timer.stop()
        elif not self._retry_timer.isActive():
            self._retry_timer.start()
        if self.problem_box is not None and self.problem_box.isVisible():
            self._fill_problem(self.problem_box)

    def _show_token(self) -> None:
        """Which token the sync uses, in the hub's tooltip (its last 4 characters: enough to
        tell two apart, and no more of the secret on screen), and a new one waiting for the
        hub to answer the edits sent with the old one (session 15: nothing said which was in
        use while it waited)."""
        cfg = getattr(self.sat, "config", None)
        tok = getattr(cfg, "token", "")
        if not tok:
            return
        waiting = getattr(self.sync, "switching", "")
        hub = self.status.hub
        tip = f"{hub.toolTip()}\nToken in use: the one ending in …{tok[-4:]}"
        if waiting:
            tip += (f"\nNew token (ending in …{waiting[-4:]}): used once the hub answered "
                    "the edits sent with the one in use")
            hub.setText(f"{hub.text()} (new token waiting)")
        hub.setToolTip(tip)

    def show_sync_problem(self) -> QMessageBox:
        """The last sync problem in full (what went wrong and what to do), in a window that
        does not block the app; "Open conflicts" when edits were rejected."""
        self._to_front()
        box = self.problem_box
        if box is None:
            self.problem_box = box = QMessageBox(self)
            box.setObjectName("sync_problem")
            box.setWindowTitle("Sync problem")
            box.setIcon(QMessageBox.Icon.Warning)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.addButton(QMessageBox.StandardButton.Close)
            self._open_conflicts = box.addButton("Open conflicts",
                                                 QMessageBox.ButtonRole.ActionRole)
            self._open_conflicts.clicked.connect(self.show_conflicts)
            self._discard_button = box.addButton("&Discard pending edits",
                                                 QMessageBox.ButtonRole.ActionRole)
            self._discard_button.setToolTip("The hub lets you only read: drop the edits it "
                                            "will never take (kept as receipts)")
            self._discard_button.clicked.connect(self.discard_pending)
        self._fill_problem(box)
        box.show()
        box.raise_()
        return box

    def _show_read_only(self, form: RecordForm | None = None) -> None:
        """While the hub lets this user only read: New, Save and Delete (and each form's Save
        button) disabled, their tooltips saying why and the fix (they would be refused)."""
        try:
            why = self.sat.read_only_reason()
        except OutpostError:
            return
        if why == self._read_only and form is None:
            return
        self._read_only = why
        fix = (f"{why}: edits are refused. Ask the hub's operator for a writer token and "
               "enter it in File → Connection settings") if why else ""
        for a, tip in ((self.new_action, "New record"), (self.save_action, "Save the record"),
                       (self.delete_action, "Delete the record"),
                       (self.import_action, "Import CSV into the current topic")):
            a.setEnabled(not why)
            a.setToolTip(fix or f"{tip} ({a.shortcut().toString()})")
        self.import_sheet_action.setEnabled(not why)
        for f in [form] if form is not None else self.forms.values():
            f.save_button.setEnabled(not why)
            f.save_button.setToolTip(fix)

    def discard_pending(self) -> int:
        """Discard, after asking, the pending edits the hub will never take (the user may
        only read); they stay as receipts. How many were discarded."""
        uids = [r.uid for r in self.sat.receipts([ReceiptState.PENDING])]
        if not uids or not self._read_only:
            return 0
        ask = QMessageBox(QMessageBox.Icon.Question, "Discard pending edits",
                          f"Discard your {plural(len(uids), 'pending edit')}? The hub lets "
                          "you only read: it will never take them (they are kept as "
                          "receipts, marked discarded).", parent=self)
        yes = ask.addButton(f"Discard {len(uids)}", QMessageBox.ButtonRole.DestructiveRole)
        ask.setDefaultButton(ask.addButton(QMessageBox.StandardButton.Cancel))
        ask.exec()
        if ask.clickedButton() is not yes:
            return 0
        done = 0
        for uid in uids:
            try:
                self.sat.discard(uid)
            except OutpostError as exc:
                self.show_error(f"cannot discard {uid}: {exc}")
                break
            done += 1
        self.status.showMessage(f"Discarded {plural(done, 'pending edit')}", 10000)
        self.refresh_status()
        return done

    def _fill_problem(self, box: QMessageBox) -> None:
        err = self.status.last_error
        summary = self.status.error.text()
        if err:
            box.setText(summary)
            refused = self._refused()
            if refused == 403:  # the CLI's words, with the app's way to try again
                err += ("\n\nNot tried again: a policy does not change by waiting; once the "
                        "hub (or the proxy) lets this computer through, use Sync now "
                        f"({SYNC_KEY}).")
            elif refused:
                err += ("\n\nNot tried again: enter a valid token in File → Connection "
                        f"settings, or use Sync now ({SYNC_KEY}) once the hub takes it.")
            elif stopped_for_good(err) == BAD_HUB_VALUE:  # the hub's to fix, not a new dir
                err += "\n\n" + bad_value_steps(self._pending())
            elif stopped_for_good(err):  # the app's steps, not only the command line's
                data = getattr(getattr(self.sat, "data", None), "path", None)
                err += "\n\n" + new_dir_steps(err, str(data or "this data directory"),
                                               self._pending())
            box.setInformativeText(err)
        else:
            box.setText("No sync problem")
            box.setInformativeText(self.status.conn.text() + "; " + self.status.last_sync.text())
        self._open_conflicts.setVisible(self.status.conflict_count > 0)
        self._discard_button.setVisible(bool(self._read_only) and self._pending() > 0)

    def _refused(self) -> int:
        """401 or 403 when sync stopped on the hub's (or a proxy's) refusal (not retried:
        Sync now tries again); 0 otherwise (and for a sync control that does not say)."""
        refused = getattr(self.sync, "refused", None)
        return int(refused()) if callable(refused) else 0

    def _pending(self) -> int:
        try:
            return self.sat.status().pending
        except OutpostError:
            return 0

    def _sync_now(self) -> None:
        if self._apply_timer.isActive():
            # the first reply would apply the rest of the unsynced edits at once (session 15:
            # a stall of seconds): the sync starts once the steps are done, as at start
            self.status.showMessage(
                f"Sync now: applying {self.sat.applying():,} unsynced edits first; the sync "
                "starts once they are", 10000)
            self._once_applied("sync", self._sync_now)
            return
        try:
            self.sync.sync_now()
        except OutpostError as exc:
            self.show_error(str(exc))

    def _settings(self) -> None:
        if self._on_settings is not None:
            self._on_settings()

    def changeEvent(self, event: QEvent) -> None:
        """The palette changed (a dark theme chosen while the app runs): the coloured texts
        and the line icons are taken from it again (the tables' rows follow by themselves)."""
        if event.type() == QEvent.Type.PaletteChange:  # (the application's, posted)
            retone(self)
            refresh_icons(self)
            self.side.setTabIcon(self.side.indexOf(self.history), icon("history"))
        super().changeEvent(event)

    def event(self, event: QEvent) -> bool:
        """Status tips (a hovered menu entry's) go to the status bar's message label:
        QMainWindow would show them as QStatusBar's own message, which hides the status."""
        if event.type() == QEvent.Type.StatusTip and isinstance(event, QStatusTipEvent):
            tip = event.tip()
            if tip:
                self.status.showMessage(tip)
            elif self._tip and self.status.currentMessage() == self._tip:
                self.status.clearMessage()  # the pointer left the entry: its tip goes
            self._tip = tip
            return True
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        # every form with something typed (a new record filled in too): Save / Discard /
        # Cancel; Cancel (or a save that failed) keeps the window open. Not at SIGTERM:
        # the typing is kept as drafts (keep_drafts) and put back at the next start
        for top in [t for t, f in self.forms.items() if f.has_edits and not self.terminating]:
            if not self.settle_edits(top, "closing the window"):
                event.ignore()
                return
        self._draft_timer.stop()
        if not self.terminating:
            self.write_drafts()  # saved or discarded: the file goes (drafts not put back stay)
        if self.csv_job is not None:
            self.csv_job.cancel()  # between two steps: what was queued stays queued
        if self.key_scan is not None:
            self.key_scan.join(10)  # the satellite is closed next: not under a scan
        self._unlisten()
        self._retry_timer.stop()  # the satellite is closed next: no more status reads
        if self.conflicts_dialog is not None:
            self.conflicts_dialog.detach()
        QSettings().setValue("window/geometry", self.saveGeometry())
        super().closeEvent(event)


@contextlib.contextmanager
def _cursor_kept(form: QWidget) -> Iterator[None]:
    """The text cursor of the form's field with the keyboard stays where it was while the
    form shows the record again (review a11y 16: a colleague's change to the record on screen
    moved it to the end of the field being read); clamped when that field's text is shorter."""
    focus = QApplication.focusWidget()
    if not isinstance(focus, QLineEdit | QPlainTextEdit) or not form.isAncestorOf(focus):
        yield
        return
    if isinstance(focus, QLineEdit):
        pos, start, n = focus.cursorPosition(), focus.selectionStart(), len(focus.selectedText())
        yield
        if n and start + n <= len(focus.text()):  # the selection, its cursor end as it was
            focus.setSelection(start, n) if pos == start + n else focus.setSelection(
                start + n, -n)
        else:
            focus.setCursorPosition(min(pos, len(focus.text())))
        return
    cur = focus.textCursor()
    anchor, pos = cur.anchor(), cur.position()
    yield
    cur = focus.textCursor()
    end = len(focus.toPlainText())
    cur.setPosition(min(anchor, end))
    cur.setPosition(min(pos, end), QTextCursor.MoveMode.KeepAnchor)
    focus.setTextCursor(cur)


def _few(items: Any, total: int | None = None, most: int = 10) -> str:
    """The first ``most`` of ``items`` joined, then "and N more" (``total``: how many there
    are, when ``items`` holds only the first of them)."""
    items = list(items)
    total = len(items) if total is None else total
    shown = items[:most]
    return ", ".join(shown) + (f" and {total - len(shown):,} more" if total > len(shown) else "")


def _short(label: str, most: int = 40) -> str:
    """A record's label as an undo step names it ("Undo new Sites: Alpine meadow…"): cut
    with "…" past ``most`` characters, so the Undo button and the Edit menu stay narrow."""
    return label if len(label) <= most else label[:most - 1].rstrip() + "…"
