"""Where a token comes from (session 15 security review: only `--token T`, seen by every
local user in `ps` and kept in shell history), the data directory's mode, and the warning
when a token would cross the network in clear text."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.ledger import MemLedger
from core.satellite.config import TOKEN_ENV, clear_text_warning, given_token
from core.schema import Project
from hubserver.auth import Users
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

ROOT = Path(__file__).resolve().parents[2]


def test_given_token_from_each_source(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("s3cret\nsecond line\n", encoding="utf-8")
    assert given_token("T", None, env={TOKEN_ENV: "E"}) == "T"
    assert given_token("-", None, io.StringIO("fromstdin\n")) == "fromstdin"
    assert given_token(None, str(f), env={TOKEN_ENV: "E"}) == "s3cret"
    assert given_token(None, None, env={TOKEN_ENV: " E \n"}) == "E"
    assert given_token(None, None, env={}) is None
    for args, why in ((("T", str(f)), "both given"), (("-", None), "no token on standard input"),
                      ((None, str(tmp_path / "nope")), "cannot read the token file"),
                      ((None, str(tmp_path)), "cannot read the token file")):
        with pytest.raises(ConfigError, match=why):
            given_token(*args, io.StringIO(""), env={})
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        given_token(None, str(tmp_path / "empty"), env={})


def test_clear_text_warning_only_for_a_token_over_the_network() -> None:
    assert "ws:// (no TLS)" in (clear_text_warning("ws://192.168.1.20:8765", True) or "")
    assert "ws:// (no TLS)" in (clear_text_warning("ws://hub.example:8765", True) or "")
    for url, tok in (("ws://127.0.0.1:8765", True), ("ws://localhost:1", True),
                     ("ws://[::1]:1", True), ("wss://hub.example", True),
                     ("ws://192.168.1.20:8765", False)):
        assert clear_text_warning(url, tok) is None, url


async def _connect(d: Path, url: str, *args: str, stdin: bytes = b"",
                   env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop.headless", "connect", url, "--data", str(d), "--json",
        *args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    out, err = await reap(proc, 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_connect_takes_the_token_from_a_file_stdin_or_the_environment(
        tmp_path: Path, project: Project) -> None:
    users = Users(tmp_path / "users.db")
    tok = users.add("ann", "writer")
    (tmp_path / "tok").write_text(tok + "\n", encoding="utf-8")
    async with Hub(MemLedger(project), users=users, port=0) as hub:
        for name, args, stdin, env in (
                ("file", ("--token-file", str(tmp_path / "tok")), b"", {}),
                ("stdin", ("--token", "-"), tok.encode() + b"\n", {}),
                ("env", (), b"", {TOKEN_ENV: tok})):
            d = tmp_path / name
            rc, _, err = await _connect(d, hub.url, *args, stdin=stdin, env=env)
            assert rc == 0, (name, err)
            assert "no TLS" not in err  # loopback
            cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
            assert cfg["token"] == tok, name
            assert (await cli(d, "sync", "--once", "--timeout", "20"))[0] == 0
            # a new data directory is the user's alone (0700); config.json was 0600 already
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, oct(d.stat().st_mode)
        # a wrong one changes nothing and says so
        (tmp_path / "bad").write_text("nope\n", encoding="utf-8")
        rc, _, err = await _connect(tmp_path / "file", hub.url, "--token-file",
                                    str(tmp_path / "bad"))
        assert rc != 0
        cfg = json.loads((tmp_path / "file" / "config.json").read_text(encoding="utf-8"))
        assert cfg["token"] == tok
        assert TOKEN_ENV not in err
        # a wrong one from the environment: the refusal says where it came from (merge
        # review 15c: it told the user to give the token again, who had given none)
        rc, _, err = await _connect(tmp_path / "file", hub.url, env={TOKEN_ENV: "stale"})
        assert rc != 0 and f"${TOKEN_ENV}" in err, err
        cfg = json.loads((tmp_path / "file" / "config.json").read_text(encoding="utf-8"))
        assert cfg["token"] == tok


def test_the_app_does_not_take_its_token_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge review 15c (HIGH): a plain `outpost` with a stale (or another user's)
    $OUTPOST_TOKEN took it as a new token for the profile's hub and, with the hub out of
    reach, kept it unchecked in place of the good one for good. The app reads only
    --token / --token-file."""
    import desktop.cli
    import desktop.launch

    got: list[str] = []

    def launch(**kw: object) -> int:
        got.append(str(kw["token"]))
        return 0

    monkeypatch.setattr(desktop.launch, "launch", launch)
    monkeypatch.setattr(desktop.cli, "_have_qt", lambda: True)
    monkeypatch.setenv(TOKEN_ENV, "stale-token")
    assert desktop.cli.main(["app"]) == 0
    assert desktop.cli.main([]) == 0
    assert got == ["", ""]


async def test_connect_over_ws_to_another_host_warns_the_token_is_sent_in_clear(
        tmp_path: Path) -> None:
    # TEST-NET-1: nothing answers; --offline stores the URL anyway
    _, _, err = await _connect(tmp_path / "d", "ws://192.0.2.1:8765", "--token", "T",
                                "--offline", "--timeout", "0.5",
                                "--schema", str(ROOT / "assets" / "demo-schema.toml"))
    assert "ws:// (no TLS): your token and every record cross the network in clear" in err, err


def test_a_new_data_directory_is_0700_and_an_existing_one_keeps_its_mode(
        tmp_path: Path) -> None:
    from core.satellite.config import DataDir

    DataDir(tmp_path / "new" / "sat").ensure()
    assert stat.S_IMODE((tmp_path / "new" / "sat").stat().st_mode) == 0o700
    (tmp_path / "old").mkdir(mode=0o755)
    os.chmod(tmp_path / "old", 0o755)
    DataDir(tmp_path / "old").ensure()
    assert stat.S_IMODE((tmp_path / "old").stat().st_mode) == 0o755
