"""`outpost-hub serve` on a network address without TLS says once that tokens cross the
network in clear text (session 15 security review: it started silently)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from hubserver.auth import Users
from tests.hub.test_cli import ENV, hub_cmd
from tests.support.procs import reap_sync


def _serve(tmp_path: Path, *args: str) -> str:
    Users(tmp_path / "hub.db.users.db").add("ann", "writer")
    proc = subprocess.Popen(hub_cmd("serve", "--db", str(tmp_path / "hub.db"), "--port", "0",
                                    *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=tmp_path)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the ready line (or exit)
    proc.send_signal(signal.SIGTERM)
    _, err = reap_sync(proc, 20)
    assert line.startswith("outpost-hub ready: "), (line, err)
    return err


def test_serve_on_all_addresses_without_tls_warns(tmp_path: Path) -> None:
    err = _serve(tmp_path, "--host", "0.0.0.0")
    assert "--host 0.0.0.0 without --tls-cert: clients send their tokens" in err, err
    (tmp_path / "lo").mkdir()
    assert "without --tls-cert" not in _serve(tmp_path / "lo", "--host", "127.0.0.1")
