"""``evt.sat`` with ``"cont": true`` (ours): a reply starts where the connection's previous
evt.sat reply ended, so a satellite may send the next request before that reply arrived."""

from __future__ import annotations

from typing import Any

import orjson

from core.ledger import MemLedger
from core.schema import Project
from hubserver.service import HubService, Out, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"


def body(out: Out) -> Any:
    assert isinstance(out, Send), out
    return orjson.loads(out.text.partition("\n")[2])


def sat(tok: int, rev: str, *keys: str, cont: bool = True, tops: tuple[str, ...] = ("prod.cat",),
        ) -> str:
    trans = [{"uid": f"u{k}", "acts": [{"top": "prod.cat", "key": k, "cmd": "new",
                                        "arg": {"name": k}}]} for k in keys]
    req: dict[str, Any] = {"rev": rev, "tops": list(tops), "trans": trans, "audits": True}
    if cont:
        req["cont"] = True
    return f"evt.sat#{tok}\n" + orjson.dumps(req).decode()


def reply(hub: HubService, conn: str, text: str) -> Any:
    (r,) = [o for o in hub.handle_sync(conn, text) if isinstance(o, Send)]
    return body(r)["res"]


def keys(res: Any) -> list[str]:
    return [e["key"] for e in res.get("evs", ())]


def test_cont_replies_continue_where_the_last_reply_ended(prod: Project, clock: Clock) -> None:
    hub = HubService(MemLedger(prod), clock)
    hub.connect("S", "sat")
    hub.connect("O", "other")
    first = reply(hub, "S", sat(1, Z, "1"))
    assert keys(first) == ["1"] and first["cont"] is True
    # pipelined: sent with the revision the satellite had before the first reply (Z)
    hub.handle_sync("O", 'evt.pub#1\n{"acts":[{"top":"prod.cat","key":"9","cmd":"new"}]}')
    second = reply(hub, "S", sat(2, Z, "2", "3"))
    assert keys(second) == ["9", "2", "3"]  # nothing of the first reply again, nothing lost
    assert [a["uid"] for a in second["acks"]] == ["u2", "u3"]
    third = reply(hub, "S", sat(3, Z))
    assert keys(third) == [] and third["rev"] == second["rev"]
    # a request from a later revision than where the last reply ended starts there
    assert keys(reply(hub, "S", sat(4, second["rev"], "4"))) == ["4"]


def test_without_cont_or_with_other_topics_the_reply_starts_at_rev(prod: Project,
                                                                   clock: Clock) -> None:
    hub = HubService(MemLedger(prod), clock)
    hub.connect("S", "sat")
    reply(hub, "S", sat(1, Z, "1"))
    res = reply(hub, "S", sat(2, Z, "2", cont=False))
    assert keys(res) == ["1", "2"] and "cont" not in res  # a daql client never sees it
    res = reply(hub, "S", sat(3, Z, "3", tops=("prod.cat", "prod.prod")))
    assert keys(res) == ["1", "2", "3"]  # a new topic: its events from rev, whatever was sent


def test_cont_is_per_connection(prod: Project, clock: Clock) -> None:
    hub = HubService(MemLedger(prod), clock)
    hub.connect("S", "sat")
    reply(hub, "S", sat(1, Z, "1"))
    hub.disconnect("S")
    hub.connect("S", "sat")  # a new connection (same id): nothing was sent on it yet
    assert keys(reply(hub, "S", sat(2, Z, "2"))) == ["1", "2"]
