"""One process at a time opens a satellite's data directory (``DataDir.lock``).

The satellite keeps the replica's revision and the open part of the queue in memory: a second
process writing the same directory (the app and ``outpost sync`` at once) would leave the
first one's view and the base revision of its next edits stale. The second opener gets a clear
error and changes nothing; the lock goes with the process that held it, even on ``kill -9``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from core.errors import ConfigError
from core.model import Action, Cmd
from core.satellite.api import Keep
from core.satellite.config import DataDir, SatConfig
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.app import WindowSpec, open_satellite

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from core.model import Action, Cmd
from core.satellite.api import Keep
from core.satellite.config import DataDir, SatConfig
from core.satellite.satellite import Satellite
sat = Satellite(sys.argv[1])
for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 0):
    sat.pub([Action("field.site", f"h{i}", Cmd.NEW, {"name": f"Held {i}"})])
print("open", flush=True)
time.sleep(120)
"""


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _stamps(d: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file's size, mtime and bytes; the ``-shm`` file (SQLite's shared-memory WAL
    index, where readers register) by name only."""
    return {p.name: (0, 0, b"") if p.name.endswith("-shm") else
            (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(d.iterdir())}


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "desktop.headless", args[0], "--data",
                           str(data), *args[1:]],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_second_opener_in_the_same_process_is_refused_until_the_first_closes(
        tmp_path: Path, project: Project) -> None:
    a = Satellite(tmp_path, project)
    try:
        a.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
        with pytest.raises(ConfigError) as ei:
            Satellite(tmp_path, project)
        msg = str(ei.value)
        assert str(tmp_path) in msg and "another Outpost process" in msg and "--data" in msg
        assert "an `outpost import`" in msg  # not only the app or sync (safety review 11)
        assert a.status().pending == 1  # the first one is untouched and still works
    finally:
        a.close()
    b = Satellite(tmp_path, project)  # free again once closed
    try:
        assert b.status().pending == 1
    finally:
        b.close()


def test_the_lock_is_released_when_opening_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no schema"):
        Satellite(tmp_path)  # no schema stored, none given
    with pytest.raises(ConfigError, match="no schema"):
        Satellite(tmp_path)  # the same error again, not "in use"


def test_another_process_holds_it_until_it_is_killed(tmp_path: Path, project: Project) -> None:
    Satellite(tmp_path, project).close()  # stores the schema for the holder
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        before = _files(tmp_path)
        with pytest.raises(ConfigError, match="in use by another Outpost process"):
            Satellite(tmp_path, project)
        # the headless CLI says so on stderr, exits non-zero and changes nothing
        cli = subprocess.run([sys.executable, "-m", "desktop.headless", "pub", "--data",
                              str(tmp_path), "field.site", "-", "new", "name=X"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode != 0
        assert "in use by another Outpost process" in cli.stderr and "--data" in cli.stderr
        assert _files(tmp_path) == before
        # nor does `outpost connect`: a running app would keep syncing with the old hub
        cli = subprocess.run([sys.executable, "-m", "desktop.headless", "connect", "--data",
                              str(tmp_path), "ws://127.0.0.1:9"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode != 0 and "in use by another Outpost process" in cli.stderr
        assert _files(tmp_path) == before
        # nor the app opening a profile on it with another hub
        with pytest.raises(ConfigError, match="in use by another Outpost process"):
            asyncio.run(open_satellite(WindowSpec(tmp_path, hub="ws://127.0.0.1:9",
                                                  token="t0k3n")))
        assert _files(tmp_path) == before
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        sat = Satellite(tmp_path, project)  # the kernel dropped the dead holder's lock
        sat.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_satellite_closed_on_another_thread_frees_the_directory(tmp_path: Path,
                                                                  project: Project) -> None:
    opened: list[Satellite] = []
    t = threading.Thread(target=lambda: opened.append(Satellite(tmp_path, project)))
    t.start()
    t.join(30)
    opened[0].close()  # on this thread, not the one that opened it
    Satellite(tmp_path, project).close()


def test_read_only_commands_answer_while_another_process_holds_the_directory(
        tmp_path: Path, project: Project) -> None:
    Satellite(tmp_path, project).close()  # stores the schema for the holder
    DataDir(tmp_path).save_config(SatConfig(hub="ws://127.0.0.1:9"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "3"], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        before = _stamps(tmp_path)
        assert {"satellite.db-wal", "outpost.lock"} <= before.keys()  # the holder's
        # a field user checking on the app: every command that only reads answers
        st = _cli(tmp_path, "status", "--json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["pending"] == 3  # the holder's edits, as committed
        show = _cli(tmp_path, "show", "--json", "field.site")
        assert show.returncode == 0, show.stderr
        assert [(r["key"], r["state"]) for r in json.loads(show.stdout)] == [
            ("h0", "pending"), ("h1", "pending"), ("h2", "pending")]
        one = _cli(tmp_path, "show", "--json", "field.site", "h1")
        assert one.returncode == 0 and json.loads(one.stdout)["fields"]["name"] == "Held 1"
        for args in (("history", "--json", "field.site", "h1"), ("conflicts", "--json")):
            res = _cli(tmp_path, *args)
            assert res.returncode == 0 and json.loads(res.stdout) == [], res.stderr
        exp = _cli(tmp_path, "export", "field.site")
        assert exp.returncode == 0 and exp.stdout.splitlines()[1].startswith("h0,Held 0,")
        # commands that change it are refused with the clear error
        src = tmp_path.parent / f"{tmp_path.name}.csv"
        src.write_text("key,name\nx1,X\n", encoding="utf-8")
        for args in (("pub", "field.site", "-", "new", "name=X"),
                     ("import", "field.site", str(src)), ("sync", "--once"),
                     ("resolve", "no-such-uid", "--keep", "theirs")):
            res = _cli(tmp_path, *args)
            assert res.returncode == 1, (args, res.stderr)
            assert "in use by another Outpost process" in res.stderr and "--data" in res.stderr
        # and nothing in the directory changed: no file made, written or touched
        assert _stamps(tmp_path) == before
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_read_only_satellite_refuses_changes_and_writes_nothing(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    sat.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
    try:
        before = _stamps(tmp_path)
        ro = Satellite(tmp_path, read_only=True)  # beside the writer, which keeps its lock
        try:
            assert ro.status().pending == 1 and ro.record("field.site", "k1") is not None
            with pytest.raises(ConfigError, match="read-only"):
                ro.pub([Action("field.site", "k2", Cmd.NEW, {"name": "Other"})])
            with pytest.raises(ConfigError, match="read-only"):
                ro.resolve("x", Keep.THEIRS)
        finally:
            ro.close()
        assert _stamps(tmp_path) == before  # opened, read, refused, closed: nothing written
        with pytest.raises(ConfigError, match="in use"):  # the writer's lock is still held
            Satellite(tmp_path, project)
        with pytest.raises(ValueError, match="takes no lock"):  # it would never release it
            Satellite(tmp_path, read_only=True, lock=FileLock(tmp_path.parent / "x.lock"))
        assert sat.status().pending == 1
    finally:
        sat.close()


def test_reading_creates_nothing(tmp_path: Path, project: Project) -> None:
    # no such directory: said so clearly, and not created
    missing = tmp_path / "nowhere"
    res = _cli(missing, "status", "--json")
    assert res.returncode == 1 and "there is no data directory" in res.stderr
    assert "outpost connect" in res.stderr and "--data" in res.stderr
    assert not missing.exists()
    # nor by a command that would change it
    res = _cli(missing, "pub", "field.site", "-", "new", "name=X")
    assert res.returncode == 1 and "outpost connect" in res.stderr and not missing.exists()
    # a file given as --data
    afile = tmp_path / "notes.txt"
    afile.write_text("hello", encoding="utf-8")
    for args in (("status",), ("pub", "field.site", "-", "new", "name=X"), ("sync",),
                 ("connect", "ws://127.0.0.1:9")):
        res = _cli(afile, *args)
        assert res.returncode == 1, args
        assert "is a file, not a data directory" in res.stderr and "--data" in res.stderr
        assert "Traceback" not in res.stderr
    assert afile.read_text(encoding="utf-8") == "hello"
    # a directory with a schema but no replica yet (connected, never synced): empty, and no
    # database file, lock or WAL is made
    d = tmp_path / "fresh"
    d.mkdir()
    DataDir(d).save_project(project)
    before = _stamps(d)
    res = _cli(d, "status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pending"] == 0
    assert _cli(d, "show", "--json", "field.site").stdout.strip() == "[]"
    assert _stamps(d) == before
    # the writer has just made satellite.db and not yet written it (a zero-byte file): empty
    # too, not a "read only" storage error
    (d / "satellite.db").write_bytes(b"")
    before = _stamps(d)
    res = _cli(d, "status", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["pending"] == 0, res.stderr
    assert _stamps(d) == before
    # an empty directory: no schema, said so, nothing made
    e = tmp_path / "empty"
    e.mkdir()
    for args in (("status",), ("pub", "field.site", "-", "new", "name=X")):
        res = _cli(e, *args)
        assert res.returncode == 1 and "outpost connect" in res.stderr
    assert list(e.iterdir()) == []


def _unprivileged() -> list[str] | None:
    """A command prefix that runs a process without the power to ignore file permissions:
    for root, setpriv with every capability dropped (still uid 0, so it reads this checkout
    wherever it is); [] when this process is not root; None without setpriv."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


def _headless(prefix: list[str], d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "desktop.headless", args[0],
                           "--data", str(d), *args[1:]],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_read_only_commands_work_in_a_directory_this_user_cannot_write(
        tmp_path: Path, project: Project) -> None:
    prefix = _unprivileged()
    assert prefix is not None, "setpriv (util-linux) is needed to drop root's capabilities"
    d = tmp_path / "sat"
    sat = Satellite(d, project)
    sat.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
    sat.close()  # no -wal left: the reader cannot make SQLite's -shm index here
    d.chmod(0o555)
    try:
        before = _stamps(d)
        res = _headless(prefix, d, "status", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["pending"] == 1
        res = _headless(prefix, d, "show", "--json", "field.site", "k1")
        assert res.returncode == 0 and json.loads(res.stdout)["fields"]["name"] == "Ridge"
        res = _headless(prefix, d, "pub", "field.site", "-", "new", "name=X")
        # refused with the directory named and what to check (the lock file may be opened:
        # this user owns it; then the database cannot be written)
        assert res.returncode == 1 and str(d) in res.stderr, res.stderr
        assert "writable" in res.stderr or "permissions" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
        assert _stamps(d) == before
    finally:
        d.chmod(0o755)


def test_a_read_by_another_user_leaves_no_files_of_its_own(
        tmp_path: Path, project: Project) -> None:
    """A reader running as another user than the files' owner on a directory no process has
    open: a WAL reader would make the -wal and -shm files, owned by the reader. Root makes
    the files another user's (chown) and reads them without its capabilities."""
    prefix = _unprivileged()
    if not prefix:
        pytest.skip("needs root to give the files to another user")
    d = tmp_path / "sat"
    sat = Satellite(d, project)
    sat.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
    sat.close()
    d.chmod(0o777)  # the reader could write here
    for f in d.iterdir():
        f.chmod(0o644)
        os.chown(f, 65534, 65534)
    os.chown(d, 65534, 65534)
    before = _stamps(d)
    res = _headless(prefix, d, "status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pending"] == 1
    assert _stamps(d) == before  # no -wal, no -shm


def test_a_read_that_overlaps_a_stored_reply_is_read_again(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app stores a hub reply between two of a reader's reads (after it read the replica's
    revision, before it read the queue): the edit the hub accepted would show on top of the
    replica that already has it, as a conflict. `outpost status/show/...` read again."""
    import argparse

    import core.satellite.satellite as satmod
    from desktop import headless
    from tests.satellite.test_reply_reads import SITE, reply, snapshot

    w = Satellite(tmp_path, project)
    u1 = w.pub([Action(SITE, "a", Cmd.NEW, {"name": "A"})])
    w.pub([Action(SITE, "a", Cmd.MOD, {"name": "A2"})])
    real = satmod.Replica
    raced: list[bool] = []

    class Racing(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)
            if k.get("read_only") and not raced:
                raced.append(True)
                w.write(reply(w, [u1], 5000, 1))  # the app's sync stores an ack meanwhile

    monkeypatch.setattr(satmod, "Replica", Racing)
    reads: list[dict[str, object]] = []

    def read(sat: Satellite) -> dict[str, object]:
        reads.append(snapshot(sat))
        return reads[-1]

    try:
        got = headless.read_settled(argparse.Namespace(data=str(tmp_path)), read)
        assert raced and len(reads) == 2  # the first read overlapped the commit: read again
        monkeypatch.setattr(satmod, "Replica", real)
        ro = Satellite(tmp_path, read_only=True)  # a read that overlapped nothing
        try:
            fresh = snapshot(ro)
        finally:
            ro.close()
        assert got["records"] == fresh["records"] and got["status"] == fresh["status"]
        assert got["status"] == (1, 0)  # one pending, no conflict
        assert got["rev"] == 5000
    finally:
        w.close()


def test_a_read_only_satellite_sees_another_connections_commit(
        tmp_path: Path, project: Project) -> None:
    w = Satellite(tmp_path, project)
    w.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
    ro = Satellite(tmp_path, read_only=True)
    try:
        assert not ro.changed()
        ro.records("field.site")
        assert not ro.changed()  # its own reads move nothing
        w.pub([Action("field.site", "k2", Cmd.NEW, {"name": "Next"})])
        assert ro.changed()
    finally:
        ro.close()
        w.close()


def test_a_damaged_satellite_db_is_named_with_what_to_do(tmp_path: Path,
                                                         project: Project) -> None:
    sat = Satellite(tmp_path, project)
    sat.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
    sat.close()
    db = tmp_path / "satellite.db"
    db.write_bytes(b"this is not an SQLite file at all" * 200)
    before = _stamps(tmp_path)
    for args in (("status", "--json"), ("pub", "field.site", "-", "new", "name=X")):
        res = _cli(tmp_path, *args)
        assert res.returncode == 1, (args, res.stderr)
        assert str(db) in res.stderr and "move it aside" in res.stderr, res.stderr
        assert "database server" not in res.stderr and "%" not in res.stderr
        assert "Traceback" not in res.stderr
    assert _stamps(tmp_path) == before
