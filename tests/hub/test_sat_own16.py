"""``evt.sat`` with ``"own": true`` (ours, session 16): the hub leaves the events and audits of
the request's own applied transactions out of its reply (each is its ack with the first event
id), and the client rebuilds them from what it sent (``core.wire.with_own``). The rebuilt
reply must be the full reply, event for event and audit for audit, whatever was sent: a
``new`` the schema's defaults fill, one without ``arg``, keys in any order, ``extra``, a
uid sent twice, refused transactions, other clients' publishes in between, a reply cut by
``lim`` with ``more``; and a request without ``own`` (a daql client, an older satellite)
gets the same bytes as before."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ledger import MemLedger, SqlLedger
from core.ledger.protocols import Ledger
from core.model import Trans
from core.schema import Project, parse_project
from core.wire import SatRes, dec_sat_res, dec_trans, with_own
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"
SCHEMA = {
    "project": {"name": "own"},
    "t": {
        "plain": {"key": "int", "fields": {"a": {"type": "str"}, "b": {"type": "int"},
                                           "c": {"type": "float"}}},
        # a new gets its defaults: the stored event is not the action sent
        "dflt": {"key": "int", "fields": {"a": {"type": "str", "default": "x"},
                                          "b": {"type": "int"}}},
    },
}


@pytest.fixture(scope="module")
def proj() -> Project:
    return parse_project(SCHEMA)


def _reply(hub: HubService, conn: str, text: str) -> Any:
    (r,) = [o for o in hub.handle_sync(conn, text) if isinstance(o, Send)]
    return orjson.loads(r.text.partition("\n")[2])


def _texts(req: dict[str, Any]) -> tuple[tuple[Trans, ...], list[bytes]]:
    """The request's transactions as the satellite holds them, and the JSON each was sent as."""
    texts = [orjson.dumps(t) for t in req["trans"]]
    return tuple(dec_trans(orjson.loads(b)) for b in texts), texts


def _same(a: SatRes, b: SatRes) -> None:
    assert a.rev == b.rev and a.more == b.more and a.rejects == b.rejects
    assert a.evs == b.evs
    # the events' values to the byte: what the replica stores (and their key order)
    assert [orjson.dumps(e.arg) for e in a.evs] == [orjson.dumps(e.arg) for e in b.evs]
    assert a.audits == b.audits
    assert [orjson.dumps(x.extra) for x in a.audits] == [orjson.dumps(x.extra) for x in b.audits]
    assert [(x.uid, x.rev) for x in a.acks] == [(x.uid, x.rev) for x in b.acks]
    assert a.own is None and b.own is None


act = st.one_of(
    st.fixed_dictionaries({"top": st.just("t.plain"), "cmd": st.just("new"),
                           "arg": st.dictionaries(st.sampled_from("abc"), st.none(),
                                                  max_size=3)}),
    st.fixed_dictionaries({"top": st.just("t.dflt"), "cmd": st.just("new"),
                           "arg": st.one_of(st.none(), st.dictionaries(
                               st.sampled_from("ab"), st.none(), max_size=2))}),
    st.fixed_dictionaries({"top": st.just("t.plain"), "cmd": st.sampled_from(["mod", "del"]),
                           "arg": st.dictionaries(st.sampled_from("abc"), st.none(),
                                                  min_size=1, max_size=3)}),
)
VALUES = {"a": st.text("xyé\n", max_size=3), "b": st.integers(-2**63, 2**63 - 1),
          "c": st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                         st.integers(-2**53, 2**53))}


@st.composite
def rounds(draw: st.DrawFn) -> list[list[tuple[str, dict[str, Any]]]]:
    """Rounds of (who, transaction): the satellite "S" or another client "O"."""
    out = []
    n = 0
    for _ in range(draw(st.integers(1, 4))):
        rnd = []
        for _ in range(draw(st.integers(0, 6))):
            acts = []
            for _ in range(draw(st.integers(1, 3))):
                a = dict(draw(act))
                n += 1
                a["key"] = str(draw(st.integers(1, 4)) if a["cmd"] != "new" else n)
                if a["arg"] is not None:
                    a["arg"] = {k: draw(VALUES[k]) for k in a["arg"]}
                    if a["cmd"] == "del":
                        del a["arg"]
                elif a["cmd"] != "new":
                    del a["arg"]
                acts.append(a)
            t: dict[str, Any] = {"acts": acts}
            who = draw(st.sampled_from("SSSO"))
            if who == "S":
                t["uid"] = draw(st.sampled_from([f"u{n}", f"u{n}", "dup"]))
                t["created"] = "2026-11-28T05:00:00.123Z"
                if draw(st.booleans()):
                    t["extra"] = draw(st.sampled_from([{"resolves": "x"}, {}, {"n": [1, 2.5]}]))
            rnd.append((who, t))
        out.append(rnd)
    return out


def _run(ledger: Ledger, script: list[list[tuple[str, dict[str, Any]]]], own: bool,
         lim: int) -> list[tuple[Any, SatRes]]:
    hub = HubService(ledger, Clock())
    hub.connect("S", "sat")
    hub.connect("O", "other")
    rev = Z
    out = []
    for tok, rnd in enumerate(script):
        mine = [t for who, t in rnd if who == "S"]
        for who, t in rnd:
            if who == "O":
                hub.handle_sync("O", "evt.pub#1\n" + orjson.dumps(t).decode())
        req: dict[str, Any] = {"rev": rev, "tops": ["t.dflt", "t.plain"], "trans": mine,
                               "audits": True, "cont": True}
        if lim:
            req["lim"] = lim
        if own:
            req["own"] = True
        while True:
            body = _reply(hub, "S", f"evt.sat#{tok}\n" + orjson.dumps(req).decode())
            if "err" in body:
                break
            raw = body["res"]
            res = dec_sat_res(raw)
            sent, texts = _texts(req)
            got = with_own(res, sent, texts)
            # built from the actions themselves when they are the decoding of what was sent
            # (SyncStore.acts_decoded): the same reply
            _same(got, with_own(res, sent, texts, lambda t: True))
            out.append((raw, got))
            rev = raw["rev"]
            if not raw.get("more"):
                break
            req = {"rev": rev, "tops": req["tops"], "trans": [], "audits": True,
                   "cont": True, **({"lim": lim} if lim else {}), **({"own": True} if own else {})}
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(script=rounds(), lim=st.sampled_from([0, 0, 2, 5]))
def test_a_reply_without_own_transactions_rebuilds_to_the_full_reply(
        proj: Project, script: list[list[tuple[str, dict[str, Any]]]], lim: int) -> None:
    full = _run(MemLedger(proj), script, False, lim)
    own = _run(MemLedger(proj), script, True, lim)
    assert len(full) == len(own)
    for (fr, f), (_, o) in zip(full, own, strict=True):
        assert "own" not in fr
        _same(f, o)


def test_own_transactions_are_left_out_and_others_sent(proj: Project, sql_url: str) -> None:
    for led in (MemLedger(proj), SqlLedger(sql_url, proj)):
        hub = HubService(led, Clock())
        hub.connect("S", "sat")
        hub.connect("O", "other")
        hub.handle_sync("O", 'evt.pub#1\n{"acts":[{"top":"t.plain","key":"9","cmd":"new"}]}')
        trans = [
            {"uid": "u1", "created": "2026-11-28T05:00:00.001Z",
             "acts": [{"top": "t.plain", "key": "1", "cmd": "new", "arg": {"b": 1, "a": "x"}},
                      {"top": "t.plain", "key": "9", "cmd": "del"}]},
            # the schema adds a's default: the event is not the action, sent in full
            {"uid": "u2", "acts": [{"top": "t.dflt", "key": "1", "cmd": "new",
                                    "arg": {"b": 2}}]},
            {"uid": "u3", "extra": {"resolves": "u0"},
             "acts": [{"top": "t.plain", "key": "1", "cmd": "mod", "arg": {"c": 2.5}}]},
            # refused (no such record): rejected, nothing left out
            {"uid": "u4", "acts": [{"top": "t.plain", "key": "7", "cmd": "mod",
                                    "arg": {"c": 1.0}}]},
        ]
        req = {"rev": Z, "tops": ["t.dflt", "t.plain"], "trans": trans, "audits": True,
               "own": True}
        raw = _reply(hub, "S", "evt.sat#1\n" + orjson.dumps(req).decode())["res"]
        assert [e["key"] for e in raw["evs"]] == ["9", "1"]  # the other client's, u2's
        assert [a.get("uid", "") for a in raw["audits"]] == ["", "u2"]
        assert raw["own"] == {"usr": "sat", "ids": [2, 0, 5]}
        assert [a["uid"] for a in raw["acks"]] == ["u1", "u2", "u3"]
        assert [r["uid"] for r in raw["rejects"]] == ["u4"]
        sent, texts = _texts(req)
        res = with_own(dec_sat_res(raw), sent, texts)
        assert [(e.id, e.top, e.key, e.cmd.value, e.arg) for e in res.evs] == [
            (1, "t.plain", "9", "new", {}), (2, "t.plain", "1", "new", {"b": 1, "a": "x"}),
            (3, "t.plain", "9", "del", None), (4, "t.dflt", "1", "new", {"a": "x", "b": 2}),
            (5, "t.plain", "1", "mod", {"c": 2.5})]
        assert [(a.uid, a.usr, a.extra) for a in res.audits] == [
            ("", "other", None), ("u1", "sat", None), ("u2", "sat", None),
            ("u3", "sat", {"resolves": "u0"})]
        # a resend of an applied uid: acked with its first revision, its events come in full
        # (the replica may hold them already, or they are in this reply's range)
        req = {"rev": Z, "tops": ["t.dflt", "t.plain"], "trans": trans[:1], "audits": True,
               "own": True}
        hub.disconnect("S")
        hub.connect("S", "sat")
        raw = _reply(hub, "S", "evt.sat#2\n" + orjson.dumps(req).decode())["res"]
        assert "own" not in raw and len(raw["evs"]) == 5
        led.close()


def test_without_own_or_audits_the_reply_is_as_before(proj: Project) -> None:
    def run(**extra: Any) -> list[str]:
        hub = HubService(MemLedger(proj), Clock())
        hub.connect("S", "sat")
        req = {"rev": Z, "tops": ["t.plain"], "trans": [
            {"uid": "u1", "acts": [{"top": "t.plain", "key": "1", "cmd": "new",
                                    "arg": {"a": "x"}}]}], **extra}
        return [o.text for o in hub.handle_sync("S", "evt.sat#1\n" + orjson.dumps(req).decode())
                if isinstance(o, Send)]

    assert run() == run(own=True)  # no audits (a daql client's request shape): ignored
    assert run(audits=True) != run(audits=True, own=True)
    assert '"own"' not in run(audits=True)[0]
