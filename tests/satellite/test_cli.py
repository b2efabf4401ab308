"""The headless CLI contract end to end: subprocesses `python -m desktop.headless` against a real
in-process hub on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.schema import Project
from hubserver.server import Hub

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def hub(project: Project) -> AsyncIterator[Hub]:
    async with Hub(MemLedger(project), port=0) as h:
        yield h


async def cli(data: Path, *args: str, json_out: bool = True) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "desktop.headless", args[0], "--data", str(data),
            *(["--json"] if json_out else []), *args[1:]]
    proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_contract(tmp_path: Path, hub: Hub) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    rc, out, _ = await cli(a, "connect", hub.url, "--token", "t0k3n")
    assert rc == 0 and json.loads(out)["schema"] is True
    assert "t0k3n" not in out
    assert (a / "config.json").stat().st_mode & 0o777 == 0o600
    assert (await cli(b, "connect", hub.url))[0] == 0

    rc, out, _ = await cli(a, "pub", "field.site", "-", "new", "name=Ridge", "lat=1.5")
    assert rc == 0
    made = json.loads(out)
    key, uid = made["key"], made["uid"]
    rc, out, _ = await cli(a, "show", "field.site", key)
    assert rc == 0 and json.loads(out)["state"] == "pending"
    rc, out, _ = await cli(a, "status")
    st = json.loads(out)
    assert st["pending"] == 1 and st["conflicts"] == 0 and st["online"] is False
    assert {"rev", "local_rev", "last_sync", "hub", "mig"} <= st.keys()

    rc, out, err = await cli(a, "sync", "--once", "--timeout", "10")
    assert rc == 0, err
    rc, out, _ = await cli(a, "status")
    st = json.loads(out)
    assert st["pending"] == 0 and st["last_sync"] and st["hub"] == hub.url
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, out, _ = await cli(b, "show", "field.site")
    rows = json.loads(out)
    assert [(r["key"], r["state"], r["fields"]["name"]) for r in rows] == [
        (key, "confirmed", "Ridge")]
    rc, out, _ = await cli(b, "history", "field.site", key)
    hist = json.loads(out)
    assert hist[0]["cmd"] == "new" and "name" in hist[0]["fields"]

    # a collision: both change the name offline
    assert (await cli(a, "pub", "field.site", key, "mod", "name=FromA"))[0] == 0
    rc, out, _ = await cli(b, "pub", "field.site", key, "mod", "name=FromB")
    ub = json.loads(out)["uid"]
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, out, _ = await cli(b, "conflicts")
    inbox = json.loads(out)
    assert [c["uid"] for c in inbox] == [ub] and inbox[0]["conflicts"][0]["fields"] == ["name"]
    rc, out, _ = await cli(b, "resolve", ub, "--keep", "mine")
    assert rc == 0 and json.loads(out)["resolved_by"] != "theirs"
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert hub.ledger.state("field.site", key)["name"] == "FromB"  # type: ignore[index]
    rc, out, _ = await cli(b, "conflicts")
    assert json.loads(out) == []
    assert uid  # the first uid was printed


async def test_cli_import_export_and_errors(tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "sites.csv"
    src.write_text("key,name,region,lat\nk1,One,N,1.5\nk2,Two,,\n", encoding="utf-8")
    rc, out, _ = await cli(a, "import", "field.site", str(src))
    assert rc == 0 and json.loads(out)["rows"] == 2 and len(json.loads(out)["uids"]) == 1
    rc, out, _ = await cli(a, "export", "field.site", json_out=False)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["key"] for r in rows] == ["k1", "k2"]
    assert list(rows[0]) == ["key", "name", "region", "lat", "lon", "notes"]
    assert rows[0]["lat"] == "1.5" and rows[1]["region"] == ""

    rc, out, err = await cli(a, "pub", "field.site", "k9", "new", "nmae=x")
    assert rc != 0 and "unknown field 'nmae'" in err and "did you mean" in err
    rc, out, err = await cli(a, "pub", "field.sitex", "k9", "new", "name=x")
    assert rc != 0 and "field.sitex" in err
    rc, out, err = await cli(tmp_path / "empty", "status")
    assert rc != 0 and "outpost connect" in err
    c = tmp_path / "c"
    assert (await cli(c, "connect", "ws://127.0.0.1:9", "--timeout", "1"))[0] != 0
    rc, out, err = await cli(c, "sync", "--once", "--timeout", "1")
    assert rc != 0 and "hub" in err


async def test_cli_import_splits_long_text_by_size(tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "long.csv"
    note = "z" * 5000
    src.write_text("key,name,notes\n" + "".join(f"k{i},N{i},{note}\n" for i in range(400)),
                   encoding="utf-8")  # ~2 MB: one transaction of 400 rows was too big to send
    rc, out, err = await cli(a, "import", "field.site", str(src))
    assert rc == 0, err
    res = json.loads(out)
    assert res["rows"] == 400 and len(res["uids"]) >= 8
    rc, out, err = await cli(a, "sync", "--once", "--timeout", "20")
    assert rc == 0, err
    assert len(hub.ledger.keys("field.site")) == 400


async def test_sync_settles_the_heap_once_the_queue_is_loaded(tmp_path: Path, hub: Hub) -> None:
    """`outpost sync` freezes start-up and its loaded queue out of full collections and
    collects young objects less often (core.heap), as the hub does; `pub` does not."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", "field.site", "-", "new", "name=Ridge"))[0] == 0
    code = ("import gc, sys; from desktop.headless import main; from core.heap import GC_YOUNG; "
            "before = gc.get_freeze_count(); rc = main(sys.argv[1:]); "
            "print('GC', rc, before, gc.get_freeze_count() > 1000, "
            "gc.get_threshold()[0] == GC_YOUNG)")
    for cmd, settled in (("pub", "False"), ("sync", "True")):
        args = ["field.site", "-", "new", "name=Two"] if cmd == "pub" else ["--once"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, cmd, "--data", str(a), "--json", *args, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        line = next(ln for ln in out.decode().splitlines() if ln.startswith("GC "))
        assert line.split()[1:] == ["0", "0", settled, settled], (cmd, line)
