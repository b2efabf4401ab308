"""A failing PostgreSQL under a cluster of hubs (cluster review 15, session 16):

- a LISTEN connection dropped silently (a TCP proxy of ours in front of PostgreSQL makes its
  open connections silent: no error, no close, nothing arrives) is noticed, made again and
  the gap fanned out; a hub whose wake-ups stopped catches up through its database check;
  /healthz and /metrics say what happens;
- the ledger's and the listener's connections carry keepalives, ``tcp_user_timeout`` and a
  connect timeout (the URL's own values win); a server that never answers fails an open;
- the ledger's newest revision ahead of a hub's clock is logged and shown in /metrics.

Every wait is bounded; nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from sqlalchemy.engine import make_url

from core import dburl
from core.errors import HubError, StorageError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.revision import Rev, now_rev
from core.satellite.client import SyncClient
from core.satellite.machine import HUB_DB_DOWN
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.format import sync_problem
from hubserver.cluster import ClusterListener
from hubserver.server import Hub
from tests.scaleout.conftest import Client, site, trans
from tests.support.faultproxy import FaultProxy

pytestmark = [pytest.mark.pg, pytest.mark.timeout(120)]


def via(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@asynccontextmanager
async def hub_on(url: str, project: Project, *, listen_url: str | None = None,
                 db_check: float = 3600.0, poll: float = 2.0, check_timeout: float = 5.0,
                 clock: Callable[[], Rev] = now_rev) -> AsyncIterator[Hub]:
    """A hub of a cluster on ``url`` whose LISTEN connection goes to ``listen_url``."""
    hub = Hub(SqlLedger(url, project), port=0, close_ledger=True, db_check=db_check,
              clock=clock)
    await hub.start()
    lis = ClusterListener(listen_url or url, hub.request_catch_up, poll=poll,
                          check_timeout=check_timeout)
    try:
        await lis.start(timeout=10)
        hub.cluster = lis
        yield hub
    finally:
        await lis.stop()
        await hub.stop()


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(hub: Hub, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, hub.url.replace("ws://", "http://") + path)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def until(cond: Callable[[], bool], timeout: float) -> bool:
    """Wait (bounded) until ``cond()``."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return cond()


class Proxy:
    """A :class:`FaultProxy` to PostgreSQL on an event loop of its own thread, so that a
    ledger read blocking the test's loop (the hub reads some on it) cannot stop it."""

    def __init__(self, url: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fp = FaultProxy("127.0.0.1", int(make_url(url).port or 5432))
        self.port = self.call(self.fp.start)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            got = fn(*args)
            return await got if asyncio.iscoroutine(got) else got
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def set_mode(self, mode: str) -> None:
        self.call(self.fp.set_mode, mode)

    def cut(self) -> int:
        n: int = self.call(self.fp.cut)
        return n

    def silence(self) -> int:
        n: int = self.call(self.fp.silence)
        return n

    def close(self) -> None:
        self.call(self.fp.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@asynccontextmanager
async def proxy_to(url: str) -> AsyncIterator[Proxy]:
    proxy = await asyncio.to_thread(Proxy, url)
    try:
        yield proxy
    finally:
        await asyncio.to_thread(proxy.close)


async def test_silently_dropped_listen_connection_is_noticed_and_the_gap_fanned_out(
        fresh_pg_db: str, project: Project) -> None:
    # b's database check is off (1 h): only its listener can wake it
    async with proxy_to(fresh_pg_db) as proxy, hub_on(fresh_pg_db, project) as a, \
            hub_on(fresh_pg_db, project, listen_url=via(fresh_pg_db, proxy.port), poll=0.3,
                   check_timeout=1.0) as b:
        lis = b.cluster
        assert lis is not None
        sub = await Client.open(b.url)
        pub = await Client.open(a.url)
        try:
            await sub.sub()
            rev1 = await pub.pub(trans("u-1", site("s-1", "one")))
            assert await sub.wait_rev(rev1, 10), "no cross-hub push before the drop"
            assert proxy.silence() == 1  # the listener's connection only
            rev2 = await pub.pub(trans("u-2", site("s-2", "two")))
            # before session 16: SELECT 1 waited forever, b never learnt of rev2
            assert await sub.wait_rev(rev2, 40), "b stayed behind a's publish"
            assert [r for _, r in sub.got] == [rev1, rev2]
            assert lis.stalls == 1
            assert await until(lambda: lis.connected, 20)
            assert lis.reconnects == 1
            status, text = await get(b, "/metrics")
            assert status == 200
            assert metric(text, "outpost_hub_cluster_listener_stalls_total") == 1
            assert metric(text, "outpost_hub_cluster_listener_reconnects_total") == 1
            assert metric(text, "outpost_hub_cluster_listener_up") == 1
            # the new connection works: a push by NOTIFY again
            rev3 = await pub.pub(trans("u-3", site("s-3", "three")))
            assert await sub.wait_rev(rev3, 10)
        finally:
            await sub.close()
            await pub.close()


async def test_hub_whose_wakeups_stopped_catches_up_by_its_database_check(
        fresh_pg_db: str, project: Project) -> None:
    # b's listener never notices (check_timeout 1 h): its database check (0.2 s) must
    async with proxy_to(fresh_pg_db) as proxy, hub_on(fresh_pg_db, project) as a, \
            hub_on(fresh_pg_db, project, listen_url=via(fresh_pg_db, proxy.port),
                   poll=0.3, check_timeout=3600.0, db_check=0.2) as b:
        sub = await Client.open(b.url)
        pub = await Client.open(a.url)
        try:
            await sub.sub()
            assert proxy.silence() == 1
            revs = [await pub.pub(trans(f"u-{i}", site(f"s-{i}", str(i)))) for i in range(3)]
            assert await sub.wait_rev(revs[-1], 30), "b stayed behind a's publishes"
            assert [r for _, r in sub.got] == revs
            status, text = await get(b, "/healthz")
            assert (status, text) == (200, "ok\n")
            status, text = await get(b, "/metrics")
            assert metric(text, "outpost_hub_behind_seconds") == 0
        finally:
            await sub.close()
            await pub.close()


async def test_healthz_and_metrics_say_the_listen_connection_is_down(
        fresh_pg_db: str, project: Project) -> None:
    async with proxy_to(fresh_pg_db) as proxy, \
            hub_on(fresh_pg_db, project, listen_url=via(fresh_pg_db, proxy.port),
                   poll=0.3) as b:
        lis = b.cluster
        assert lis is not None
        proxy.set_mode("refuse")  # it cannot come back
        assert proxy.cut() == 1
        assert await until(lambda: lis.down_since is not None, 20)
        status, text = await get(b, "/healthz")
        assert status == 200  # the hub serves; its database works
        assert text.startswith("ok (cluster LISTEN connection lost "), text
        status, text = await get(b, "/metrics")
        assert metric(text, "outpost_hub_cluster_listener_up") == 0
        proxy.set_mode("pass")
        assert await until(lambda: lis.connected, 30)
        status, text = await get(b, "/healthz")
        assert (status, text) == (200, "ok\n")


async def test_ledger_ahead_of_a_hub_clock_is_logged_and_shown(
        fresh_pg_db: str, project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    # hub a's host clock is 2 minutes ahead: b's, right, sees the ledger ahead of it
    async with hub_on(fresh_pg_db, project, clock=lambda: now_rev() + 120_000) as a, \
            hub_on(fresh_pg_db, project, db_check=0.2) as b:
        pub = await Client.open(a.url)
        try:
            rev = await pub.pub(trans("u-1", site("s-1", "one")))
            assert rev > now_rev() + 60_000
            assert await until(lambda: b.heads.clock_warned, 20)
            status, text = await get(b, "/metrics")
            assert status == 200
            assert metric(text, "outpost_hub_ledger_ahead_of_clock_seconds") > 60
            assert not a.heads.clock_warned  # the hub ahead does not see itself
            said = [r.getMessage() for r in caplog.records if "ahead of this hub's clock"
                    in r.getMessage()]
            assert len(said) == 1, said
            assert "synchronise the clocks of every hub host (NTP" in said[0]
        finally:
            await pub.close()


def _params(dbapi: Any) -> dict[str, str]:
    got: dict[str, str] = dbapi.info.get_parameters()
    return got


async def test_ledger_and_listener_connections_carry_keepalives_and_timeouts(
        fresh_pg_db: str, project: Project) -> None:
    want = {k: str(v) for k, v in dburl.PG_CONNECT_DEFAULTS.items()}
    led = SqlLedger(fresh_pg_db, project)
    try:
        raw = led.engine.raw_connection()
        try:
            got = _params(raw.driver_connection)
        finally:
            raw.close()
        assert {k: got.get(k) for k in want} == want
    finally:
        led.close()
    # the URL's own values win (0 turns tcp_user_timeout off)
    own = fresh_pg_db + ("&" if "?" in fresh_pg_db else "?") + \
        "keepalives_idle=7&tcp_user_timeout=0"
    led = SqlLedger(own, project)
    try:
        raw = led.engine.raw_connection()
        try:
            got = _params(raw.driver_connection)
        finally:
            raw.close()
        assert got.get("keepalives_idle") == "7"
        assert got.get("tcp_user_timeout") == "0"
        assert got.get("keepalives_count") == "3"
    finally:
        led.close()
    lis = ClusterListener(own, lambda: None)
    await lis.start(timeout=10)
    try:
        assert lis._conn is not None
        got = _params(lis._conn)
        assert got.get("keepalives_idle") == "7"
        assert got.get("tcp_user_timeout") == "0"
        assert got.get("keepalives_interval") == "5"
    finally:
        await lis.stop()


def test_a_database_that_never_answers_fails_the_open(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # a listening socket nobody accepts on: the kernel completes the TCP handshake, and
    # nothing ever answers libpq's startup packet
    monkeypatch.setitem(dburl.PG_CONNECT_DEFAULTS, "connect_timeout", 1)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        out: list[BaseException | None] = []

        def open_it() -> None:
            try:
                SqlLedger(f"postgresql://nobody@127.0.0.1:{port}/nothing", project).close()
                out.append(None)
            except BaseException as exc:
                out.append(exc)

        t = threading.Thread(target=open_it, daemon=True)
        t.start()
        t.join(30)  # before session 16: no connect timeout, it waited forever
        assert out, "opening a ledger on a server that never answers did not give up"
        assert isinstance(out[0], StorageError), out[0]
        with contextlib.suppress(Exception):
            srv.close()


async def test_satellite_names_the_hubs_database_failing_not_still_catching_up(
        fresh_pg_db: str, project: Project, tmp_path: Path) -> None:
    async with proxy_to(fresh_pg_db) as proxy:
        hub = Hub(SqlLedger(via(fresh_pg_db, proxy.port), project), port=0,
                  close_ledger=True, db_check=0.2)
        await hub.start()
        sat = Satellite(tmp_path / "sat", project)
        try:
            client = SyncClient(sat, hub.url, rnd=random.Random(0))
            await client.sync_once(30)
            proxy.set_mode("blackhole")  # the database stops answering (nothing closes)
            assert await until(lambda: bool(hub.db.problem), 40)
            sat.pub([Action("field.site", "k-1", Cmd.NEW, {"name": "one"})])
            client = SyncClient(sat, hub.url, rnd=random.Random(0))
            with pytest.raises(HubError) as info:
                await client.sync_once(3)
            said = str(info.value)
            # before session 16: "connected, still catching up, and what arrived is kept"
            assert "still catching up" not in said
            assert f"connected, but {HUB_DB_DOWN}" in said, said
            assert "until its operator brings the database back" in said
            err = sat.status().last_error
            assert err.startswith(HUB_DB_DOWN)
            assert sat.status().pending == 1
            assert sync_problem(err) == "Hub's database unavailable: sync waits for it"
            proxy.set_mode("pass")  # back: the edit goes out, the error is gone
            client = SyncClient(sat, hub.url, rnd=random.Random(0))
            await client.sync_once(60)
            st = sat.status()
            assert st.pending == 0 and not st.last_error.startswith(HUB_DB_DOWN)
        finally:
            proxy.set_mode("pass")
            sat.close()
            await hub.stop()


def test_connect_defaults_leave_the_operators_own_libpq_settings() -> None:
    """Explicit parameters beat libpq's environment and service files, so a default is not
    passed where the operator set it another way (merge review 16a)."""
    assert dburl.pg_connect_args({}, {})["connect_timeout"] == 10
    assert "connect_timeout" not in dburl.pg_connect_args({}, {"PGCONNECT_TIMEOUT": "60"})
    assert dburl.pg_connect_args({}, {"PGCONNECT_TIMEOUT": "60"})["tcp_user_timeout"] == 30_000
    assert dburl.pg_connect_args({"service": "field"}, {}) == {}
    assert dburl.pg_connect_args({}, {"PGSERVICE": "field"}) == {}
    assert "keepalives_idle" not in dburl.pg_connect_args({"keepalives_idle": "30"}, {})
