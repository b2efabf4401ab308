"""Wire review 11: hostile handshakes get a short answer, never a traceback (a real hub
process, websockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.hub.conftest import request
from tests.hub.test_cli import hub_cmd, stop
from tests.hub.test_ops_review10 import _add, _env, _serve
from tests.support.procs import reap_sync


async def _two_headers(url: str, token: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as exc:
        async with connect(url, additional_headers=[("Authorization", f"Bearer {token}"),
                                                    ("Authorization", "Bearer x")]):
            pass
    return exc.value


async def _one_header(url: str, token: str) -> dict[str, object]:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        return await request(ws, "evt.stat")


def test_two_authorization_headers_get_400_and_no_traceback(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.db")
    token = _add(env, "ann", "--db", db)
    proc, url, _ = _serve(env, "--db", db)
    try:
        err = asyncio.run(_two_headers(url, token))
        assert err.response.status_code == 400
        assert b"more than one Authorization header" in err.response.body
        assert "res" in asyncio.run(_one_header(url, token))  # the hub still serves
    finally:
        rc, log = stop(proc)
    assert rc == 0, log
    assert "Traceback" not in log and "MultipleValuesError" not in log, log
    assert "2 Authorization headers" in log


def test_sighup_drains_like_sigterm(tmp_path: Path) -> None:
    """A closed terminal or ssh session sends SIGHUP: the hub drains and says so, as on
    SIGTERM, instead of dying at once with its in-flight publishes unanswered (ops review
    11). The child starts with SIGHUP's default action: a test run under `nohup` (SIGHUP
    ignored, inherited) would otherwise be the nohup case below."""
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.db")
    token = _add(env, "ann", "--db", db)
    proc = subprocess.Popen(hub_cmd("serve", "--port", "0", "--db", db),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost-hub ready: "), line
        assert "res" in asyncio.run(_one_header(line.split()[2], token))
        rc, log = stop(proc, signal.SIGHUP)
    finally:
        if proc.poll() is None:
            proc.kill()
            reap_sync(proc, 20)
    assert rc == 0, log
    assert "shutting down (SIGHUP)" in log, log


def test_a_hub_started_with_nohup_keeps_ignoring_sighup(tmp_path: Path) -> None:
    """`nohup outpost-hub serve &` means "outlive my ssh session": SIGHUP stays ignored
    (merge review 11: the drain on SIGHUP replaced nohup's ignore)."""
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.db")
    token = _add(env, "ann", "--db", db)
    proc = subprocess.Popen(["nohup", *hub_cmd("serve", "--port", "0", "--db", db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost-hub ready: "), line
        url = line.split()[2]
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(2)  # still serving
        assert "res" in asyncio.run(_one_header(url, token))
        rc, log = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            reap_sync(proc, 20)
    assert rc == 0, log
    assert "shutting down (SIGTERM)" in log, log
