"""Review 9's findings on reading a data directory and on the CLI's words: a full disk
under a data directory (`outpost status`, `show` and `export` still read: a reader of a WAL
database makes a ``-shm`` it has no room for, "disk I/O error", and the advice then was to
move the file aside, pending edits and all; the status file's writer leaves no empty
temporary file behind for each write that failed); `show` prints text as typed; `status`
reads in words; CSV mistakes are named with the fix; every command and argument has help."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.satellite import replica as replica_mod
from core.satellite.holder import HolderStatus, StatusWriter
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


def _one_pending(path: Path, project: Project) -> None:
    sat = Satellite(path, project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek"})])
    sat.close()


def test_a_reader_on_a_full_disk_reads_the_file_as_it_is(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _one_pending(tmp_path, project)
    db = tmp_path / "satellite.db"
    # what a reader that failed left: an empty -wal and a -shm it could not grow
    Path(f"{db}-wal").write_bytes(b"")
    Path(f"{db}-shm").write_bytes(b"\0\0\0")
    assert "immutable" not in replica_mod.read_only_url(db)  # room on the disk: as before
    monkeypatch.setattr(replica_mod, "_disk_full", lambda _d: True)
    assert "immutable=1" in replica_mod.read_only_url(db)
    ro = Satellite(tmp_path, read_only=True)
    try:
        st = ro.status()
        assert st.pending == 1
        assert [r.key for r in ro.records(SITE)] == ["s1"]
    finally:
        ro.close()
    assert Path(f"{db}-shm").stat().st_size == 3  # nothing written beside the file


def test_a_wal_with_frames_is_never_read_immutable(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _one_pending(tmp_path, project)
    db = tmp_path / "satellite.db"
    Path(f"{db}-wal").write_bytes(b"x" * 4096)  # a writer's frames not checkpointed yet
    monkeypatch.setattr(replica_mod, "_disk_full", lambda _d: True)
    assert "immutable" not in replica_mod.read_only_url(db)  # the file alone is not all


def test_a_failed_status_write_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = StatusWriter(tmp_path / "status.json", clock=lambda: 1000.0)

    def full(self: Path, *_a: object, **_k: object) -> int:
        self.touch()  # made, then no room for its bytes
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    w.offer(HolderStatus(online=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not w.written
    assert os.listdir(tmp_path) == []


async def test_show_prints_text_as_typed_not_escaped(tmp_path: Path, hub: Hub) -> None:
    """Review 9: `outpost show` printed ``"\\u00dcn…\\ud83c\\udf32"`` for ``Ün…🌲``."""
    data = tmp_path / "s"
    rc, _, err = await cli(data, "connect", hub.url)
    assert rc == 0, err
    rc, _, err = await cli(data, "pub", SITE, "u1", "new", "name=Ünterwald 🌲")
    assert rc == 0, err
    rc, out, err = await cli(data, "show", SITE, json_out=False)
    assert rc == 0, err
    assert "Ünterwald 🌲" in out and "\\u00dc" not in out


async def test_status_text_reads_in_words(tmp_path: Path, hub: Hub) -> None:
    """Review 9: the text of `outpost status` printed ``online: False`` and
    ``local_rev: 0001-01-01T00:00:00Z`` for a replica that has no revision yet."""
    data = tmp_path / "s"
    rc, _, err = await cli(data, "connect", hub.url)
    assert rc == 0, err
    rc, out, err = await cli(data, "status", json_out=False)
    assert rc == 0, err
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["online"] == "no" and lines["last_sync"] == "never"
    assert lines["local_rev"].startswith("none yet") and "0001-01-01" not in out
    rc, out, err = await cli(data, "status")  # --json keeps the values
    assert rc == 0, err
    assert '"online": false' in out and '"last_sync": null' in out


@pytest.mark.parametrize(("text", "said"), [
    # a ';' or tab file is read since session 11 (test_csv_roundtrip11); '|' is still said
    ("key|name|region\nk1|A|B\n", ["separates values with '|'", "CSV with commas"]),
    ('key,name,region\nk1,"A,B\nk2,C,D\n', ["line 2: a value opens a quote", "lines 2-3",
                                            "close the quote"]),
    ("key,name,region\nk1,,North\n", ["line 2, column name: empty",
                                      "field.site's name is required"]),
])
async def test_csv_mistakes_are_named_with_the_fix(tmp_path: Path, hub: Hub, text: str,
                                                   said: list[str]) -> None:
    """Review 9: a ';' file read as "column 'key;name;region' is not a field", an unclosed
    quote as "1 values, but the header has 3 columns", an empty required cell as "got
    None"."""
    data = tmp_path / "s"
    assert (await cli(data, "connect", hub.url))[0] == 0
    src = tmp_path / "in.csv"
    src.write_text(text, encoding="utf-8")
    rc, out, err = await cli(data, "import", SITE, str(src))
    assert rc == 1 and out == "", err
    for s in said:
        assert s in err, (s, err)
    rc, out, err = await cli(data, "status")
    assert rc == 0 and '"pending": 0' in out, err  # nothing queued


@pytest.mark.parametrize("command", ["connect", "pub", "status", "show", "history",
                                     "conflicts", "resolve", "import", "export", "sync"])
def test_every_command_and_argument_is_described_in_help(command: str) -> None:
    """Review 9: `--help` of pub, import, show, history and resolve described nothing."""
    import argparse

    from desktop.headless import add_commands

    parser = argparse.ArgumentParser(prog="outpost")
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    p = sub.choices[command]
    assert p.description, f"{command}: no description"
    bare = [a.dest for a in p._actions if not a.help]
    assert bare == [], f"{command}: arguments without help: {bare}"
