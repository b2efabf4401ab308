"""The README's hub commands, as written: the user ``user add`` makes is one ``serve`` knows."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
from pathlib import Path

from websockets.asyncio.client import connect

from tests.hub.conftest import request
from tests.hub.test_cli import ENV, ROOT, hub_cmd
from tests.support.procs import reap_sync


def _readme_args(cmd: str) -> list[str]:
    """The arguments after ``outpost-hub CMD`` of the README's command line (continuations
    joined, the comment dropped)."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if f"outpost-hub {cmd}" in ln)
    args = shlex.split(line.split("#", 1)[0])
    return args[args.index(cmd.split()[0]):]


def _opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


async def test_readme_user_add_then_serve_accepts_the_token(tmp_path: Path) -> None:
    home = tmp_path / "home"  # the default data directory is not where --db is
    env = {**ENV, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local/share")}
    add = _readme_args("user add")
    r = subprocess.run(hub_cmd(*add), capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=60, check=True)
    token = r.stdout.strip().splitlines()[-1]
    serve = _readme_args("serve")
    assert _opt(serve, "--db") == _opt(add, "--db")
    schema = str(ROOT / _opt(serve, "--schema"))
    # as written, but on loopback, a free port and without TLS files
    proc = subprocess.Popen(hub_cmd("serve", "--db", _opt(serve, "--db"), "--schema", schema,
                                    "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        url = line.split()[2]
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert "res" in await request(ws, "evt.stat")
    finally:
        proc.terminate()
        _, err = await asyncio.to_thread(proc.communicate, timeout=20)
    assert "no users yet" not in err


def test_no_users_hint_names_the_db(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    proc = subprocess.Popen(hub_cmd("serve", "--db", str(db), "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = reap_sync(proc, 20)
    hint = next(ln for ln in err.splitlines() if "no users yet" in ln)
    assert f"user add NAME --db {db}" in hint and str(tmp_path / "hub.sqlite.users.db") in hint
    assert re.search(r"--users", hint) and os.path.basename(str(db)) in hint
