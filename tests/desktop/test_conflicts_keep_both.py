"""The conflicts view's Keep both and its guards (session 9, s9-conf): a record created on two
laptops offline under one key; Keep both (button and Ctrl+B) adds mine under a new key shown
(and editable) in the view; Keep mine asks before it replaces their record; a required field
of a record a resolution creates is ticked and greyed, with a tooltip saying why. Real
widgets (offscreen), real satellites (SQLite in tmp_path), a real hub (websockets on
127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.models.conflicts import COL_KEEP
from desktop.widgets.conflicts import BOTH_KEY, ConflictsDialog
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, dialog, hub, sync, two
from tests.desktop.test_edits_kept import Answer, answers, role

__all__ = ["answers", "hub"]  # the fixtures, used by name


async def clash(tmp_path: Path, project: Project, hub: Hub) -> tuple[Satellite, Satellite]:
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "camp", Cmd.NEW, {"name": "A camp", "region": "East"})])
    b.pub([Action(SITE, "camp", Cmd.NEW, {"name": "B camp"}),
           Action("field.obs", "o1", Cmd.NEW, {"species": "heron", "site": "camp"})])
    await sync(a, hub)
    await sync(b, hub)
    assert len(b.receipts([ReceiptState.REJECTED])) == 1
    return a, b


def state(hub: Hub, top: str, key: str) -> dict[str, Any] | None:
    st = hub.ledger.state(top, key)  # type: ignore[attr-defined]
    return None if st is None else {k: v for k, v in st.items() if v is not None}


async def test_keep_both_by_its_shortcut_with_a_key_typed(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await clash(tmp_path, project, hub)
    dlg = dialog(qtbot, b)
    qtmodeltester.check(dlg.model)
    assert dlg.keep_both.isEnabled()
    text = dlg.both_text.text()
    assert "Keep both: yours is added as a new record under the key below" in text
    assert "Keep mine: your values are set on their record (what only theirs has stays)" in text
    # user review 13 F2: the words said "replaces" and the view hid the region that stayed
    assert ('keep mine sets your values on their record (no second record); what only theirs '
            'has stays: Region “East”') in dlg.details.text()
    [region] = [r for r in dlg.model.rows() if r.field == "region"]
    assert region.theirs_only and not region.choosable
    row = dlg.model.rows().index(region)
    assert [dlg.model.data(dlg.model.index(row, c)) for c in (1, 3, 4)] == [
        "Region (only theirs: stays)", "(not set: theirs stays)", "East"]
    assert not dlg.new_key.isHidden() and dlg.new_key.text() not in ("", "camp")
    dlg.new_key.setText("camp-b")
    assert dlg.both_action.shortcut() == QKeySequence(BOTH_KEY)
    dlg.activateWindow()
    qtbot.waitUntil(dlg.isActiveWindow)
    dlg.table.setFocus()
    QTest.keySequence(dlg.table, QKeySequence(BOTH_KEY))
    assert b.receipts([ReceiptState.REJECTED]) == []
    assert dlg.model.rowCount() == 0 and not dlg.keep_both.isEnabled()
    await sync(b, hub)
    assert state(hub, SITE, "camp") == {"name": "A camp", "region": "East"}
    assert state(hub, SITE, "camp-b") == {"name": "B camp"}
    assert state(hub, "field.obs", "o1") == {"species": "heron", "site": "camp-b"}
    a.close()
    b.close()


async def test_keep_mine_on_a_clash_asks_first(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await clash(tmp_path, project, hub)
    dlg = dialog(qtbot, b)
    dlg.keep_mine.click()
    box = dlg.confirm_box
    assert box is not None and box.isVisible()
    assert "sets your values on their record" in box.text()
    assert "The fields only theirs has stay as they are: Region." in box.text()
    assert len(b.receipts([ReceiptState.REJECTED])) == 1  # nothing yet
    box.button(box.StandardButton.Cancel).click()
    assert len(b.receipts([ReceiptState.REJECTED])) == 1
    dlg.keep_mine.click()
    box = dlg.confirm_box
    assert box is not None
    [replace] = [x for x in box.buttons() if x.text() == "Set my values on their record"]
    replace.click()
    assert b.receipts([ReceiptState.REJECTED]) == []
    await sync(b, hub)
    assert state(hub, SITE, "camp") == {"name": "B camp", "region": "East"}
    a.close()
    b.close()


async def test_apply_choices_on_a_clash_asks_like_keep_mine(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """Final reread 9: Apply choices (every Keep box ticked) replaced their record with no
    question, where Keep mine asks."""
    a, b = await clash(tmp_path, project, hub)
    dlg = dialog(qtbot, b)
    dlg.apply.click()
    box = dlg.confirm_box
    assert box is not None and box.isVisible()
    assert box.windowTitle() == "Apply choices sets your values on their record"
    assert "a record in " in box.text() and "B camp" not in box.text()
    box.button(box.StandardButton.Cancel).click()
    assert len(b.receipts([ReceiptState.REJECTED])) == 1  # nothing resolved
    dlg.apply.click()
    box = dlg.confirm_box
    assert box is not None
    [both] = [x for x in box.buttons() if x.text() == "Keep both instead"]
    both.click()
    assert b.receipts([ReceiptState.REJECTED]) == []
    await sync(b, hub)
    assert state(hub, SITE, "camp") == {"name": "A camp", "region": "East"}  # theirs kept
    a.close()
    b.close()


async def test_keep_both_is_off_without_a_clash(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A"})])
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B"})])
    await sync(a, hub)
    await sync(b, hub)
    dlg = dialog(qtbot, b)
    assert not dlg.keep_both.isEnabled() and dlg.new_key.isHidden()
    assert dlg.both_text.text() == ""
    dlg.keep_mine.click()  # no clash: no question
    assert dlg.confirm_box is None and b.receipts([ReceiptState.REJECTED]) == []
    a.close()
    b.close()


async def test_a_required_field_of_a_new_record_stays_ticked(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """A's transaction changes s1's name (a conflict) and creates s2: unticking s2's Name
    (required) made Apply choices fail with an error in the dialog."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B name"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A name"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "New site", "region": "R"})])
    await sync(a, hub)
    dlg: ConflictsDialog = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    m = dlg.model
    at = {(m.row(i).key, m.row(i).field): i for i in range(m.rowCount())}
    name, region = at["s2", "name"], at["s2", "region"]
    cell = m.index(name, COL_KEEP)
    assert m.data(cell, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert not m.flags(cell) & Qt.ItemFlag.ItemIsEnabled  # greyed
    assert "Name is required" in m.data(cell, Qt.ItemDataRole.ToolTipRole)
    assert not m.setData(cell, Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    m.set_keep(name, Keep.THEIRS)  # refused too
    assert m.row(name).keep_mine
    # s1's name is a free choice, s2's region too
    assert m.flags(m.index(at["s1", "name"], COL_KEEP)) & Qt.ItemFlag.ItemIsEnabled
    m.set_keep(region, Keep.THEIRS)
    m.set_keep(at["s1", "name"], Keep.THEIRS)
    dlg.apply.click()
    assert "Cannot resolve" not in dlg.intro.text()
    await sync(a, hub)
    assert state(hub, SITE, "s2") == {"name": "New site"}
    assert state(hub, SITE, "s1") is not None and state(hub, SITE, "s1")["name"] == "B name"
    a.close()
    b.close()


async def test_a_record_they_deleted_and_created_again_reads_so(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The view said "they deleted it", theirs "(deleted)" and "Keep mine recreates it" of a
    record that exists again."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.DEL)])
    b.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Alder again"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A name", "region": "West"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    m = dlg.model
    rows = [[m.data(m.index(r, c)) for c in range(m.columnCount())] for r in range(m.rowCount())]
    assert rows[0][0] == "Sites: Alder again"
    assert rows[0][4] == "they deleted it, then created it again"
    assert [r[1:5] for r in rows[1:]] == [["Name", "Alder Creek", "A name", "Alder again"],
                                          ["Region", "North", "West", "(empty)"]]
    text = dlg.details.text()
    assert "they deleted this record and created it again" in text
    assert "recreates" not in text
    dlg.keep_mine.click()  # no key clash: no question
    await sync(a, hub)
    assert state(hub, SITE, "s1") == {"name": "A name", "region": "West"}
    a.close()
    b.close()


async def test_keep_both_of_two_int_key_clashes_at_once(answers: list[Answer], qtbot: Any,
                                                       tmp_path: Path) -> None:
    """Two rejected transactions, each a new item under a key taken meanwhile, both
    selected: Keep both, confirmed for the two, resolves both, each under its own free key
    (both were offered the same next key)."""
    from core.schema import parse_project
    from tests.satellite.test_int_keys import ITEM, SCHEMA, items_hub

    p = parse_project(SCHEMA)
    async with items_hub(p, "3") as ihub:
        a, b = Satellite(tmp_path / "a", p), Satellite(tmp_path / "b", p)
        await sync(a, ihub)
        await sync(b, ihub)
        a.pub([Action(ITEM, "4", Cmd.NEW, {"name": "A4"}),
               Action(ITEM, "5", Cmd.NEW, {"name": "A5"})])
        b.pub([Action(ITEM, "4", Cmd.NEW, {"name": "B4"})])
        b.pub([Action(ITEM, "5", Cmd.NEW, {"name": "B5"})])
        await sync(a, ihub)
        await sync(b, ihub)
        dlg = dialog(qtbot, b)
        dlg.select_uids(dlg.model.uids())  # Ctrl+A: the buttons act on the selection only
        assert len(dlg.selected_uids()) == 2 and dlg.new_key.isHidden()  # two: no one key
        assert "under new keys" in dlg.both_text.text()
        ask = Answer(role(QMessageBox.ButtonRole.AcceptRole))
        answers.append(ask)
        dlg.keep_both.click()
        assert ask.asked == ["Keep both for 2 edits?"]
        assert "Cannot resolve" not in dlg.intro.text(), dlg.intro.text()
        assert b.receipts([ReceiptState.REJECTED]) == []
        await sync(b, ihub)
        names = {k: state(ihub, ITEM, k) for k in ("4", "5", "6", "7")}
        assert names == {"4": {"name": "A4"}, "5": {"name": "A5"}, "6": {"name": "B4"},
                         "7": {"name": "B5"}}
        a.close()
        b.close()


async def test_keep_both_names_the_later_edits_left_on_their_record(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """Merge review 11 (app, 2): `outpost resolve --keep both` names the user's later edits
    of the record, saved before the conflict was known, that stayed on the key (now their
    record); the app's Keep both said nothing of them. It says it in the view now."""
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "camp", Cmd.NEW, {"name": "A camp"})])
    b.pub([Action(SITE, "camp", Cmd.NEW, {"name": "B camp"})])
    b.pub([Action(SITE, "camp", Cmd.MOD, {"region": "B-region"})])  # before it is known
    await sync(a, hub)
    await sync(b, hub)
    assert len(b.receipts([ReceiptState.REJECTED])) == 1
    dlg = dialog(qtbot, b)
    assert dlg.later.isHidden()
    dlg.new_key.setText("camp-b")
    dlg.keep_both.click()
    assert b.receipts([ReceiptState.REJECTED]) == []
    assert not dlg.later.isHidden()
    text = dlg.later.text()
    assert "1 later edit you made to a record in " in text and "(key camp)" in text
    assert "stayed on that key, now their record; yours is now key camp-b" in text
    assert "make it again on camp-b" in text
    a.close()
    b.close()
