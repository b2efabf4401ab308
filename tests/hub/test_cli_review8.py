"""``outpost-hub serve`` refuses bad options with clear errors, creating nothing; ``outpost
connect`` refuses a token in the URL without echoing it; an untrusted TLS certificate names
the fix. Real processes and sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from core.errors import ConfigError, HubError
from core.satellite.client import fetch_hub
from core.satellite.config import check_hub_url
from tests.hub.test_cli import ENV, hub_cmd, start, stop


@pytest.mark.parametrize(("opts", "said"), [
    (["--port", "99999"], "--port 99999"),
    (["--port", "-1"], "--port -1"),
    (["--max-connections", "0"], "--max-connections 0"),
    (["--max-connections", "-1"], "--max-connections -1"),
    (["--idle-timeout", "-5"], "--idle-timeout -5"),
    (["--max-monitors", "-1"], "--max-monitors -1"),
    (["--max-monitor-keys", "-1"], "--max-monitor-keys -1"),
    (["--max-watch-keys", "-1"], "--max-watch-keys -1"),
    (["--host", "nosuch.invalid"], "--host nosuch.invalid"),
    (["--tls-cert", "nosuch.pem", "--tls-key", "nosuch.key"], "nosuch.pem"),
])
def test_serve_refuses_bad_options_and_creates_nothing(tmp_path: Path, opts: list[str],
                                                       said: str) -> None:
    db = tmp_path / "new" / "hub.db"
    r = subprocess.run(hub_cmd("serve", "--db", str(db), "--port", "0", *opts),
                       capture_output=True, text=True, env=ENV, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert said in r.stderr and "Traceback" not in r.stderr and "ready" not in r.stdout
    if "--host" not in opts:  # refused before anything is opened
        assert not db.exists() and not (tmp_path / "new" / "hub.db.users.db").exists()
    else:
        assert "another --port" not in r.stderr  # the host is the problem, not the port


@pytest.mark.parametrize("url", ["wss://hub.example/?token=SECRETTOKEN",
                                 "ws://127.0.0.1:8765/?x=1&Token=SECRETTOKEN",
                                 "ws://127.0.0.1:8765/#access_token=SECRETTOKEN",
                                 "ws:/ /broken?token=SECRETTOKEN"])
def test_a_token_in_the_hub_url_is_refused_and_not_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as ei:
        check_hub_url(url)
    assert "SECRETTOKEN" not in str(ei.value)
    assert "--token" in str(ei.value) or "not a hub URL" in str(ei.value)


def test_outpost_connect_with_a_token_in_the_url(tmp_path: Path) -> None:
    r = subprocess.run([str(Path(hub_cmd()[0]).parent / "outpost"),
                        "connect", "wss://hub.example/?token=SECRETTOKEN", "--data",
                        str(tmp_path / "sat")], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert r.returncode != 0
    assert "SECRETTOKEN" not in r.stdout + r.stderr and "--token" in r.stdout + r.stderr
    assert not (tmp_path / "sat" / "config.json").exists()


async def test_self_signed_hub_error_names_the_fix(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    proc, url = await asyncio.to_thread(start, tmp_path, "--auth", "none", "--tls-cert",
                                        str(cert), "--tls-key", str(key), scheme="wss")
    try:
        with pytest.raises(HubError) as ei:
            await fetch_hub(url)
        msg = str(ei.value)
        assert "SSL_CERT_FILE" in msg and "certificate" in msg and "trust" in msg
    finally:
        await asyncio.to_thread(stop, proc)
