"""Item models against the fake satellite: qtmodeltester, lazy fetching, change notices."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import Keep
from desktop.format import display_datetime
from desktop.models import (
    PENDING_ROLE,
    ConflictsModel,
    HistoryModel,
    RecordTableModel,
    TopicListModel,
)
from desktop.models import records as records_mod
from tests.desktop.fakes import FakeSatellite


def test_record_model_passes_modeltester(qtmodeltester: Any, fake_sat: FakeSatellite) -> None:
    m = RecordTableModel(fake_sat, "field.site")
    qtmodeltester.check(m)
    assert m.rowCount() == 2
    assert m.data(m.index(0, 0)) == "Alder Creek"


def test_record_model_ref_shows_display_field(fake_sat: FakeSatellite) -> None:
    m = RecordTableModel(fake_sat, "field.obs")
    col = [f.name for f in m.model_def.fields].index("site")
    assert m.data(m.index(0, col)) == "Alder Creek"


def test_record_model_shows_date_times_as_the_form_does(fake_sat: FakeSatellite) -> None:
    """A datetime cell reads like the form's picker (in UTC, saying so), not the stored RFC
    3339 text; milliseconds show when there are some; a value that is not a valid time
    shows as stored."""
    fake_sat.pub([Action("field.obs", "o1", Cmd.MOD, {"observed": "2026-09-02T07:36:00Z"}),
                  Action("field.obs", "o2", Cmd.NEW, {
                      "species": "Egret", "observed": "2026-09-02T09:36:12.345+02:00"})])
    m = RecordTableModel(fake_sat, "field.obs")
    col = [f.name for f in m.model_def.fields].index("observed")
    cells = {m.key_at(r): m.data(m.index(r, col)) for r in range(m.rowCount())}
    assert cells == {"o1": "2026-09-02 07:36:00 UTC", "o2": "2026-09-02 07:36:12.345 UTC"}
    m.set_filter("07:36:00 utc")
    assert m.total() == 1 and m.key_at(0) == "o1"
    assert display_datetime("2026-13-01T00:00:00Z") == "2026-13-01T00:00:00Z"


def test_record_model_fetches_lazily_and_sorts(qtmodeltester: Any, fake_sat: FakeSatellite,
                                               monkeypatch: Any) -> None:
    monkeypatch.setattr(records_mod, "PAGE", 10)
    fake_sat.pub([Action("field.site", f"k{i:03d}", Cmd.NEW, {"name": f"Site {i:03d}"})
                  for i in range(35)])
    m = RecordTableModel(fake_sat, "field.site")
    assert m.total() == 37
    assert m.rowCount() == 10
    assert m.canFetchMore(QModelIndex())
    m.fetchMore(QModelIndex())
    assert m.rowCount() == 20
    m.sort(0, Qt.SortOrder.DescendingOrder)
    assert m.data(m.index(0, 0)) == "Site 034"
    qtmodeltester.check(m)
    m.set_filter("site 01")
    assert m.total() == 10
    assert all("Site 01" in m.data(m.index(r, 0)) for r in range(m.rowCount()))


def test_record_model_in_key_order_reads_keys_not_every_record(
        qtmodeltester: Any, fake_sat: FakeSatellite, monkeypatch: Any) -> None:
    # a reload after a 1,000,000-event catch-up read every record on the UI thread (~20 s):
    # in key order the keys are enough, rows are read when shown
    fake_sat.pub([Action("field.site", f"k{i:03d}", Cmd.NEW, {"name": f"Site {i:03d}"})
                  for i in range(30)])
    read_all: list[str] = []
    every = fake_sat.records
    monkeypatch.setattr(fake_sat, "records", lambda top: read_all.append(top) or every(top))
    m = RecordTableModel(fake_sat, "field.site")
    m.reload()
    assert read_all == []
    assert m.total() == 32 and m.key_at(0) == "k000" and m.key_at(31) == "s2"
    assert m.data(m.index(0, 0)) == "Site 000"
    assert m.data(m.index(0, 0), PENDING_ROLE) == "pending"
    qtmodeltester.check(m)
    m.sort(0, Qt.SortOrder.DescendingOrder)  # by a field: the replica sorts, not Python
    assert read_all == [] and m.data(m.index(0, 0)) == "Site 029"


def test_record_model_reads_keys_off_the_ui_thread_after_a_catch_up(
        qtbot: Any, fake_sat: FakeSatellite, monkeypatch: Any) -> None:
    # after a 1,000,000-event catch-up, reading every key held the UI thread for 1.2 s: the
    # coalesced reload reads the replica's keys on a worker thread; hub data stored during the
    # read is applied from its change notice, whether that arrives before or after the read
    # is shown (reading again instead never finished while data kept arriving)
    import threading

    from core.satellite.api import Change

    assert fake_sat.hub is not None
    hub = fake_sat.hub
    m = RecordTableModel(fake_sat, "field.site")
    fake_sat.listen(m.on_change)
    fake_sat.sync()
    threads: list[threading.Thread] = []
    stored = threading.Event()
    confirmed = fake_sat.confirmed_keys

    def read(top: str) -> list[str]:
        threads.append(threading.current_thread())
        keys = confirmed(top)
        if len(threads) == 1:  # hub data stored (by the sync thread) while the read runs
            hub.publish(Trans((Action("field.site", "late", Cmd.NEW, {"name": "Late"}),)),
                        "other")
            fake_sat.replica.replicate(hub.rev(), hub.events(fake_sat.replica.rev()), [])
            stored.set()
        return keys

    monkeypatch.setattr(fake_sat, "confirmed_keys", read)
    monkeypatch.setattr(records_mod, "SYNC_UNDER", 0)  # a big topic: read off the UI thread
    hub.publish(Trans(tuple(Action("field.site", f"k{i:03d}", Cmd.NEW,
                                   {"name": f"Site {i:03d}"}) for i in range(600)),), "other")
    fake_sat.sync()  # one notice of 600 keys: over RESET_OVER, a coalesced reload
    assert m.reloading and not m.complete
    qtbot.waitUntil(stored.is_set, timeout=5000)
    fake_sat._notify(Change({"field.site": frozenset({"late"})}))  # the sync's notice, here
    qtbot.waitUntil(lambda: m.complete, timeout=5000)
    assert len(threads) == 1 and threading.main_thread() not in threads
    assert m.total() == 603 and m.row_of("late") >= 0 and m.key_at(0) == "k000"
    assert m.data(m.index(0, 0)) == "Site 000"


def test_record_model_follows_changes(qtbot: Any, fake_sat: FakeSatellite) -> None:
    m = RecordTableModel(fake_sat, "field.site")
    fake_sat.listen(m.on_change)
    with qtbot.waitSignal(m.rowsInserted):
        fake_sat.pub([Action("field.site", "s0", Cmd.NEW, {"name": "Aspen"})])
    assert m.key_at(0) == "s0"
    assert m.data(m.index(0, 0), PENDING_ROLE) == "pending"
    with qtbot.waitSignal(m.dataChanged):
        fake_sat.pub([Action("field.site", "s1", Cmd.MOD, {"name": "Alder Creek 2"})])
    assert m.data(m.index(1, 0)) == "Alder Creek 2"
    with qtbot.waitSignal(m.rowsRemoved):
        fake_sat.pub([Action("field.site", "s2", Cmd.DEL)])
    assert m.rowCount() == 2
    fake_sat.sync()
    assert all(m.data(m.index(r, 0), PENDING_ROLE) == "" for r in range(m.rowCount()))


def test_topic_model_counts(qtmodeltester: Any, fake_sat: FakeSatellite) -> None:
    m = TopicListModel(fake_sat)
    fake_sat.listen(m.on_change)
    qtmodeltester.check(m)
    assert m.data(m.index(0, 0)) == "Sites  (…)"  # counted after the first paint
    m.count_all()
    assert m.data(m.index(0, 0)) == "Sites  (2)"
    fake_sat.pub([Action("field.site", "s3", Cmd.NEW, {"name": "Cedar"})])
    assert m.data(m.index(0, 0)) == "Sites  (3)"


def test_history_model(qtmodeltester: Any, fake_sat: FakeSatellite) -> None:
    fake_sat.pub([Action("field.site", "s1", Cmd.MOD, {"region": "East"})])
    fake_sat.sync()
    m = HistoryModel(fake_sat)
    m.set_record("field.site", "s1")
    qtmodeltester.check(m)
    assert m.rowCount() == 2
    assert m.data(m.index(0, 2)) == "modified"
    assert m.data(m.index(0, 3)) == "region"
    assert m.data(m.index(1, 2)) == "created"


def test_conflicts_model_and_per_field_resolve(qtmodeltester: Any, project: Any,
                                               hub: MemLedger, fake_sat: FakeSatellite) -> None:
    fake_sat.pub([Action("field.site", "s1", Cmd.MOD, {"name": "Mine", "region": "Mine R"})])
    hub.publish(Trans((Action("field.site", "s1", Cmd.MOD,
                              {"name": "Theirs", "region": "Theirs R"}),),
                      base=hub.rev()), "alice")
    fake_sat.sync()
    m = ConflictsModel(fake_sat)
    fake_sat.listen(m.on_change)
    qtmodeltester.check(m)
    assert m.rowCount() == 2
    rows = {r.field: r for r in m.rows()}
    assert rows["name"].base == "Alder Creek"
    assert rows["name"].mine == "Mine"
    assert rows["name"].theirs == "Theirs"
    assert rows["name"].usr == "alice"
    m.set_keep([r.field for r in m.rows()].index("region"), Keep.THEIRS)
    uid = m.uids()[0]
    picks = m.picks(uid)
    assert picks == {"field.site s1": {"name": Keep.MINE, "region": Keep.THEIRS}}
    fake_sat.resolve(uid, picks)
    assert m.rowCount() == 0
    fake_sat.sync()
    rec = fake_sat.record("field.site", "s1")
    assert rec is not None and rec.fields is not None
    assert (rec.fields["name"], rec.fields["region"]) == ("Mine", "Theirs R")


class _NoScan(list):  # type: ignore[type-arg]
    def index(self, *a: Any) -> int:  # type: ignore[override]
        raise AssertionError("the rows were scanned")


def test_live_changes_in_key_order_find_their_rows_without_scanning(
        qtbot: Any, fake_sat: FakeSatellite) -> None:
    """Finding a changed record's row scanned the rows (about 13 ms at 1,000,000 rows, per
    key): a notice of a few hundred keys froze the UI for seconds. In key order (the default)
    the rows are found by binary search."""
    m = RecordTableModel(fake_sat, "field.site")
    fake_sat.listen(m.on_change)
    for i in range(20):
        fake_sat.pub([Action("field.site", f"s{i:02d}", Cmd.NEW, {"name": f"Site {i}"})])
    m._keys = _NoScan(m._keys)
    fake_sat.pub([Action("field.site", "s05", Cmd.MOD, {"name": "Changed"}),
                  Action("field.site", "s07", Cmd.DEL), Action("field.site", "s10a", Cmd.NEW,
                                                                {"name": "Between"})])
    assert m.row_of("s07") == -1 and m.key_at(m.row_of("s10a") - 1) == "s10"
    assert m.data(m.index(m.row_of("s05"), 0)) == "Changed"
    assert [m.key_at(i) for i in range(m.total())] == sorted(m.key_at(i) for i in range(m.total()))


def test_a_notice_too_costly_to_apply_row_by_row_in_a_sorted_table_reloads(
        qtbot: Any, fake_sat: FakeSatellite, monkeypatch: Any) -> None:
    m = RecordTableModel(fake_sat, "field.site")
    fake_sat.listen(m.on_change)
    for i in range(20):
        fake_sat.pub([Action("field.site", f"s{i:02d}", Cmd.NEW, {"name": f"Site {i:02d}"})])
    m.sort(0, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not m.reloading, timeout=5000)
    monkeypatch.setattr(records_mod, "SCAN_OVER", 10)  # 1 key x 20 rows: too costly
    m._keys = _NoScan(m._keys)
    fake_sat.pub([Action("field.site", "s03", Cmd.MOD, {"name": "Site 99"})])
    assert m.reloading  # not applied row by row (no scan): a reload is due
    qtbot.waitUntil(lambda: not m.reloading, timeout=5000)
    assert m.key_at(0) == "s03" and m.data(m.index(0, 0)) == "Site 99"
