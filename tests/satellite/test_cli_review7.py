"""Session-7 review fixes of the headless CLI, end to end: subprocesses of the real `outpost`
entry point (`python -m desktop.headless`) against a real hub on 127.0.0.1, real SQLite
files."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

from core.model import Action, Cmd
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import ROOT, cli
from tests.support.procs import reap

SITE = "field.site"


async def _python(code: str, *args: str) -> tuple[int, str, str]:
    """``python -c code args``, as the tests' `outpost` is run (PYTHONPATH, cwd)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await reap(proc, 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_an_import_stopped_in_its_second_pass_leaves_no_traceback(
        tmp_path: Path, hub: Hub) -> None:
    """The file changes after the first batch is queued: the import stops with its message
    and nothing more; the reader left suspended used to be detached from the closed file
    when collected ("Exception ignored ... ValueError: I/O operation on closed file")."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "rows.csv"
    # rows after the second batch: the reader is suspended mid-file when the import stops
    src.write_text("key,name\n" + "".join(f"r{i},Old {i}\n" for i in range(3000)),
                   encoding="utf-8")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from core.satellite.queue import Queue\n"
        "from desktop.headless import main\n"
        "real = Queue.add\n"
        "def add(self, *a, **k):\n"
        "    seq = real(self, *a, **k)\n"
        "    p = Path(sys.argv[1]); p.write_text(p.read_text() + 'r9999,Late\\n')\n"
        "    return seq\n"
        "Queue.add = add\n"
        "sys.exit(main(['import', '--data', sys.argv[2], 'field.site', sys.argv[1]]))\n")
    rc, _, err = await _python(code, str(src), str(a))
    assert rc == 1 and "changed while it was being imported" in err, err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert "closed file" not in err


async def test_an_exported_long_note_imports_back(tmp_path: Path, hub: Hub) -> None:
    """A record with a 200 KB note: `outpost export` writes it, `outpost import` reads it
    back (Python's csv refused cells over 131,072 characters with its own message); a cell
    longer than a transaction may hold is refused, named."""
    from core.satellite.satellite import Satellite

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    note = ("Long field notes; " * 12_000)[:200_000]
    sat = Satellite(a)
    try:
        sat.pub([Action(SITE, "n1", Cmd.NEW, {"name": "Noted", "notes": note})])
    finally:
        sat.close()
    rc, out, err = await cli(a, "export", SITE, json_out=False)
    assert rc == 0, err
    assert out.splitlines()[1].startswith(f"n1,Noted,,,,{note},")  # then _rev
    src = tmp_path / "long.csv"
    src.write_text(out.replace(",Noted,", ",Renamed,"), encoding="utf-8")
    for d, cmd in ((a, "mod"), (b, "new")):  # back into the same replica, and a new one
        rc, out, err = await cli(d, "import", SITE, str(src))
        assert rc == 0 and json.loads(out)["rows"] == 1, err
        rc, out, _ = await cli(d, "show", SITE, "n1")
        shown = json.loads(out)["fields"]
        assert shown["notes"] == note and shown["name"] == "Renamed", cmd
    huge = tmp_path / "huge.csv"
    huge.write_text("key,name,notes\nh1,Huge," + "x" * (800 * 1024) + "\n", encoding="utf-8")
    rc, out, err = await cli(b, "import", SITE, str(huge))
    assert rc == 1 and "huge.csv line 2" in err and "a cell is over" in err, err
    assert "field limit" not in err and "shorten it" in err


async def test_read_only_commands_on_a_half_created_replica_say_so(
        tmp_path: Path, hub: Hub, project: Project) -> None:
    """A satellite.db whose first open was killed (or is still running): status, show and
    export say the directory is being created or its creation was interrupted, not SQL
    text or "check the permissions"; a command that writes finishes it."""
    from core.ledger.sql import SqlLedger
    from core.satellite.replica import sqlite_url

    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    db = a / "satellite.db"

    def only_some_tables() -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE evt_event (id INTEGER PRIMARY KEY)")
        conn.close()

    def ledger_without_queue() -> None:
        SqlLedger(sqlite_url(db), project).close()

    for make in (only_some_tables, ledger_without_queue):
        db.unlink(missing_ok=True)
        make()
        for args in (("status",), ("show", SITE), ("export", SITE)):
            rc, out, err = await cli(a, *args)
            assert rc == 1 and out == "", (make.__name__, args, err)
            assert "is being created, or its creation was interrupted" in err, err
            assert "outpost sync --once" in err
            for bad in ("CREATE TABLE", "permissions", "readonly", "Traceback", "file%3A"):
                assert bad not in err, (make.__name__, args, err)
    rc, _, err = await cli(a, "pub", SITE, "k1", "new", "name=Fixed")
    assert rc == 0, err
    rc, out, err = await cli(a, "status")
    assert rc == 0 and json.loads(out)["pending"] == 1, err


async def test_a_hand_edited_schema_json_gets_the_real_fix(tmp_path: Path, hub: Hub) -> None:
    """schema.json changed by hand (a label): the replica was made with the hub's version.
    `status` says to delete schema.json and connect again (not the hub operator's backup
    and restore), and connect does fix it, keeping the pending edits (it advised a new
    --data DIR, naming schema.json's version as the replica's)."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "k1", "new", "name=Mine"))[0] == 0
    schema = a / "schema.json"
    good = schema.read_text(encoding="utf-8")
    data = json.loads(good)
    edited = json.dumps(data).replace('"Sites"', '"Sites of study"', 1)
    assert edited != json.dumps(data)
    schema.write_text(edited, encoding="utf-8")
    for args in (("status",), ("pub", SITE, "k2", "new", "name=Two"),
                 ("sync", "--once", "--timeout", "5")):
        rc, _, err = await cli(a, *args)
        assert rc == 1 and "schema.json has schema version" in err, (args, err)
        assert "delete schema.json and run `outpost connect URL`" in err
        assert "restore" not in err and "new --data DIR" not in err, err
    rc, out, err = await cli(a, "connect", hub.url)
    assert rc == 0 and json.loads(out)["schema"] is True, err
    assert json.loads(schema.read_text(encoding="utf-8")) == json.loads(good)
    rc, out, err = await cli(a, "status")
    assert rc == 0 and json.loads(out)["pending"] == 1, err
    rc, _, err = await cli(a, "sync", "--once")
    assert rc == 0, err
    state = hub.ledger.state(SITE, "k1")
    assert state is not None and state["name"] == "Mine"


async def _collide(tmp_path: Path, hub: Hub) -> tuple[Path, Path]:
    """a and b change the name of s1 offline; a synced first: b's edit will be refused."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Base", "region=N"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "mod", "name=Theirs"))[0] == 0
    assert (await cli(b, "pub", SITE, "s1", "mod", "name=Mine", "lat=2.5"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    return a, b


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    async def find() -> str:
        while True:
            line = (await stream.readline()).decode()
            assert line, f"stream ended before a line with {text!r}: {seen}"
            seen.append(line)
            if text in line:
                return line
    return await asyncio.wait_for(find(), 30)


async def test_continuous_sync_says_when_edits_are_rejected(tmp_path: Path, hub: Hub) -> None:
    """`outpost sync` without --once prints one line per rejected transaction: its record,
    uid, reason and how to resolve it (it printed "online with ..." lines that looked the
    same and never said an edit was refused; then two lines per rejection: the hub's error
    on an "online with" line and "1 new conflict"); no line twice."""
    _, b = await _collide(tmp_path, hub)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop.headless", "sync", "--data", str(b), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        line = await _line_with(proc.stderr, "rejected", seen)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = await reap(proc, 30)
    assert proc.returncode == 0
    lines = seen + rest.decode().splitlines(keepends=True)
    assert len(lines) == len(set(lines)), lines  # no line twice
    _, out, _ = await cli(b, "conflicts")
    [row] = json.loads(out)
    uid = row["uid"]
    assert [ln for ln in lines if uid in ln or "rejected" in ln or "conflict " in ln] == [line]
    assert line.startswith(f"outpost: rejected {SITE} s1 (uid {uid}): field changed (name) by ")
    assert f"`outpost resolve {uid} --keep mine|theirs`" in line and "outpost conflicts" in line
    # review 10: a conflict on fields can be resolved field by field, and the line says how
    assert f"field by field `outpost resolve {uid} --field FIELD=mine|theirs ...`" in line


async def test_conflicts_shows_base_mine_and_theirs(tmp_path: Path, hub: Hub) -> None:
    """`outpost conflicts` shows, per conflicting field, the value the edit was made on,
    the user's and the hub's, in text and JSON: what "keep mine" would send."""
    _, b = await _collide(tmp_path, hub)
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, out, err = await cli(b, "conflicts")
    assert rc == 0, err
    [row] = json.loads(out)
    assert [(f["top"], f["key"], f["field"], f["base"], f["mine"], f["theirs"], f["conflict"])
            for f in row["fields"]] == [(SITE, "s1", "name", "Base", "Mine", "Theirs", True),
                                        (SITE, "s1", "lat", None, 2.5, None, False)]
    rc, out, err = await cli(b, "conflicts", json_out=False)
    assert rc == 0, err
    assert f'{SITE} s1 name: base "Base" | mine "Mine" | theirs "Theirs"' in out, out
    assert out.splitlines()[0].startswith(row["uid"])


async def test_sync_with_a_bad_hub_url_in_config_json_fails_at_once(
        tmp_path: Path, hub: Hub) -> None:
    """A hub URL in config.json that is no ws:// URL: sync (--once or not) stops at once
    naming config.json, instead of trying until the timeout."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "hub": "http://127.0.0.1:8765"}))
    for args in (("sync", "--once", "--timeout", "300"), ("sync",)):
        rc, out, err = await cli(a, *args)
        assert rc == 1 and out == "", (args, err)
        assert "config.json has a bad hub" in err and "is not a hub URL" in err, err
        assert "outpost connect URL" in err


async def test_auth_topics_naming_an_unknown_topic_is_refused(tmp_path: Path,
                                                              hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "auth_topics": ["field.sites"]}))
    for args in (("pub", SITE, "k1", "new", "name=X"), ("status",)):
        rc, _, err = await cli(a, *args)
        assert rc == 1, (args, err)
        assert "auth_topics names 'field.sites'" in err and "did you mean 'field.site'" in err
        assert "the topics are field.site, field.obs" in err and "config.json" in err
    (a / "config.json").write_text(json.dumps({**cfg, "auth_topics": [SITE]}))
    assert (await cli(a, "pub", SITE, "k1", "new", "name=X"))[0] == 0


async def test_invisible_characters_around_keys_are_left_out(tmp_path: Path,
                                                             hub: Hub) -> None:
    """A CSV's keys and `pub`'s KEY lose the spaces and invisible characters around them
    (zero-width space, byte-order mark, no-break space), as ASCII spaces: "k1\\u200b" is
    k1, not a look-alike new record."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "k1", "new", "name=One"))[0] == 0
    src = tmp_path / "keys.csv"
    src.write_text("key,name\n\u200bk1\ufeff,Changed\n\u00a0k2 \u2060,Two\n",
                   encoding="utf-8")
    rc, out, err = await cli(a, "import", SITE, str(src))
    assert rc == 0 and json.loads(out)["rows"] == 2, err
    rc, out, _ = await cli(a, "pub", SITE, "\ufeffk3\u200b", "new", "name=Three")
    assert rc == 0 and json.loads(out)["key"] == "k3"
    rc, out, _ = await cli(a, "show", SITE)
    assert {r["key"]: r["fields"]["name"] for r in json.loads(out)} == {
        "k1": "Changed", "k2": "Two", "k3": "Three"}
    rc, _, err = await cli(a, "pub", SITE, "\u200b", "new", "name=X")
    assert rc == 1 and "is empty once the spaces and invisible characters" in err


async def test_every_typed_key_loses_the_invisible_characters_around_it(
        tmp_path: Path, hub: Hub) -> None:
    """Not only `pub` and a CSV's keys: `show` and `history`'s KEY, a ref field's value and
    `resolve`'s UID go through the same function (core.ids.clean_key), so a pasted
    "\\u200bk1" finds k1 instead of "no record" (or a dangling ref)."""
    _, b = await _collide(tmp_path, hub)
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, out, err = await cli(b, "show", SITE, "\u200bs1\ufeff")
    assert rc == 0 and json.loads(out)["key"] == "s1", err
    rc, out, err = await cli(b, "history", SITE, "\u00a0s1 ")
    assert rc == 0 and len(json.loads(out)) == 2, err
    rc, out, err = await cli(b, "pub", "field.obs", "o1", "new", "species=Owl",
                             "site=\u200bs1\u2060")
    assert rc == 0, err
    rc, out, _ = await cli(b, "show", "field.obs", "o1")
    assert json.loads(out)["fields"]["site"] == "s1"
    rc, out, _ = await cli(b, "conflicts")
    [row] = json.loads(out)
    rc, out, err = await cli(b, "resolve", f"\ufeff{row['uid']}\u200b ", "--keep", "theirs")
    assert rc == 0 and json.loads(out)["uid"] == row["uid"], err
    rc, out, _ = await cli(b, "conflicts")
    assert json.loads(out) == []
    for args in (("show", SITE, "\u200b"), ("history", SITE, " "),
                 ("resolve", "\u2060", "--keep", "mine")):
        rc, _, err = await cli(b, *args)
        assert rc == 1 and "is empty once the spaces and invisible characters" in err, args


async def test_a_key_with_spaces_around_it_that_exists_is_used_as_typed(
        tmp_path: Path, hub: Hub, project: Project) -> None:
    """Records made before keys were cleaned have keys with spaces around them: " k1" is
    then another record than k1. `export` then `import` turned a ref " k1" into k1 (and a
    row of " k1" into a change of k1), and `show`/`history` " k1" showed k1: a key or ref
    that exists exactly as typed is used as is; only one that does not is cleaned."""
    old = Satellite(tmp_path / "old", project)  # the API does not clean keys
    old.pub([Action(SITE, "k1", Cmd.NEW, {"name": "Plain"}),
             Action(SITE, " k1", Cmd.NEW, {"name": "Spaced"}),
             Action("field.obs", "o1", Cmd.NEW, {"species": "Owl", "site": " k1"})])
    await SyncClient(old, hub.url, rnd=random.Random(0)).sync_once(10)
    old.close()
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    for topic, edit in (("field.obs", ("Owl", "Heron")), (SITE, ("Spaced", "Spaced 2"))):
        rc, exported, err = await cli(a, "export", topic, json_out=False)
        assert rc == 0, err
        src = tmp_path / f"{topic}.csv"
        src.write_text(exported.replace(*edit), encoding="utf-8")
        rc, out, err = await cli(a, "import", topic, str(src))
        assert rc == 0, err
    rc, out, err = await cli(a, "show", "field.obs", "o1")
    assert rc == 0, err
    assert json.loads(out)["fields"]["species"] == "Heron"
    assert json.loads(out)["fields"]["site"] == " k1"
    rc, out, _ = await cli(a, "show", SITE)
    assert {r["key"]: r["fields"]["name"] for r in json.loads(out)} == {
        "k1": "Plain", " k1": "Spaced 2"}
    rc, out, err = await cli(a, "show", SITE, " k1")
    assert rc == 0 and json.loads(out)["key"] == " k1", err
    assert json.loads(out)["fields"]["name"] == "Spaced 2"
    rc, out, err = await cli(a, "history", SITE, " k1")
    assert rc == 0 and [h["arg"]["name"] for h in json.loads(out)] == ["Spaced"], err
    # pub: an existing key and ref as typed; a key that does not exist is still cleaned
    rc, out, err = await cli(a, "pub", "field.obs", "o2", "new", "species=Wren", "site= k1")
    assert rc == 0, err
    rc, out, _ = await cli(a, "show", "field.obs", "o2")
    assert json.loads(out)["fields"]["site"] == " k1"
    rc, out, err = await cli(a, "pub", SITE, " k1", "mod", "name=Spaced 3")
    assert rc == 0 and json.loads(out)["key"] == " k1", err
    rc, out, err = await cli(a, "pub", SITE, " k9\u200b", "new", "name=Nine")
    assert rc == 0 and json.loads(out)["key"] == "k9", err
    rc, out, _ = await cli(a, "show", SITE)
    assert {r["key"]: r["fields"]["name"] for r in json.loads(out)} == {
        "k1": "Plain", " k1": "Spaced 3", "k9": "Nine"}


async def test_a_key_of_only_spaces_that_exists_is_shown(tmp_path: Path, hub: Hub,
                                                          project: Project) -> None:
    """Session 9: `show`/`history` refused a KEY of only spaces ("empty once the spaces ...
    are left out") before looking for a record with that very key (made through the API,
    or before keys were cleaned); now the exact key is looked for first, and one that does
    not exist is still refused as empty."""
    old = Satellite(tmp_path / "old", project)  # the API does not clean keys
    old.pub([Action(SITE, "  ", Cmd.NEW, {"name": "Blank"})])
    await SyncClient(old, hub.url, rnd=random.Random(0)).sync_once(10)
    old.close()
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    rc, out, err = await cli(a, "show", SITE, "  ")
    assert rc == 0, err
    assert json.loads(out)["key"] == "  " and json.loads(out)["fields"]["name"] == "Blank"
    rc, out, err = await cli(a, "history", SITE, "  ")
    assert rc == 0 and [h["arg"]["name"] for h in json.loads(out)] == ["Blank"], err
    for args in (("show", SITE, " "), ("history", SITE, "   ")):
        rc, _, err = await cli(a, *args)
        assert rc == 1 and "is empty once the spaces and invisible characters" in err, args
