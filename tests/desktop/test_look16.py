"""Review a11y 16 (display and screen reader): colours readable under a dark palette and a
light one (WCAG contrast of what the models and widgets give), a row's pending / conflict
state and a field's error told to a screen reader, the form's state line reachable, and a
large font neither widening the window past a laptop's screen nor kept out by fixed sizes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QStyleFactory, QWidget

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import SatStatus
from desktop.icons import icon
from desktop.look import contrast
from desktop.mainwindow import MainWindow
from desktop.models import ConflictsModel, RecordTableModel
from desktop.widgets.form import UNSAVED, RecordForm
from desktop.widgets.statusbar import SyncStatusBar
from tests.desktop.fakes import FakeSatellite
from tests.desktop.test_window_fake import FakeSync

TEXT = 4.5  # WCAG AA, normal text
GRAPHIC = 3.0  # WCAG 1.4.11, the lines of an icon
R = QPalette.ColorRole


def dark_palette() -> QPalette:
    """The review's dark palette (a dark desktop theme as Qt gives it to the app)."""
    p = QPalette()
    for role, c in ((R.Window, "#2b2b2b"), (R.WindowText, "#eeeeee"), (R.Base, "#1e1e1e"),
                    (R.AlternateBase, "#262626"), (R.Text, "#eeeeee"), (R.Button, "#353535"),
                    (R.ButtonText, "#eeeeee"), (R.Highlight, "#2f65ca"),
                    (R.HighlightedText, "#ffffff"), (R.ToolTipBase, "#353535"),
                    (R.ToolTipText, "#eeeeee"), (R.PlaceholderText, "#999999"),
                    (R.Mid, "#555555"), (R.Light, "#505050"), (R.Dark, "#1a1a1a")):
        p.setColor(role, QColor(c))
    return p


def light_palette() -> QPalette:
    style = QStyleFactory.create("Fusion")
    assert style is not None
    return style.standardPalette()


@pytest.fixture(params=["dark", "light"])
def palette(request: Any, qapp: QApplication) -> Iterator[QPalette]:
    old = QPalette(qapp.palette())
    pal = dark_palette() if request.param == "dark" else light_palette()
    qapp.setPalette(pal)
    try:
        yield pal
    finally:
        qapp.setPalette(old)


@pytest.fixture
def big_font(qapp: QApplication) -> Iterator[QFont]:
    old = QFont(qapp.font())
    f = QFont(old)
    f.setPointSize(18)
    qapp.setFont(f)
    try:
        yield f
    finally:
        qapp.setFont(old)


def text_color(w: QWidget) -> QColor:
    """The colour a label's text is drawn in (its style sheet applied)."""
    w.ensurePolished()
    return w.palette().color(w.foregroundRole())


def pending_and_conflict(hub: MemLedger, sat: FakeSatellite) -> None:
    """s1 in conflict (mine and theirs changed its name and region), s2 pending."""
    sat.pub([Action("field.site", "s1", Cmd.MOD, {"name": "Mine", "region": "Mine R"})])
    hub.publish(Trans((Action("field.site", "s1", Cmd.MOD,
                              {"name": "Theirs", "region": "Theirs R"}),), base=hub.rev()),
                "alice")
    sat.sync()
    sat.pub([Action("field.site", "s2", Cmd.MOD, {"region": "Pending R"})])


def test_pending_and_conflict_rows_read_under_the_palette(
        palette: QPalette, hub: MemLedger, fake_sat: FakeSatellite) -> None:
    """A row's background comes with its text colour (review: the palette's light text on a
    fixed light background, 1.05:1 in a dark theme)."""
    pending_and_conflict(hub, fake_sat)
    m = RecordTableModel(fake_sat, "field.site")
    states = {}
    for row in range(m.rowCount()):
        for col in range(m.columnCount()):
            ix = m.index(row, col)
            bg = m.data(ix, Qt.ItemDataRole.BackgroundRole)
            fg = m.data(ix, Qt.ItemDataRole.ForegroundRole)
            bg_c = bg.color() if bg is not None else palette.color(R.Base)
            fg_c = fg.color() if fg is not None else palette.color(R.Text)
            assert contrast(fg_c, bg_c) >= TEXT, (m.key_at(row), col)
        states[m.key_at(row)] = m.data(m.index(row, 0), Qt.ItemDataRole.BackgroundRole)
    # the states are still told apart by their backgrounds
    assert states["s1"] is not None and states["s2"] is not None
    assert states["s1"].color() != states["s2"].color()


def test_the_conflicts_views_kept_side_reads_under_the_palette(
        palette: QPalette, hub: MemLedger, fake_sat: FakeSatellite) -> None:
    pending_and_conflict(hub, fake_sat)
    m = ConflictsModel(fake_sat)
    tinted = 0
    for row in range(m.rowCount()):
        for col in range(m.columnCount()):
            ix = m.index(row, col)
            bg = m.data(ix, Qt.ItemDataRole.BackgroundRole)
            fg = m.data(ix, Qt.ItemDataRole.ForegroundRole)
            tinted += bg is not None
            bg_c = bg.color() if bg is not None else palette.color(R.Base)
            fg_c = fg.color() if fg is not None else palette.color(R.Text)
            assert contrast(fg_c, bg_c) >= TEXT, (row, col)
    assert tinted == m.rowCount()  # each row's kept side is shown


def test_the_forms_texts_read_under_the_palette(palette: QPalette, hub: MemLedger,
                                                fake_sat: FakeSatellite) -> None:
    """The state line (synced, pending, conflict, unsaved) and a field's error on the
    window's background (review: 2.2-2.9:1 in a dark theme)."""
    fake_sat.pub([Action("field.site", "s3", Cmd.NEW, {"name": "Synced"})])
    pending_and_conflict(hub, fake_sat)  # (its sync sends s3)
    form = RecordForm(fake_sat, fake_sat.project.model("field.site"))
    bg = palette.color(R.Window)
    seen = set()
    for key in ("s1", "s2", "s3"):
        rv = fake_sat.record("field.site", key)
        assert rv is not None
        form.load(rv)
        seen.add(form.state.text().split(":")[0].split(" ")[0])
        assert contrast(text_color(form.state), bg) >= TEXT, form.state.text()
    assert seen == {"⚠", "Pending", "Synced"}
    form.set_text("lat", "north")
    assert form.state.text() == UNSAVED
    assert contrast(text_color(form.state), bg) >= TEXT
    err = form.editors["lat"].error
    assert err.text().startswith("not a number")
    assert contrast(text_color(err), bg) >= TEXT


def test_the_status_bars_texts_read_under_the_palette(palette: QPalette) -> None:
    bar = SyncStatusBar()
    bar.show_status(SatStatus(conflicts=2, last_error="the hub is out of reach"))
    bar.show_applying(3)
    bg = palette.color(R.Window)
    for w in (bar.error, bar.applying):
        assert w.text() and contrast(text_color(w), bg) >= TEXT, w.text()
    bar.conflicts_seen()  # the count no longer on its own red background: on the bar's
    assert contrast(text_color(bar.conflicts), palette.color(R.Button)) >= TEXT


@pytest.mark.parametrize("name", ["undo", "redo", "history", "settings", "calendar", "sync",
                                  "restore"])
def test_line_icons_are_drawn_in_the_palettes_text_colour(palette: QPalette,
                                                          name: str) -> None:
    """Review: #444/#555 lines read 1.5-1.9:1 on a dark toolbar."""
    img = icon(name).pixmap(24, 24).toImage()
    inked = Counter(img.pixelColor(x, y).name() for x in range(img.width())
                    for y in range(img.height()) if img.pixelColor(x, y).alpha() > 200)
    assert inked, name
    ink = QColor(inked.most_common(1)[0][0])
    assert contrast(ink, palette.color(R.Window)) >= GRAPHIC, ink.name()


def test_a_rows_state_and_a_fields_error_reach_a_screen_reader(
        qapp: QApplication, hub: MemLedger, fake_sat: FakeSatellite) -> None:
    """Review: a conflict row read like a synced one; a field's error was a label beside
    it, not its description; the state line could not take focus."""
    pending_and_conflict(hub, fake_sat)
    m = RecordTableModel(fake_sat, "field.site")
    rows = {m.key_at(r): r for r in range(m.rowCount())}
    acc_text, acc_desc = (Qt.ItemDataRole.AccessibleTextRole,
                          Qt.ItemDataRole.AccessibleDescriptionRole)
    conflict, pending = m.index(rows["s1"], 0), m.index(rows["s2"], 0)
    assert m.data(conflict, acc_text) == f"{m.data(conflict)}, in conflict"
    assert "Conflict" in m.data(conflict, acc_desc)
    assert m.data(pending, acc_text) == f"{m.data(pending)}, pending"
    assert "Pending" in m.data(m.index(rows["s2"], 1), acc_desc)  # every cell of the row
    form = RecordForm(fake_sat, fake_sat.project.model("field.site"))
    rv = fake_sat.record("field.site", "s2")
    assert rv is not None
    form.load(rv)
    lat = form.editors["lat"]
    form.set_text("lat", "north")
    assert lat.error.isVisibleTo(form) and lat.error.text()
    assert lat.widget.accessibleDescription().startswith(lat.error.text())
    form.set_text("lat", "46.5")
    assert not lat.error.text() and lat.widget.accessibleDescription() == ""
    assert form.state.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert form.state.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByKeyboard


def test_a_large_font_keeps_the_window_on_a_laptops_screen(
        qtbot: Any, big_font: QFont, fake_sat: FakeSatellite) -> None:
    """Review: at 18 pt the status bar's whole texts made the window 1,588 px wide (Work
    offline / Sync now off a 1,366 px screen); 11 and 15 px texts kept their size; topic
    names and the Latitude header were cut."""
    w = MainWindow(fake_sat, FakeSync(fake_sat))
    qtbot.addWidget(w)
    now = fake_sat.rev()
    w.status.show_status(SatStatus(online=True, hub="ws://hub.example.org:8765", since=now,
                                   hub_rev=now, conflicts=1, last_sync=now))
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    labels = [lb for lb in w.form.findChildren(QLabel) if lb.buddy() is not None]
    assert len(labels) == len(w.form.editors)
    for lb in labels:  # the field names whole ("Longitu" before)
        assert lb.width() >= lb.sizeHint().width(), lb.text()
    assert w.minimumSizeHint().width() <= 1280  # 1,543 px before
    for part in (w.status.conn, w.status.hub, w.status.hub_rev, w.status.last_sync):
        # cut with "…" where there is no room (the whole text in its tooltip)
        assert part.minimumSizeHint().width() <= 8 * part.fontMetrics().averageCharWidth()
    # sizes follow the user's font
    app_pt = big_font.pointSizeF()
    assert w.form.title.font().pointSizeF() > app_pt
    err = w.form.editors["lat"].error
    assert 0.8 * app_pt <= err.font().pointSizeF() < app_pt
    # the columns fit their headers at this size
    head = w.table.horizontalHeader()
    for c in range(w.records.columnCount()):
        title = w.records.headerData(c, Qt.Orientation.Horizontal)
        assert head.sectionSize(c) >= head.fontMetrics().horizontalAdvance(title) + 8, title
    assert w.topic_view.maximumWidth() >= w.topic_view.fontMetrics().horizontalAdvance(
        "Observations (100,000)") + 16
    assert w.table.verticalHeader().defaultSectionSize() > w.table.fontMetrics().height()


def ink(img_icon: Any) -> QColor:
    """The colour most of an icon's opaque pixels have."""
    img = img_icon.pixmap(24, 24).toImage()
    inked = Counter(img.pixelColor(x, y).name() for x in range(img.width())
                    for y in range(img.height()) if img.pixelColor(x, y).alpha() > 200)
    return QColor(inked.most_common(1)[0][0])


def test_a_theme_changed_while_the_app_runs_is_followed(
        qtbot: Any, qapp: QApplication, hub: MemLedger, fake_sat: FakeSatellite) -> None:
    """The desktop turns dark with the window open: its coloured texts and line icons are
    taken from the new palette (the rows' are at each paint)."""
    old = QPalette(qapp.palette())
    qapp.setPalette(light_palette())
    try:
        pending_and_conflict(hub, fake_sat)
        w = MainWindow(fake_sat, FakeSync(fake_sat))
        qtbot.addWidget(w)
        assert w.select_key("s2")
        assert w.form.state.text().startswith("Pending")
        w.status.show_status(SatStatus(conflicts=1, last_error="the hub is out of reach"))
        w.status.conflicts_seen()
        dark = dark_palette()
        qapp.setPalette(dark)
        qapp.processEvents()  # (the palette change is posted to the widgets)
        bg = dark.color(R.Window)
        for w_ in (w.form.state, w.status.error, w.status.conflicts):
            assert contrast(text_color(w_), bg) >= TEXT, w_.objectName()
        for action in (w.undo_action, w.redo_action):
            assert contrast(ink(action.icon()), bg) >= GRAPHIC, action.text()
        assert contrast(ink(w.history.restore.icon()), bg) >= GRAPHIC
        assert contrast(ink(w.status.sync.icon()), bg) >= GRAPHIC
    finally:
        qapp.setPalette(old)
