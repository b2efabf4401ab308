"""The conflicts view reads plainly (user review 8, findings 4 and 5): every field of a
rejected edit is shown, the ones that did not conflict marked, so "keep theirs" drops nothing
the user has not seen; a delete/modify conflict says who deleted or changed what, with the
values, and offers the right choices. Real widgets, real satellites (SQLite in tmp_path) and
a real hub (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd, Trans
from core.satellite.api import Keep
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.widgets.conflicts import ConflictsDialog
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((
        Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek", "region": "North",
                                     "notes": "old notes"}),
    )), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def two(tmp_path: Path, project: Project, hub: Hub) -> tuple[Satellite, Satellite]:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    return a, b


def dialog(qtbot: Any, sat: Satellite) -> ConflictsDialog:
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    w.status.conflicts.click()
    dlg = w.conflicts_dialog
    assert dlg is not None and dlg.isVisible()
    return dlg


def set_fields(hub: Hub) -> dict[str, Any]:
    st = hub.ledger.state(SITE, "s1")  # type: ignore[attr-defined]
    assert st is not None
    return {k: v for k, v in st.items() if v is not None}


def cells(dlg: ConflictsDialog) -> list[list[str]]:
    m = dlg.model
    return [[m.data(m.index(r, c)) for c in range(m.columnCount())] for r in range(m.rowCount())]


async def test_keep_theirs_shows_the_fields_it_drops_that_did_not_conflict(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """A changed name and region offline, B the name: the hub rejects A's whole transaction.
    The view listed only Name, and keep theirs dropped A's region unseen."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B name"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A3", "region": "A3 region"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    rows = cells(dlg)
    assert [r[1:5] for r in rows] == [
        ["Name", "Alder Creek", "A3", "B name"],
        ["Region (no conflict)", "North", "A3 region", "North"]]
    assert [r.conflict for r in dlg.model.rows()] == [True, False]
    # what keep theirs drops is said, and so is the region edit
    text = dlg.details.text()
    assert "Region to “A3 region” did not conflict" in text
    assert "keep theirs drops all of them, Region too" in text
    assert "drops all of them" in dlg.intro.text()
    assert "no conflict" in dlg.keep_theirs.toolTip()
    # per field: the region is a choice too (kept as mine unless unticked)
    uid = dlg.model.uids()[0]
    assert dlg.model.picks(uid) == {f"{SITE} s1": {"name": Keep.MINE, "region": Keep.MINE}}
    dlg.model.set_keep(0, Keep.THEIRS)
    dlg.apply.click()
    await sync(a, hub)
    assert set_fields(hub) == {
        "name": "B name", "region": "A3 region", "notes": "old notes"}
    a.close()
    b.close()


async def test_they_deleted_a_record_i_changed_reads_plainly(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The row showed the raw key "(missing)" and Mine "modify", without my fields."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.DEL)])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Alder A", "region": "West"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    rows = cells(dlg)
    assert rows[0][0] == "Sites: Alder Creek (deleted)"  # not the raw key, not "(missing)"
    assert rows[0][1:5] == ["(whole record)", "existed", "you changed it (fields below)",
                            "they deleted it"]
    assert [r[1:5] for r in rows[1:]] == [["Name", "Alder Creek", "Alder A", "(deleted)"],
                                          ["Region", "North", "West", "(deleted)"]]
    text = dlg.details.text()
    assert "they deleted this record (office," in text
    assert "you changed Name to “Alder A”, Region to “West”" in text
    assert "Keep mine recreates it" in text and "keep theirs leaves it deleted" in text
    assert dlg.model.data(dlg.model.index(0, 0), 3) == text[2:]  # the row's tooltip
    dlg.keep_mine.click()
    await sync(a, hub)
    assert set_fields(hub) == {
        "name": "Alder A", "region": "West", "notes": "old notes"}
    a.close()
    b.close()


async def test_i_deleted_a_record_they_changed_reads_plainly(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The row showed Field "Notes", Mine "(empty)" with a "mine" check box: it read as "I
    cleared the notes"."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "new notes"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.DEL)])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    rows = cells(dlg)
    assert len(rows) == 1
    assert rows[0][1:5] == ["(whole record)", "existed", "you deleted it", "they changed it"]
    assert rows[0][7] == "delete anyway"
    assert "(empty)" not in rows[0]
    text = dlg.details.text()
    assert "you deleted this record; they changed Notes to “new notes” (office," in text
    assert "Keep mine deletes it anyway; keep theirs keeps it" in text
    # unticked: keep the record (theirs); ticked: delete anyway
    uid = dlg.model.uids()[0]
    dlg.model.set_keep(0, Keep.THEIRS)
    assert cells(dlg)[0][7] == "keep the record"
    assert dlg.model.picks(uid) == {f"{SITE} s1": {"name": Keep.THEIRS}}
    dlg.model.set_keep(0, Keep.MINE)
    dlg.apply.click()  # delete anyway
    await sync(a, hub)
    assert hub.ledger.state(SITE, "s1") is None  # type: ignore[attr-defined]
    a.close()
    b.close()


async def test_records_of_the_transaction_that_did_not_conflict_are_shown_and_kept(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """One transaction changes s1's name (a conflict) and deletes s2 (none): the delete is
    listed ("(no conflict)") and Apply choices keeps it (it was dropped: a delete has no
    field to pick)."""
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s2", Cmd.NEW, {"name": "Birch"})])
    await sync(a, hub)
    await sync(b, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B name"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A name"}), Action(SITE, "s2", Cmd.DEL)])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    rows = cells(dlg)
    assert [r[:5] for r in rows] == [
        ["Sites: B name", "Name", "Alder Creek", "A name", "B name"],
        ["Sites: Birch", "(whole record)", "existed", "you deleted it", "(no conflict)"]]
    assert rows[1][7] == "delete anyway"
    assert "Sites: Birch: your delete collided with nothing" in dlg.details.text()
    dlg.model.set_keep(0, Keep.THEIRS)  # their name; my delete of s2 stays ticked
    dlg.apply.click()
    await sync(a, hub)
    assert set_fields(hub)["name"] == "B name"
    assert hub.ledger.state(SITE, "s2") is None  # type: ignore[attr-defined]
    a.close()
    b.close()


async def test_unticked_field_of_a_new_record_is_not_sent(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """One transaction changes s1's name (a conflict) and creates s2 with a region: the
    user unticks s2's "Region (no conflict)" and applies. The new record was sent whole
    (only a modify or a new record that exists now took the choice), region and all; and
    its rows were labelled "(deleted)" though it never existed."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B name"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A name"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "New site", "region": "SECRET"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    m = dlg.model
    labels = {m.row(i).field: m.data(m.index(i, 0))
              for i in range(m.rowCount()) if m.row(i).key == "s2"}
    assert labels and set(labels.values()) == {"Sites: New site (new)"}
    region = [i for i in range(m.rowCount())
              if (m.row(i).key, m.row(i).field) == ("s2", "region")]
    assert len(region) == 1
    m.set_keep(region[0], Keep.THEIRS)
    assert m.picks(m.uids()[0])[f"{SITE} s2"]["region"] == Keep.THEIRS
    dlg.apply.click()
    await sync(a, hub)
    s2 = hub.ledger.state(SITE, "s2")  # type: ignore[attr-defined]
    assert s2 is not None and s2["name"] == "New site"
    assert s2.get("region") is None
    assert set_fields(hub)["name"] == "A name"
    a.close()
    b.close()


async def test_the_deleted_cells_read_the_database_once_per_refresh(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each painted "(deleted)" cell read the record from the database (``_gone``): a
    repaint of many such rows was as many reads. They are read once per refresh now."""
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.DEL)])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Alder A", "region": "West"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    reads: list[str] = []
    record, records_of = a.record, a.records_of
    monkeypatch.setattr(a, "record", lambda top, key: reads.append(key) or record(top, key))
    monkeypatch.setattr(a, "records_of",
                        lambda top, keys: reads.extend(keys) or records_of(top, keys))
    for _ in range(5):  # five paints of every cell
        assert [r[4] for r in cells(dlg)[1:]] == ["(deleted)", "(deleted)"]
    assert reads == []
    dlg.model.refresh()
    # once each per refresh, not per cell: the rows' labels, theirs as the hub has it now
    # (conflict_fields, safety review 10) and the "deleted" set
    assert reads.count("s1") <= 3
    # a record they created again is not "deleted" after the refresh that sees it
    b.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Back"})])
    await sync(b, hub)
    await sync(a, hub)
    dlg.model.refresh()
    # (and, since safety review 10, says that it changed after the conflict)
    assert [r[4] for r in cells(dlg)[1:] if r[1] == "Region"] == ["(empty) (created since)"]
    a.close()
    b.close()


async def test_the_winner_is_named_you_for_the_users_own_edit_else_by_its_user(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """The text said "they changed …" of the user's own edit from a second laptop (session
    10): it names the winner: "earlier, you" for the user's own, the user otherwise."""
    from core.ledger.memory import MemLedger
    from core.satellite.config import SatConfig
    from hubserver.auth import Users

    users = Users(tmp_path / "users.db")
    alice, bob = users.add("alice"), users.add("bob")
    mem = MemLedger(project)
    mem.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Alder", "region": "North"}),
                       Action(SITE, "s2", Cmd.NEW, {"name": "Birch", "region": "South"}))),
                "office")
    try:
        async with Hub(mem, port=0, users=users) as h:
            def sat(name: str, token: str) -> Satellite:
                s = Satellite(tmp_path / name, project)
                s.data.save_config(SatConfig(hub=h.url, token=token))
                s.config = s.data.load_config()
                return s

            async def go(s: Satellite) -> None:
                await SyncClient(s, h.url, s.config.token,
                                 rnd=random.Random(0)).sync_once(10)

            laptop, desktop, other = sat("laptop", alice), sat("desk", alice), sat("b", bob)
            for s in (laptop, desktop, other):
                await go(s)
            laptop.pub([Action(SITE, "s2", Cmd.MOD, {"region": "East"})])
            await go(laptop)  # an edit of the laptop's accepted: the hub calls its user alice
            desktop.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Alder (desk)"})])
            other.pub([Action(SITE, "s2", Cmd.MOD, {"name": "Birch (bob)"})])
            await go(desktop)
            await go(other)
            laptop.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Alder (laptop)"})])
            laptop.pub([Action(SITE, "s2", Cmd.MOD, {"name": "Birch (laptop)"})])
            await go(laptop)
            assert laptop.status().conflicts == 2
            dlg = dialog(qtbot, laptop)
            dlg.table.selectAll()
            text = dlg.details.text()
            assert "; earlier, you changed Name to “Alder (desk)” (alice, " in text
            assert "; bob changed Name to “Birch (bob)” (" in text
            assert "they changed" not in text and "(bob, " not in text
            for s in (laptop, desktop, other):
                s.close()
    finally:
        users.close()
