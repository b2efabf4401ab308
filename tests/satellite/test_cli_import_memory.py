"""``outpost import`` holds one batch of rows, not the file: the rows are checked in a first
streaming pass that keeps only their keys, then read again and queued batch by batch."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from desktop.headless import main
from hubserver.server import Hub
from tests.satellite.test_cli import cli


async def test_import_holds_one_batch_of_rows_not_the_file(
        tmp_path: Path, hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "wide.csv"
    note = "n" * 1500
    n = 4000
    src.write_text("key,name,lat,notes\n" + "".join(f"w{i},Site {i},{i % 90}.5,{note}\n"
                                                   for i in range(n)), encoding="utf-8")
    size = src.stat().st_size  # about 6 MB
    capsys.readouterr()
    tracemalloc.start()
    try:
        rc = main(["import", "--data", str(a), "--json", "field.site", str(src)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["rows"] == n
    # what stays is the satellite's own: the fields of every pending record (its view of the
    # queue, about twice the file here); before, the import also held the file's bytes, its
    # text and every row's action at once: 40 MB for this 6 MB file, now 13-14 MB
    assert peak < 4 * size, (peak, size)
    rc, out, _ = await cli(a, "show", "field.site", f"w{n - 1}")
    assert rc == 0 and json.loads(out)["fields"]["lat"] == float((n - 1) % 90) + 0.5


async def test_a_file_changed_between_the_check_and_the_queue_imports_nothing(
        tmp_path: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The rows are read twice: a file written while it was checked is refused before
    anything is queued (the open file is read both times, so a file replaced by a rename
    is read as it was)."""
    import desktop.headless as headless

    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "sites.csv"
    src.write_text("key,name\nc1,One\nc2,Two\n", encoding="utf-8")
    stamps = iter([(1, 1, 1), (1, 2, 1)])
    monkeypatch.setattr(headless, "_stamp", lambda f: next(stamps))
    assert main(["import", "--data", str(a), "field.site", str(src)]) == 1
    assert "sites.csv changed while it was being checked: nothing was imported" \
        in capsys.readouterr().err
    rc, out, _ = await cli(a, "status")
    assert rc == 0 and json.loads(out)["pending"] == 0


async def test_a_file_changed_while_being_imported_stops_the_import(
        tmp_path: Path, hub: Hub, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are read again to be queued: a file written meanwhile stops the import
    before a batch that may hold its new text; the file is queued whole or not at all
    (session 10), so nothing of it is queued."""
    from core.satellite.queue import Queue

    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "rows.csv"
    src.write_text("key,name\n" + "".join(f"r{i},Old {i}\n" for i in range(1200)),
                   encoding="utf-8")
    real = Queue.add
    calls: list[int] = []

    def add(self: Queue, *args: Any, **kw: Any) -> int:
        seq = real(self, *args, **kw)
        calls.append(1)
        if len(calls) == 1:  # someone saves the file after the first batch went in
            src.write_text("key,name\n" + "".join(f"r{i},New {i}\n" for i in range(1200)),
                           encoding="utf-8")
        return seq

    monkeypatch.setattr(Queue, "add", add)
    capsys.readouterr()
    rc = main(["import", "--data", str(a), "--json", "field.site", str(src)])
    err = capsys.readouterr().err
    assert rc == 1 and "changed while it was being imported" in err, err
    assert "nothing was imported" in err and len(calls) == 1
    monkeypatch.undo()
    rc = main(["show", "--data", str(a), "--json", "field.site"])
    shown = json.loads(capsys.readouterr().out)
    assert rc == 0 and shown == []  # the first batch was rolled back with the rest
