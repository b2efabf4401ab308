"""``Satellite.staged`` (session 11): the app's import made ready a transaction per step in
memory and queued in one short commit. Real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd, Event, Update
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project

SITE = "field.site"


def news(lo: int, hi: int) -> list[Action]:
    return [Action(SITE, f"k{i}", Cmd.NEW, {"name": f"N{i}"}) for i in range(lo, hi)]


def test_nothing_is_queued_nor_locked_until_the_commit_which_queues_all_in_order(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        st = sat.staged()
        a = st.add(news(0, 3))
        b = st.add([Action(SITE, "k1", Cmd.MOD, {"name": "changed"}), *news(3, 5)])
        assert len(st) == 2 and sat.status().pending == 0 and sat.record(SITE, "k1") is None
        other = sqlite3.connect(sat.data.db_file, timeout=0)  # no write lock held
        with other:
            other.execute("INSERT INTO sat_meta (name, value) VALUES ('probe', '1')")
        other.close()
        assert st.commit() == [a, b]
        assert [r.uid for r in sat.receipts([ReceiptState.PENDING])] == [a, b]
        assert sat.record(SITE, "k1").fields["name"] == "changed"  # type: ignore[union-attr]
        assert [t.uid for t in sat.outbox()] == [a]  # b waits for a (both change k1), as pub
        with pytest.raises(ValueError):
            st.add(news(9, 10))
    finally:
        sat.close()
    again = Satellite(tmp_path)
    try:
        assert again.status().pending == 2 and len(again.records(SITE)) == 5
    finally:
        again.close()


def test_a_batch_that_does_not_fit_is_refused_on_what_earlier_batches_made(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        st = sat.staged()
        st.add(news(0, 2))
        with pytest.raises(ValidationError):
            st.add(news(1, 2))  # k1 again: made by the first batch
        del st  # never committed: nothing queued
        assert sat.status().pending == 0 and sat.records(SITE) == []
    finally:
        sat.close()


def test_the_hubs_change_between_two_steps_makes_a_local_conflict_not_a_loss(
        tmp_path: Path, project: Project) -> None:
    """The hub creates k1 after it was staged as new: the commit still queues the file whole
    (all or nothing) and the overlay marks the clash, as for edits queued before the hub's
    change arrived."""
    sat = Satellite(tmp_path, project)
    try:
        st = sat.staged()
        uid = st.add(news(0, 2))
        rev = sat.rev() + 1
        sat.apply_update(Update(rev, (Event(1, rev, SITE, "k1", Cmd.NEW, {"name": "hub"}),)))
        assert st.commit() == [uid]
        assert sat.status().pending == 1 and sat.status().conflicts == 1
        assert sat.record(SITE, "k1").confirmed["name"] == "hub"  # type: ignore[index,union-attr]
    finally:
        sat.close()


def test_a_reader_word_before_the_commit_queues_nothing(tmp_path: Path,
                                                        project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        st = sat.staged()
        st.add(news(0, 2))
        sat.note_role("reader")
        with pytest.raises(ValidationError, match="only read"):
            st.commit()
        assert sat.status().pending == 0 and sat.records(SITE) == []
        with pytest.raises(ValidationError, match="only read"):
            sat.staged()
    finally:
        sat.close()


def test_a_readers_staged_import_is_refused_in_the_clis_words(tmp_path: Path,
                                                              project: Project) -> None:
    from desktop.headless import CsvImport

    sat = Satellite(tmp_path / "sat", project)
    try:
        f = tmp_path / "a.csv"
        f.write_text("key,name\n" + "".join(f"k{i},N{i}\n" for i in range(3)), encoding="utf-8")
        sat.note_role("reader")
        said = []
        for staged in (False, True):  # the CLI's way, the app's
            with pytest.raises(ValidationError) as err:
                list(CsvImport(sat, SITE, str(f), staged=staged).steps())
            said.append(str(err.value))
        assert said[0] == said[1] and "only read" in said[1]
        assert said[1].endswith("nothing was imported (an import is queued whole or not at "
                                "all); fix it and run the import again")
        assert sat.status().pending == 0
    finally:
        sat.close()
