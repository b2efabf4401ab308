"""Helpers for the scale-out tests: several hubs on one real PostgreSQL ledger.

- :func:`cluster`: N in-process hubs, each with its own :class:`SqlLedger` (own connection
  pool, as a separate process would have) and its own :class:`ClusterListener`.
- :class:`Client`: a raw WebSocket client that publishes (``evt.pub``) and subscribes
  (``evt.sub``) and records, in arrival order, every event it was given (reply or push), so a
  test can check that nothing was skipped, duplicated or reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.ledger.sql import SqlLedger
from core.revision import ZERO_REV, format_rev, parse_rev
from core.schema import Project
from hubserver.cluster import ClusterListener
from hubserver.server import Hub

ROOT = Path(__file__).resolve().parents[2]
TOPS = ["field.site", "field.obs"]
ZERO = format_rev(ZERO_REV)


@dataclass
class Node:
    """One in-process hub of a cluster."""

    hub: Hub
    listener: ClusterListener
    ledger: SqlLedger


@asynccontextmanager
async def cluster(url: str, project: Project, n: int, *, poll: float = 2.0
                  ) -> AsyncIterator[list[Node]]:
    """``n`` hubs on the ledger at ``url``, each listening for the others' revisions."""
    nodes: list[Node] = []
    try:
        for _ in range(n):
            led = SqlLedger(url, project)
            hub = Hub(led, port=0, close_ledger=True)
            await hub.start()
            lis = ClusterListener(url, hub.request_catch_up, poll=poll)
            nodes.append(Node(hub, lis, led))
            await lis.start(timeout=10)
            hub.cluster = lis  # as outpost-hub serve does
        yield nodes
    finally:
        for nd in nodes:
            await nd.listener.stop()
            await nd.hub.stop()


def site(key: str, name: str) -> dict[str, Any]:
    return {"top": "field.site", "key": key, "cmd": "new", "arg": {"name": name}}


def trans(uid: str, *acts: dict[str, Any]) -> dict[str, Any]:
    return {"uid": uid, "base": ZERO, "acts": list(acts)}


class Client:
    """A raw hub client: requests with tokens, and a log of every event received in order.

    Attributes:
        got: ``(id, rev)`` of every event received (``evt.sub`` reply, then pushes), in order.
        pushes: number of ``evt.update`` pushes.
    """

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.got: list[tuple[int, int]] = []
        self.pushes = 0
        self.push_times: list[tuple[float, int]] = []  # (monotonic, rev) of each push
        self._tok = 0
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str) -> Client:
        ws = await connect(url, open_timeout=10, max_size=None)
        return cls(ws)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def _record(self, body: Any) -> None:
        for e in (body or {}).get("evs") or []:
            self.got.append((int(e["id"]), parse_rev(e["rev"])))

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                assert isinstance(text, str)
                head, _, raw = text.partition("\n")
                body = orjson.loads(raw) if raw.strip() else None
                subj, _, tok = head.partition("#")
                if not tok:
                    if subj == "evt.update":
                        self.pushes += 1
                        self._record(body)
                        self.push_times.append((time.monotonic(), parse_rev(body["rev"])))
                    continue
                fut = self._waiting.pop(tok, None)
                if fut is not None and not fut.done():
                    if subj == "evt.sub" and isinstance(body, dict) and "res" in body:
                        self._record(body["res"])  # in order: before any later push
                    fut.set_result(body)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    async def request(self, subj: str, body: Any = None, timeout: float = 10.0) -> Any:
        """The reply body (``{"res": ...}`` or ``{"err": ...}``)."""
        self._tok += 1
        tok = str(self._tok)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[tok] = fut
        frame = f"{subj}#{tok}" if body is None else \
            f"{subj}#{tok}\n" + orjson.dumps(body).decode()
        try:
            await self.ws.send(frame)
        except ConnectionClosed as exc:
            # the hub died between two requests: the same as dying with one in flight
            self._waiting.pop(tok, None)
            raise ConnectionError("connection closed") from exc
        return await asyncio.wait_for(fut, timeout)

    async def sub(self, tops: list[str] | None = None, rev: str = ZERO) -> Any:
        return await self.request("evt.sub", {"rev": rev, "tops": tops or TOPS})

    async def pub(self, body: dict[str, Any], timeout: float = 10.0) -> int:
        """Publish; returns the revision; raises AssertionError on an error reply."""
        rep = await self.request("evt.pub", body, timeout)
        assert "res" in rep, rep
        return parse_rev(rep["res"]["rev"])

    async def wait_rev(self, rev: int, timeout: float) -> bool:
        """Wait (bounded) until an event at ``rev`` or later was received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.got and self.got[-1][1] >= rev:
                return True
            await asyncio.sleep(0.01)
        return bool(self.got) and self.got[-1][1] >= rev


def check_stream(got: list[tuple[int, int]], ledger_ids: list[tuple[int, int]],
                 who: str) -> None:
    """``got`` is exactly the ledger's events, in order: no skip, no duplicate, no reorder."""
    ids = [i for i, _ in got]
    dups = len(ids) - len(set(ids))
    assert dups == 0, f"{who}: {dups} events delivered twice"
    revs = [r for _, r in got]
    assert revs == sorted(revs), f"{who}: events out of revision order"
    assert ids == sorted(ids), f"{who}: events out of id order"
    missing = sorted(set(i for i, _ in ledger_ids) - set(ids))
    assert not missing, f"{who}: skipped {len(missing)} events, first {missing[:5]}"
    assert got == ledger_ids, f"{who}: stream differs from the ledger"
