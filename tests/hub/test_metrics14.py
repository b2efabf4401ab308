"""``GET /metrics`` (Prometheus text format 0.0.4) and the slow-work log lines, on a real hub
on 127.0.0.1 asked over real HTTP (session 14, the operator's review: only /healthz and the
log; a reader's catch-up stalled every publish for minutes with nothing said)."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from core.errors import ConfigError
from core.ledger import MemLedger
from core.schema import Project
from hubserver import metrics as metrics_mod
from hubserver import pipeline
from hubserver.auth import Users
from hubserver.cli import main
from hubserver.metrics import SlowLog
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import stop
from tests.hub.test_ops_review10 import _add, _env, _serve

Z = "0001-01-01T00:00:00Z"
_SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})? (\S+)$')


def new(key: str, name: str) -> dict[str, Any]:
    return {"acts": [{"top": "prod.cat", "key": key, "cmd": "new", "arg": {"name": name}}]}


def _get(url: str, token: str | None = None) -> tuple[int, str, str]:
    """A real HTTP GET of the hub's ``/metrics``: (status, content type, body)."""
    req = urllib.request.Request(url.replace("ws://", "http://") + "/metrics")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def parse(text: str) -> dict[str, float]:
    """The exposition's samples (``name{labels}`` → value), checking its format: every
    sample's family has ``# HELP`` and ``# TYPE`` before it, names and labels well formed."""
    out: dict[str, float] = {}
    typed: dict[str, str] = {}
    helped: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed and family in helped, line
        if typed[family] == "counter":
            assert name.endswith("_total"), line
        out[name + (m.group(2) or "")] = float(m.group(3))
    return out


async def scrape(url: str, token: str | None = None) -> dict[str, float]:
    status, ctype, body = await asyncio.to_thread(_get, url, token)
    assert status == 200, body
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return parse(body)


async def test_metrics_move_with_connections_publishes_and_the_revision(prod: Project) -> None:
    async with Hub(MemLedger(prod), port=0) as hub:  # --auth none: open by default
        m0 = await scrape(hub.url)
        assert m0["outpost_hub_connections"] == 0
        assert m0["outpost_hub_database_up"] == 1
        assert m0["process_resident_memory_bytes"] > 1_000_000
        assert m0['outpost_hub_transactions_total{outcome="accepted"}'] == 0
        assert m0['outpost_hub_commit_seconds_bucket{le="+Inf"}'] == 0
        async with connect(hub.url) as a, connect(hub.url) as b:
            assert await request(b, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == {"res": None}
            m1 = await scrape(hub.url)
            assert m1["outpost_hub_connections"] == 2
            assert m1['outpost_hub_connections_by_role{role="writer"}'] == 2
            assert m1['outpost_hub_connections_by_role{role="reader"}'] == 0
            pub = await request(a, "evt.pub", new("1", "Ridge"))
            assert "res" in pub
            dup = {"acts": [{"top": "prod.cat", "key": "1", "cmd": "new",
                             "arg": {"name": "again"}}]}
            assert "err" in await request(a, "evt.pub", dup)  # the ledger's verdict: rejected
            m2 = await scrape(hub.url)
        m3 = await scrape(hub.url)
    assert m2["outpost_hub_publishes_total"] == m1["outpost_hub_publishes_total"] + 2
    assert m2['outpost_hub_transactions_total{outcome="accepted"}'] == 1
    assert m2['outpost_hub_transactions_total{outcome="rejected"}'] == 1
    assert m2['outpost_hub_transactions_total{outcome="failed"}'] == 0
    assert m2["outpost_hub_events_published_total"] == len(pub["res"]["evs"]) >= 1
    assert m2["outpost_hub_commits_total"] == 2
    assert m2["outpost_hub_commit_seconds_count"] == 2
    assert m2['outpost_hub_commit_seconds_bucket{le="+Inf"}'] == 2
    assert m2["outpost_hub_commit_seconds_sum"] > 0
    assert m2["outpost_hub_ledger_revision_ms"] > m1["outpost_hub_ledger_revision_ms"]
    assert m2["outpost_hub_pushes_pending"] == 0 and m2["outpost_hub_catchups_running"] == 0
    assert m2["outpost_hub_uptime_seconds"] >= m0["outpost_hub_uptime_seconds"]
    assert m3["outpost_hub_connections"] == 0
    # buckets are cumulative: never fewer below a larger bound
    les = [v for k, v in m2.items() if k.startswith("outpost_hub_commit_seconds_bucket")]
    assert les == sorted(les)


async def test_metrics_need_the_scrape_token_on_a_hub_with_users_and_name_nobody(
        prod: Project, tmp_path: Path) -> None:
    users = Users(tmp_path / "hub-users.db")
    prom = users.add("prometheus", role="reader")
    ann = users.add("ann-secret-name")
    scrape_token = "s" * 32
    async with Hub(MemLedger(prod), port=0, users=users, metrics_token=scrape_token) as hub:
        status, _ctype, body = await asyncio.to_thread(_get, hub.url)
        assert status == 401 and "Authorization: Bearer" in body, body
        status, _ctype, body = await asyncio.to_thread(_get, hub.url, "not-a-token")
        assert status == 401
        # session 15: a user's token (a reader's too) no longer opens /metrics
        status, _ctype, body = await asyncio.to_thread(_get, hub.url, prom)
        assert status == 401 and "--metrics-token-file" in body, body
        async with connect(hub.url, additional_headers={"Authorization": f"Bearer {ann}"}):
            status, _ctype, body = await asyncio.to_thread(_get, hub.url, scrape_token)
            assert status == 200
            m = parse(body)
        assert m['outpost_hub_connections_by_role{role="writer"}'] == 1
        assert m['outpost_hub_refused_total{reason="metrics_token"}'] == 3
        assert "ann-secret-name" not in body and "prometheus" not in body
        assert "127.0.0.1" not in body
    async with Hub(MemLedger(prod), port=0, users=users, metrics="off",
                   metrics_token=scrape_token) as hub:
        status, _ctype, body = await asyncio.to_thread(_get, hub.url, scrape_token)
        assert status == 404 and "--metrics" in body
    async with Hub(MemLedger(prod), port=0, users=users) as hub:  # no scrape token: off
        status, _ctype, body = await asyncio.to_thread(_get, hub.url, prom)
        assert status == 404 and "--metrics-token-file" in body, body
    async with Hub(MemLedger(prod), port=0, users=users, metrics="open") as hub:
        assert (await scrape(hub.url))["outpost_hub_connections"] == 0
    with pytest.raises(ConfigError, match="--metrics token needs --metrics-token-file"):
        Hub(MemLedger(prod), port=0, metrics="token")
    with pytest.raises(ConfigError, match="--metrics token needs --metrics-token-file"):
        Hub(MemLedger(prod), port=0, users=users, metrics="token")


def test_serve_refuses_metrics_token_without_a_token_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "hub.sqlite")
    assert main(["serve", "--auth", "none", "--metrics", "token", "--db", db]) == 2
    assert "--metrics-token-file" in capsys.readouterr().err
    short = tmp_path / "short.token"
    short.write_text("abc\n")
    assert main(["serve", "--metrics-token-file", str(short), "--db", db]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    assert main(["serve", "--metrics-token-file", str(tmp_path / "none"), "--db", db]) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert not Path(db).exists()  # refused before anything was made


def test_serve_asks_the_scrape_token_for_metrics_and_never_logs_a_scrape(
        tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.sqlite")
    prom = _add(env, "prometheus", "--role", "reader", "--db", db)
    tok = tmp_path / "metrics.token"
    scrape_token = "0123456789abcdef0123456789abcdef"
    tok.write_text(scrape_token + "\n")
    proc, url, _line = _serve(env, "--db", db, "--log-level", "DEBUG",
                              "--metrics-token-file", str(tok))
    try:
        assert _get(url)[0] == 401
        assert _get(url, prom)[0] == 401  # a user's token: no
        status, ctype, body = _get(url, scrape_token)
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), body
        assert parse(body)["outpost_hub_database_up"] == 1
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert err.count("GET /metrics refused from 127.0.0.1:") == 2, err  # the 401s, once each
    assert "HTTP response sent (200" not in err, err  # a scrape is not logged, even at DEBUG
    assert prom not in err and scrape_token not in err


async def test_slow_commits_and_catch_up_reads_are_logged_at_most_once_a_minute(
        prod: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # every commit and read counts as slow (the bound is not what is tested: the lines are)
    monkeypatch.setattr(metrics_mod, "SLOW", 0.0)
    monkeypatch.setattr(pipeline, "SLOW", 0.0)
    caplog.set_level(logging.WARNING, "outpost.hub")
    async with Hub(MemLedger(prod), port=0) as hub, connect(hub.url) as a:
        for i in range(3):
            assert "res" in await request(a, "evt.pub", new(str(i), f"n{i}"))
        reply = await request(a, "evt.sub", {"rev": Z, "tops": ["prod.cat"]})
        assert reply["res"]["evs"]
        m = await scrape(hub.url)
    commits = [r.getMessage() for r in caplog.records if "slow commit" in r.getMessage()]
    reads = [r.getMessage() for r in caplog.records if "slow catch-up read" in r.getMessage()]
    assert len(commits) == 1, commits
    assert "every publish waits behind it" in commits[0]
    assert len(reads) == 1 and "evt.sub / evt.mon catch-up" in reads[0], reads
    assert m['outpost_hub_slow_total{kind="commit"}'] == 3
    assert m['outpost_hub_slow_total{kind="catch-up read"}'] >= 1


def test_slow_log_counts_the_lines_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "outpost.hub")
    slow = SlowLog(every=60.0)
    slow.note("commit", 2.5, "a commit of 3 transaction(s)", "publishes wait")
    slow.note("commit", 1.5, "a commit of 1 transaction(s)", "publishes wait")
    slow.note("catch-up read", 3.0, "a read", "publishes waited")
    slow._last["commit"] -= 61  # a minute later
    slow.note("commit", 1.2, "a commit of 2 transaction(s)", "publishes wait")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "slow commit: a commit of 3 transaction(s) took 2.5 s: publishes wait",
        "slow catch-up read: a read took 3.0 s: publishes waited",
        "slow commit: a commit of 2 transaction(s) took 1.2 s: publishes wait (1 more over "
        "1 s since the last such line)",
    ]
    assert slow.seen == {"commit": 3, "catch-up read": 1}


async def test_a_slow_cluster_catch_up_read_is_logged(
        prod: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Two hubs on one ledger (as a cluster on PostgreSQL): the second reads what the first
    published on its writer thread (request_catch_up, as on a NOTIFY); a slow read says so."""
    monkeypatch.setattr(metrics_mod, "SLOW", 0.0)
    monkeypatch.setattr(pipeline, "SLOW", 0.0)
    caplog.set_level(logging.WARNING, "outpost.hub")
    led = MemLedger(prod)
    async with Hub(led, port=0) as h1, Hub(led, port=0) as h2, connect(h1.url) as a:
        before = (await scrape(h2.url))["outpost_hub_ledger_revision_ms"]
        assert "res" in await request(a, "evt.pub", new("1", "Ridge"))
        h2.request_catch_up()
        for _ in range(500):  # bounded: 5 s
            if h2.service.rev > before:
                break
            await asyncio.sleep(0.01)
        m = await scrape(h2.url)
    assert m["outpost_hub_ledger_revision_ms"] > before  # the other hub's revision, fanned out
    assert m['outpost_hub_slow_total{kind="catch-up read"}'] >= 1
    assert m["outpost_hub_publishes_total"] == 0  # published on the first hub
    lines = [r.getMessage() for r in caplog.records]
    assert any(ln.startswith("slow catch-up read: the read of other hubs' revisions took ")
               for ln in lines), lines
