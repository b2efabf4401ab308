"""File → Import CSV… / Export CSV… (session 10): the CLI's import and export code run a step
at a time with progress and Cancel, its messages and batches. Real widgets (offscreen), a
real satellite (SQLite in tmp_path), the CLI run in-process for comparison."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import headless
from desktop.mainwindow import MainWindow
from desktop.widgets.csvjob import CsvJob

ROOT = Path(__file__).resolve().parents[2]

SITE = "field.site"


@pytest.fixture
def sat(tmp_path: Path, project: Project) -> Satellite:
    s = Satellite(tmp_path / "sat", project)
    s.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"Site {i}", "region": "North"})
           for i in range(1, 4)])
    yield s
    s.close()


def window(qtbot: Any, sat: Satellite) -> MainWindow:
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 3)
    return w


def finish(qtbot: Any, w: MainWindow, job: CsvJob | None) -> tuple[bool, str, str]:
    assert job is not None
    got: list[tuple[bool, str, str]] = []
    job.finished.connect(lambda ok, title, text: got.append((ok, title, text)))
    qtbot.waitUntil(lambda: bool(got), timeout=60_000)
    assert w.csv_job is None and w.import_action.isEnabled()
    box = w.csv_box
    assert box is not None and box.isVisible() and not box.isModal()
    assert w.csv_text().lower() == got[0][2].lower()
    return got[0]


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_import_new_and_changed_rows_in_batches_with_the_cli_summary(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    w = window(qtbot, sat)
    rows = [f",New {i},West" for i in range(1, 1201)]  # 1200 new: 3 transactions of 500
    f = write(tmp_path / "a.csv", ["key,name,region", "s1,Site 1,East", "s2,Site 2,North",
                                   *rows])
    job = w.import_csv(f)
    assert job is not None and w.csv_job is job and not w.import_action.isEnabled()
    labels: list[str] = []
    job.progress.setLabelText = lambda t: labels.append(t)  # type: ignore[method-assign]
    ok, title, text = finish(qtbot, w, job)
    assert ok and title == "Import of a.csv: done"
    # checked in steps, made ready a transaction per step (session 11), then queued whole in
    # one commit (all or nothing: safety review 10)
    assert labels[0].startswith("Checking a.csv")
    ready = " rows ready (queued together at the end)"
    assert labels[-5:] == [f"Importing a.csv: 500 of 1,201{ready}",
                           f"Importing a.csv: 1,000 of 1,201{ready}",
                           f"Importing a.csv: 1,201 of 1,201{ready}",
                           "Importing a.csv: queuing 1,201 rows in one go",
                           "Importing a.csv: 1,201 of 1,201 rows"]
    assert text.lower().startswith(
        "imported 1,201 rows (1,200 new, 1 changed) in 3 transactions; 1 row unchanged")
    # records without a _rev overwrite: the CLI's note is in the summary too
    assert "has no _rev column" in text and "1 record was changed with the file's values" \
        in text
    assert sat.record(SITE, "s1").fields["region"] == "East"  # type: ignore[union-attr]
    assert len(sat.records(SITE)) == 3 + 1200
    assert len([r for r in sat.receipts() if r.state.name == "PENDING"]) >= 3
    qtbot.waitUntil(lambda: w.records.total() == 1203)


def test_a_bad_row_imports_nothing_and_names_the_line_and_fix_as_the_cli_does(
        qtbot: Any, sat: Satellite, tmp_path: Path, capsys: Any) -> None:
    w = window(qtbot, sat)
    f = write(tmp_path / "bad.csv", ["key,name,region", ",A,West", ",,East", ",C,South"])
    ok, title, text = finish(qtbot, w, w.import_csv(f))
    assert not ok and "failed" in title
    assert "line 3" in text and "required: give a value" in text
    assert len(sat.records(SITE)) == 3  # nothing imported
    sat.close()
    assert headless.main(["import", "--data", str(tmp_path / "sat"), SITE, f]) == 1
    assert capsys.readouterr().err.strip() == f"outpost: {text}"


def test_cancel_before_the_commit_imports_nothing(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    w = window(qtbot, sat)
    f = write(tmp_path / "big.csv", ["key,name", *(f",N{i}" for i in range(1500))])
    pending = sat.status().pending
    job = w.import_csv(f)
    assert job is not None
    shown = job.progress.setLabelText

    def label(text: str) -> None:
        shown(text)
        if text.startswith("Importing"):  # checked, about to be queued whole: Cancel
            job.progress.findChild(QPushButton).click()

    job.progress.setLabelText = label  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: w.csv_job is None, timeout=60_000)
    assert w.csv_job is None
    text = w.csv_box.text()  # type: ignore[union-attr]
    assert "cancelled" in w.csv_box.windowTitle()  # type: ignore[union-attr]
    assert text == "Nothing was imported (an import is queued whole or not at all)"
    qtbot.wait(50)  # no step runs after a cancel
    assert len(sat.records(SITE)) == 3
    assert sat.status().pending == pending


def test_the_window_stays_live_while_the_checked_file_is_made_ready_and_cancel_then_queues_nothing(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    """Session 10 queued the checked file in one step (2.9 s for 20,000 rows with no paint,
    no Cancel, the sync worker's writes waiting): now a transaction per step, in memory, and
    one short commit at the end. Between two steps the event loop runs (a timer ticks), no
    write lock is held (another connection writes at once), nothing is queued yet, and a
    Cancel leaves the queue as it was."""
    w = window(qtbot, sat)
    f = write(tmp_path / "big.csv", ["key,name", *(f",N{i}" for i in range(2100))])
    pending = sat.status().pending
    ticks: list[int] = []
    beat = QTimer()
    beat.setInterval(1)
    beat.timeout.connect(lambda: ticks.append(1))
    beat.start()
    job = w.import_csv(f)
    assert job is not None
    shown = job.progress.setLabelText
    seen: list[tuple[str, int, int]] = []  # (label, ticks so far, pending then)
    other = sqlite3.connect(sat.data.db_file, timeout=0)  # a writer that would not wait

    def label(text: str) -> None:
        shown(text)
        if " rows ready " not in text:
            return
        seen.append((text, len(ticks), sat.status().pending))
        with other:  # raises "database is locked" if the import held the write lock
            other.execute("INSERT OR REPLACE INTO sat_meta (name, value) VALUES ('probe', ?)",
                          (str(len(seen)),))
        if len(seen) == 3:
            job.progress.findChild(QPushButton).click()

    job.progress.setLabelText = label  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: w.csv_job is None, timeout=60_000)
    beat.stop()
    other.close()
    assert [t for t, _, _ in seen] == [
        f"Importing big.csv: {n:,} of 2,100 rows ready (queued together at the end)"
        for n in (500, 1000, 1500)]
    assert seen[2][1] > seen[0][1], seen  # the event loop ran timers between the steps
    assert {p for *_, p in seen} == {pending}  # nothing queued while being made ready
    assert sat.queue.get_meta("probe") == 3
    assert "cancelled" in w.csv_box.windowTitle()  # type: ignore[union-attr]
    assert w.csv_box.text() == (  # type: ignore[union-attr]
        "Nothing was imported (an import is queued whole or not at all)")
    qtbot.wait(50)
    assert len(sat.records(SITE)) == 3 and sat.status().pending == pending


def test_an_app_killed_mid_import_queued_nothing(sat: Satellite, tmp_path: Path) -> None:
    """kill -9 (a crash point: os._exit) while the app makes the checked file ready, after
    three of its five transactions: nothing is queued, and the import runs again whole."""
    data = sat.data.path
    pending = sat.status().pending
    sat.close()
    f = write(tmp_path / "big.csv", ["key,name", *(f",N{i}" for i in range(2100))])
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from core.satellite.satellite import Satellite\n"
        "from desktop.mainwindow import MainWindow\n"
        "app = QApplication([])\n"
        "sat = Satellite(sys.argv[1])\n"
        "w = MainWindow(sat, None, 't')\n"
        "w.select_topic('field.site')\n"
        "job = w.import_csv(sys.argv[2])\n"
        "job.progress.setLabelText = lambda t: print(t, flush=True)\n"
        "job.finished.connect(lambda *a: app.quit())\n"
        "app.exec()\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "OUTPOST_CRASH_AT": "sat.mid_import:3"}
    run = subprocess.run([sys.executable, "-c", script, str(data), f], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 137, run.stderr
    assert "Importing big.csv: 1,000 of 2,100 rows ready" in run.stdout  # two steps ran
    again = Satellite(data)
    try:
        assert again.status().pending == pending and len(again.records(SITE)) == 3
        job = headless.CsvImport(again, SITE, f, staged=True)
        for _ in job.steps():
            pass
        assert job.rows == 2100 and len(again.records(SITE)) == 3 + 2100
        assert again.status().pending == pending + 5
    finally:
        again.close()


def test_cancel_during_the_check_imports_nothing(qtbot: Any, sat: Satellite,
                                                  tmp_path: Path) -> None:
    w = window(qtbot, sat)
    f = write(tmp_path / "big.csv", ["key,name", *(f",N{i}" for i in range(1500))])
    job = w.import_csv(f)
    assert job is not None
    qtbot.waitUntil(lambda: job.progress.labelText().startswith("Checking"), timeout=60_000)
    job.cancel()
    assert w.csv_box is not None
    assert w.csv_box.text() == "Nothing was imported (an import is queued whole or not at all)"
    qtbot.wait(50)
    assert len(sat.records(SITE)) == 3


def test_closing_the_window_stops_an_import(qtbot: Any, sat: Satellite,
                                            tmp_path: Path) -> None:
    w = window(qtbot, sat)
    f = write(tmp_path / "big.csv", ["key,name", *(f",N{i}" for i in range(1500))])
    job = w.import_csv(f)
    assert job is not None
    qtbot.waitUntil(lambda: job.progress.labelText().startswith("Checking"), timeout=60_000)
    assert w.close()
    assert w.csv_job is None
    qtbot.wait(50)
    assert len(sat.records(SITE)) == 3  # nothing queued: an import is whole or nothing


def test_export_writes_what_the_cli_writes_and_replaces_the_file_once_complete(
        qtbot: Any, sat: Satellite, tmp_path: Path, capsys: Any) -> None:
    sat.pub([Action(SITE, "s2", Cmd.MOD, {"notes": "a, \"quoted\"\nline", "lat": 1.5}),
             Action(SITE, "s3", Cmd.DEL)])
    w = window_any(qtbot, sat)
    qtbot.waitUntil(lambda: w.records.rowCount() == 2)
    out = tmp_path / "out.csv"
    out.write_text("old", encoding="utf-8")
    ok, _title, text = finish(qtbot, w, w.export_csv(str(out)))
    assert ok and text.startswith(f"exported 2 rows of {SITE} to {out}, with the revision")
    assert headless.main(["export", "--data", str(tmp_path / "sat"), SITE]) == 0
    assert out.read_text(encoding="utf-8") == capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_cancelled_export_leaves_the_file_as_it_was(qtbot: Any, sat: Satellite,
                                                      tmp_path: Path) -> None:
    sat.pub([Action(SITE, f"k{i}", Cmd.NEW, {"name": f"K{i}"}) for i in range(5000)])
    w = window_any(qtbot, sat)
    out = tmp_path / "out.csv"
    out.write_text("old", encoding="utf-8")
    job = w.export_csv(str(out))
    assert job is not None
    qtbot.waitUntil(lambda: job.progress.value() > 0, timeout=60_000)
    job.cancel()
    assert "nothing was written" in w.csv_box.text().lower()  # type: ignore[union-attr]
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def window_any(qtbot: Any, sat: Satellite) -> MainWindow:
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    w.select_topic(SITE)
    return w


def test_the_menu_entries(qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    file_menu = w.menuBar().actions()[0].menu()
    texts = [a.text().replace("&", "") for a in file_menu.actions()]  # type: ignore[union-attr]
    assert texts[:2] == ["Import CSV…", "Export CSV…"]
    assert w.import_action.shortcut().toString() == "Ctrl+I"
    assert w.export_action.shortcut().toString() == "Ctrl+E"
    assert w.csv_box is None  # no job ran


def test_import_summary_of_rows_queued_alone_is_in_the_apps_words(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """Review 10: a file with ``_rev`` whose rows change fields someone changed since has
    those rows queued alone; the app's summary says how many and to resolve them in the
    conflicts view, not with the CLI's `outpost resolve UID --json` commands. Two satellites
    (CLI processes) and a real hub on 127.0.0.1 make the file; the app imports it offline."""
    import asyncio
    import csv
    import io

    from core.ledger.memory import MemLedger
    from hubserver.server import Hub
    from tests.satellite.test_cli import cli

    a, b = tmp_path / "a", tmp_path / "b"

    async def make_file() -> Path:
        async with Hub(MemLedger(project), port=0) as hub:
            for d in (a, b):
                assert (await cli(d, "connect", hub.url))[0] == 0
            s = Satellite(a, project)
            s.pub([Action(SITE, f"k{i}", Cmd.NEW, {"name": f"Site {i}"}) for i in range(6)])
            s.close()
            assert (await cli(a, "sync", "--once"))[0] == 0
            assert (await cli(b, "sync", "--once"))[0] == 0
            rc, text, err = await cli(b, "export", SITE, "--rev", json_out=False)
            assert rc == 0, err
            # meanwhile a renames k1 and k3, notes k4 and deletes k5; b syncs, then imports
            # its edited file
            s = Satellite(a, project)
            s.pub([Action(SITE, k, Cmd.MOD, {"name": "Theirs"}) for k in ("k1", "k3")])
            s.pub([Action(SITE, "k4", Cmd.MOD, {"notes": "Theirs"})])
            s.pub([Action(SITE, "k5", Cmd.DEL)])
            s.close()
            assert (await cli(a, "sync", "--once"))[0] == 0
            assert (await cli(b, "sync", "--once"))[0] == 0
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        for r in rows:
            if r["key"] != "k5":  # k5's row untouched (deleted since): skipped, said
                r["region"] = "East"
        rows[1]["name"] = rows[3]["name"] = "Mine"
        rows.append({**rows[0], "key": "k9"})  # a key typed in the sheet: a new record, said
        src = tmp_path / "edited.csv"
        with src.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return src

    src = asyncio.run(make_file())
    sat = Satellite(b, project)
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    try:
        w.select_topic(SITE)
        qtbot.waitUntil(lambda: w.records.rowCount() == 5)
        ok, title, text = finish(qtbot, w, w.import_csv(str(src)))
        assert ok and title == "Import of edited.csv: done", text
        assert ("2 rows changed cells someone else changed since the file was exported: "
                "k1 (name), k3 (name). Those cells were queued as a change of their own (the "
                "row's other cells as usual)") in text, text
        assert "in the conflicts view" in text, text
        # session 11: k4's notes (changed since, not in the file) left as they are, named
        assert ("1 row still had the value of fields another user changed since the "
                "export: those were left as they are now: k4 (notes)") in text, text
        # final review 11: the untouched row of a record deleted since is skipped, not a
        # refusal of the file; a key not in the export makes a new record, said
        assert ("1 unchanged row of records deleted since the export was skipped: k5 "
                "(deleted by ") in text, text
        assert ("1 row had a key that was not in the export, so each made a new record: "
                "k9. To make new records, leave the key empty") in text, text
        assert sat.record(SITE, "k9") is not None and sat.record(SITE, "k5") is None
        assert "outpost resolve" not in text and "--json" not in text, text
        assert "outpost" not in text.lower(), text  # no CLI command at all
        alone = [r for r in sat.receipts() if r.state.name == "PENDING" and len(r.acts) == 1
                 and r.acts[0].key in ("k1", "k3")]
        assert sorted((a.key, sorted(a.arg or {})) for r in alone for a in r.acts) == [
            ("k1", ["name"]), ("k3", ["name"])]
        assert sat.record(SITE, "k1").fields["region"] == "East"  # type: ignore[union-attr]
        assert sat.record(SITE, "k4").fields["notes"] == "Theirs"  # type: ignore[union-attr]
        # the app's export has the _rev column too (its import reads it back unchanged)
        out = tmp_path / "app.csv"
        ok, _, text = finish(qtbot, w, w.export_csv(str(out)))
        assert ok and "_rev column" in text, text
        assert out.read_text(encoding="utf-8").splitlines()[0].endswith(",_rev")
        ok, _, text = finish(qtbot, w, w.import_csv(str(out)))
        assert ok and text.startswith("imported 0 rows"), text
    finally:
        w.close()
        sat.close()


def test_export_for_a_spreadsheet_and_its_import_back_and_the_plain_imports_warning(
        qtbot: Any, sat: Satellite, tmp_path: Path, capsys: Any) -> None:
    """Final review 10: the app's Export CSV wrote `=HYPERLINK(...)` as it is (a spreadsheet
    runs it). File → Export CSV for a spreadsheet… writes what `outpost export
    --for-spreadsheet` does; Import CSV from a spreadsheet export… reads it back exactly; the
    plain import of such a file says so in its summary."""
    link = '=HYPERLINK("http://x.example","open")'
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": link, "notes": "@SUM(A1)"})])
    w = window(qtbot, sat)
    file_menu = w.menuBar().actions()[0].menu()
    texts = [a.text().replace("&", "") for a in file_menu.actions()]  # type: ignore[union-attr]
    assert texts[2:4] == ["Import CSV from a spreadsheet export…",
                          "Export CSV for a spreadsheet…"]
    out = tmp_path / "sheet.csv"
    ok, _title, text = finish(qtbot, w, w.export_csv(str(out), sheet=True))
    assert ok and text.startswith(f"exported 3 rows of {SITE} to {out} for a spreadsheet")
    assert w.export_sheet_action.isEnabled() and w.import_sheet_action.isEnabled()
    assert headless.main(["export", "--data", str(tmp_path / "sat"), SITE,
                          "--for-spreadsheet"]) == 0
    assert out.read_text(encoding="utf-8") == capsys.readouterr().out
    assert f'"\'{link.replace(chr(34), chr(34) * 2)}"' in out.read_text(encoding="utf-8")
    # read back from a spreadsheet export: nothing changed, no warning
    ok, _title, text = finish(qtbot, w, w.import_csv(str(out), sheet=True))
    assert ok and "3 rows unchanged" in text and "'" not in text
    assert sat.record(SITE, "s1").fields["name"] == link  # type: ignore[union-attr]
    # the plain import takes the ' as part of the text, and says so with the way out
    ok, _title, text = finish(qtbot, w, w.import_csv(str(out)))
    assert ok and text.startswith("imported 1 row (0 new, 1 changed)")
    assert ("The file has 2 cells starting with ' before = + - @ (e.g. '=HYPERLINK(\"http://"
            "x.example\",\"open\")), as an export for a spreadsheet writes them; they were "
            "imported with their '. If the file is such an export, import it again with "
            "File → Import CSV from a spreadsheet export…") in text
    assert sat.record(SITE, "s1").fields["name"] == "'" + link  # type: ignore[union-attr]
