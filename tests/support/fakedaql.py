"""A test-only daql hub: the other side's wire behaviour, as the daql Go server answers
(``/work/shared/reference/daql-wire-frames.txt``, ``tests/data/daql_frames.py``): no auth, no
uids, no ``acks``/``rejects``, no Outpost extension in ``evt.stat`` (``mig`` is ``""``), no
``dom.project``, no reply at all to an unknown subject. ``evt.sat`` publishes every
transaction of the request or answers an error (nothing published), then answers ``res``
``{rev, evs}`` with every event of ``tops`` after ``rev`` (its own included).

It is not a fake of Outpost's code: it runs on 127.0.0.1 as a real WebSocket server, so the
real satellite, CLI and app talk to it as they would to daql. Knobs for tests:
``drop_after_sat`` (apply the next ``evt.sat``'s transactions, then close the connection
without replying: the reply lost), ``mute_after_sat`` (apply them and never answer),
``race`` / ``race_after`` (a colleague's publish just before / just after the next request's
transactions are applied; ``race_late``: ``race``'s also pushed to the requester after its
reply), ``events`` (what it holds), ``frames`` (what it received).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

ZERO = "0001-01-01T00:00:00Z"


def _dumps(o: Any) -> str:
    return json.dumps(o, separators=(",", ":"))


def _parse(r: Any) -> float:
    if r in (None, "", ZERO):
        return 0.0
    return datetime.fromisoformat(str(r).replace("Z", "+00:00")).timestamp()


class FakeDaql:
    """``async with FakeDaql(topics) as d:`` serves on ``d.url`` until the block ends."""

    def __init__(self, topics: set[str]):
        self.topics = set(topics)
        self.events: list[dict[str, Any]] = []
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.frames: list[str] = []
        # how many of the next evt.sat requests with transactions to apply and then close on
        self.drop_after_sat = 0
        # ... to apply and then never answer (the connection stays open)
        self.mute_after_sat = 0
        # refuse a transaction silently and answer all the same (as the reviewer's script
        # did; the daql Go server answers an error)
        self.swallow_refused = False
        # transactions a colleague publishes just before the next evt.sat carrying
        # transactions is applied (a publish racing the send: daql has no base check)
        self.race: list[list[dict[str, Any]]] = []
        # the race's publishes also pushed to the requesting connection, after its reply (the
        # Go server pushes every 200 ms: the reply overtakes the push; wire review 13)
        self.race_late = False
        self._late: dict[ServerConnection, list[str]] = {}
        # transactions a colleague publishes just after the next evt.sat carrying
        # transactions is applied and before its reply is built (daql's Go server: another
        # connection's publish between this one's publish and its read): the reply then
        # holds them after the request's own events
        self.race_after: list[list[dict[str, Any]]] = []
        self._conns: dict[ServerConnection, set[str]] = {}
        self._last_ms = 0
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> FakeDaql:
        self._server = await serve(self._handler, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # -- the ledger ----------------------------------------------------------------------------

    def _now_rev(self) -> str:
        ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = ms
        d = datetime.fromtimestamp(ms / 1000, UTC)
        frac = f"{ms % 1000:03d}".rstrip("0")
        return d.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"

    def cur_rev(self) -> str:
        return str(self.events[-1]["rev"]) if self.events else ZERO

    def publish(self, acts: Any) -> tuple[str, list[dict[str, Any]]]:
        """Apply one transaction's actions (all or none), as daql's ledger does."""
        if not acts:
            raise ValueError("no actions")
        rev = self._now_rev()
        st = dict(self.state)
        evs: list[dict[str, Any]] = []
        for a in acts:
            top, key, cmd = a["top"], a.get("key", ""), a["cmd"]
            if top not in self.topics:
                raise ValueError(f"no model found for topic {top}")
            k = (top, key)
            if cmd == "new":
                st[k] = dict(a.get("arg") or {})
            elif cmd == "mod":
                if k not in st:
                    raise ValueError(f"apply mod {top}, {key}: no value found ")
                st[k] = {**st[k], **(a.get("arg") or {})}
            elif cmd == "del":
                if k not in st:
                    raise ValueError(f"apply del {top}, {key}: no value found ")
                del st[k]
            e: dict[str, Any] = {"id": len(self.events) + len(evs) + 1, "rev": rev, "top": top,
                                 "key": key, "cmd": cmd}
            if cmd != "del":
                e["arg"] = a.get("arg")
            evs.append(e)
        self.state = st
        self.events.extend(evs)
        return rev, evs

    def news(self, top: str) -> list[str]:
        """The keys of the ``new`` events of ``top`` it holds, in order (repeats show)."""
        return [e["key"] for e in self.events if e["top"] == top and e["cmd"] == "new"]

    # -- the wire ------------------------------------------------------------------------------

    async def _push(self, src: ServerConnection, rev: str, evs: list[dict[str, Any]]) -> None:
        for ws, tops in list(self._conns.items()):
            mine = [e for e in evs if e["top"] in tops]
            if ws is not src and mine:
                await ws.send("evt.update\n" + _dumps({"rev": rev, "evs": mine}) + "\n")

    @staticmethod
    def _upd(rev: str, evs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"rev": rev, "evs": evs} if evs else {"rev": rev}

    async def _handler(self, ws: ServerConnection) -> None:
        self._conns[ws] = set()
        try:
            async for msg in ws:
                text = msg if isinstance(msg, str) else msg.decode()
                self.frames.append(text)
                head, _, body = text.partition("\n")
                subj, _, tok = head.partition("#")
                if not subj or subj.startswith("_"):
                    await ws.close(1002)
                    return
                hd = f"{subj}#{tok}" if tok else subj
                try:
                    req = json.loads(body) if body.strip() else None
                except ValueError as exc:
                    await ws.send(hd + "\n" + _dumps({"err": str(exc)}))
                    continue
                try:
                    res = await self._answer(ws, subj, req)
                except ValueError as exc:
                    await ws.send(hd + "\n" + _dumps({"err": str(exc)}))
                    continue
                if res is _CLOSE:
                    await ws.close()
                    return
                if res is not _NONE:
                    await ws.send(hd + "\n" + _dumps({"res": res}))
                for late in self._late.pop(ws, []):
                    await ws.send(late)
        finally:
            self._conns.pop(ws, None)

    async def _answer(self, ws: ServerConnection, subj: str, req: Any) -> Any:
        if subj == "evt.stat":
            return {"rev": self.cur_rev(), "mig": "", "on": ZERO, "off": ZERO}
        if subj == "evt.pub":
            if req is None:
                raise ValueError("unexpected end of JSON input")
            rev, evs = self.publish(req.get("acts"))
            await self._push(ws, rev, evs)
            return self._upd(rev, evs)
        if subj == "evt.sat":
            if req is None:
                raise ValueError("unexpected end of JSON input")
            trans = req.get("trans") or []
            # every transaction or none: checked on a copy first
            if trans:
                while self.race:
                    rev, evs = self.publish(self.race.pop(0))
                    await self._push(ws, rev, evs)
                    mine = [e for e in evs if e["top"] in self._conns.get(ws, set())]
                    if self.race_late and mine:
                        self._late.setdefault(ws, []).append(
                            "evt.update\n" + _dumps({"rev": rev, "evs": mine}) + "\n")
            saved = (dict(self.state), list(self.events), self._last_ms)
            done: list[tuple[str, list[dict[str, Any]]]] = []
            try:
                for t in trans:
                    try:
                        done.append(self.publish(t.get("acts")))
                    except ValueError:
                        if not self.swallow_refused:
                            raise
            except ValueError:
                self.state, self.events, self._last_ms = saved
                raise
            for rev, evs in done:
                await self._push(ws, rev, evs)
            if trans:
                while self.race_after:
                    rev, evs = self.publish(self.race_after.pop(0))
                    await self._push(ws, rev, evs)
            if trans and self.drop_after_sat > 0:
                self.drop_after_sat -= 1
                return _CLOSE
            if trans and self.mute_after_sat > 0:
                self.mute_after_sat -= 1
                return _NONE
            self._conns[ws] = set(req.get("tops") or [])
            r = _parse(req.get("rev"))
            evs = [e for e in self.events if e["top"] in self._conns[ws] and _parse(e["rev"]) > r]
            return self._upd(self.cur_rev(), evs)
        if subj == "evt.sub":
            if req is None:
                raise ValueError("unexpected end of JSON input")
            new = set(req.get("tops") or []) - self._conns[ws]
            if not new:
                raise ValueError("no new subscriptions")
            self._conns[ws] |= new
            r = _parse(req.get("rev"))
            evs = [e for e in self.events if e["top"] in new and _parse(e["rev"]) > r]
            return self._upd(self.cur_rev(), evs) if evs else None
        if subj == "evt.unsub":
            self._conns[ws] -= set((req or {}).get("tops") or [])
            return True
        return _NONE  # daql: no reply to an unknown subject (dom.project included)


_NONE = object()
_CLOSE = object()
