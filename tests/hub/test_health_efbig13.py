"""Session 12's note: a hub whose commits fail with EFBIG (the process's file-size limit,
``ulimit -f``) passed the health check's rolled-back write probe, which stores nothing in
the files, so `/healthz` flipped back to "ok" until the next commit failed again. Now, while
commits fail, a ledger file within a commit (1 MiB) of the limit fails the probe too. A real
hub on 127.0.0.1 over a real SQLite file, in a child process run under the limit."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from tests.hub.test_cli import ENV, ROOT

LIMIT = 600_000

SCRIPT = r'''
import asyncio, json, sys
from websockets.asyncio.client import connect
from core.ledger.sql import SqlLedger
from core.errors import StorageError
from core.schema import load_project
from hubserver.server import Hub
from tests.conftest import DEMO_SCHEMA
from tests.hub.conftest import request
from tests.hub.test_ops_review10 import _healthz

async def main():
    led = SqlLedger(f"sqlite:///{sys.argv[1]}", load_project(str(DEMO_SCHEMA)))
    out = {"failed": 0, "seen": []}
    try:
        async with Hub(led, port=0, db_check=0.2) as hub:
            out["fresh"] = (await _healthz(hub.url))[0]
            async with connect(hub.url, max_size=None) as ws:
                for i in range(200):  # bounded: until one commit fails for the limit
                    reply = await request(ws, "evt.pub", {"acts": [{
                        "top": "field.site", "key": f"k{i}", "cmd": "new",
                        "arg": {"name": "x" * 20_000}}]}, timeout=60)
                    if "err" in reply:
                        out["failed"] += 1
                        out["err"] = reply["err"]
                        break
                # many periodic checks (every 0.2 s) run meanwhile, each with the write probe
                for _ in range(15):
                    out["seen"].append(await _healthz(hub.url))
                    await asyncio.sleep(0.1)
                out["stat"] = (await request(ws, "evt.stat"))["res"]
        try:
            led.health(write=True)
            out["probe"] = "passed"
        except StorageError as exc:
            out["probe"] = [exc.kind, str(exc)]
    finally:
        led.close()
    print(json.dumps(out))

asyncio.run(main())
'''


def _limited() -> None:
    # Python ignores SIGXFSZ: a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_healthz_stays_503_while_commits_fail_for_the_file_size_limit(tmp_path: Path) -> None:
    # no .pyc written under the limit: CPython writes one cut short (a corrupt cache)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "hub.db")], cwd=ROOT,
                       env={**ENV, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True,
                       text=True, timeout=300,
                       preexec_fn=_limited)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["fresh"] == 200  # a small ledger far below the limit: ok
    assert out["failed"] == 1 and "database is unavailable" in out["err"], out
    # before: 503 at the failed commit, then "ok" from the next check on
    assert {s for s, _ in out["seen"]} == {503}, out["seen"]
    assert all("database unavailable" in body for _, body in out["seen"]), out["seen"]
    assert out["stat"]["db"] == "unavailable", out["stat"]
    kind, text = out["probe"]
    assert kind == "full" and "ulimit -f" in text and f"{LIMIT:,} bytes" in text, text
    assert "raise the limit" in text, text
    assert "the database works again" not in r.stderr, r.stderr
