"""A daql client's ``evt.sat`` (no uids) whose transactions the hub refuses gets an error
reply, as daql answers, and the hub logs it (wire review 12, session 12: the reply was a plain
``res``, nothing applied and nothing said, so the client took its edits for applied). A real
hub, websockets on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest
from websockets.asyncio.client import connect

from hubserver.server import Hub
from tests.hub.conftest import recv_json, request

Z = "0001-01-01T00:00:00Z"


def act(key: str, cmd: str, name: str) -> dict[str, object]:
    return {"top": "prod.cat", "key": key, "cmd": cmd, "arg": {"name": name}}


async def test_refused_uidless_transactions_get_an_error_reply(
        hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    async with connect(hub.url) as d, connect(hub.url) as other:
        assert await request(other, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == {"res": None}
        ok = await request(d, "evt.sat", {"rev": Z, "tops": ["prod.cat"],
                                          "trans": [{"acts": [act("1", "new", "a")]}]})
        assert "err" not in ok and [e["key"] for e in ok["res"]["evs"]] == ["1"]
        rev = ok["res"]["rev"]
        _, push = await recv_json(other)
        # a mod of a missing record, then a new one that is stored
        r = await request(d, "evt.sat", {"rev": rev, "tops": ["prod.cat"], "trans": [
            {"acts": [act("99", "mod", "lost")]}, {"acts": [act("2", "new", "b")]}]})
        assert "res" not in r, r
        assert "refused 1 of the request's 2 transactions" in r["err"], r
        assert "transaction 1 (mod prod.cat 99)" in r["err"], r
        assert "the other 1 was stored" in r["err"], r
        head, push = await recv_json(other)  # the stored one is published all the same
        assert head == "evt.update" and [e["key"] for e in push["evs"]] == ["2"]
        # a mod over a stale base
        r = await request(d, "evt.sat", {"rev": push["rev"], "tops": ["prod.cat"], "trans": [
            {"base": "2026-11-27T00:00:00Z", "acts": [act("1", "mod", "stale")]}]})
        assert "res" not in r and "refused 1 of the request's 1" in r["err"], r
        assert "were stored" not in r["err"], r
        # a conflict, worded for a daql client: what collided and its fix, not Outpost's
        # commands (session 12's note: it named `outpost resolve UID`, the Conflicts view)
        assert "transaction 1 (mod prod.cat 1): conflict: " in r["err"], r
        assert r["err"].endswith("Update the records from the hub's events and make those "
                                 "edits again"), r
        for ours in ("outpost", "Conflicts view", "UID", "--keep"):
            assert ours not in r["err"], r
        assert r["conflicts"] and r["conflicts"][0]["key"] == "1", r
        # the client's next evt.sat catches up with what was stored, nothing of the refused
        r = await request(d, "evt.sat", {"rev": rev, "tops": ["prod.cat"], "trans": []})
        assert [(e["key"], e["arg"]) for e in r["res"]["evs"]] == [("2", {"name": "b"})]
        # an Outpost satellite's (uids) are rejects in a res, as before
        r = await request(d, "evt.sat", {"rev": r["res"]["rev"], "tops": ["prod.cat"],
                                         "trans": [{"uid": "u1", "acts": [act("98", "mod", "x")]}]})
        assert [x["uid"] for x in r["res"]["rejects"]] == ["u1"] and "err" not in r
    said = [x.getMessage() for x in caplog.records if "uid-less" in x.getMessage()]
    assert len(said) == 2 and "transaction 1" in said[0], said


async def test_a_mixed_request_says_counts_that_add_up(hub: Hub) -> None:
    """An ``evt.sat`` mixing transactions with and without uids (wire review 13, finding 4):
    the error said "refused 1 of 3 … the other 1 were stored" while 2 were refused (one of
    them with a uid, named in the rejects). Now every transaction is counted once."""
    async with connect(hub.url) as d:
        ok = await request(d, "evt.sat", {"rev": Z, "tops": ["prod.cat"],
                                          "trans": [{"acts": [act("1", "new", "a")]}]})
        rev = ok["res"]["rev"]
        r = await request(d, "evt.sat", {"rev": rev, "tops": ["prod.cat"], "trans": [
            {"acts": [act("99", "mod", "lost")]},
            {"uid": "u1", "acts": [act("98", "mod", "x")]},
            {"uid": "u2", "acts": [act("2", "new", "b")]}]})
        assert "res" not in r, r
        err = r["err"]
        assert "refused 1 of the request's 3 transactions without a uid" in err, err
        assert "1 other with a uid was refused too (named in this reply's rejects)" in err, err
        assert "the remaining 1 was stored" in err, err
        assert "the other 1" not in err, err
        assert [x["uid"] for x in r["rejects"]] == ["u1"], r
        assert [x["uid"] for x in r["acks"]] == ["u2"], r
        # two stored: four in all, every transaction counted once
        r = await request(d, "evt.sat", {"rev": Z, "tops": ["prod.cat"],
                                         "trans": [{"uid": "u3", "acts": [act("3", "new", "c")]},
                                                   {"acts": [act("4", "new", "d")]},
                                                   {"acts": [act("97", "del", "-")]}]})
        err = r["err"]
        assert "refused 1 of the request's 3 transactions without a uid" in err, err
        assert "with a uid" not in err.split("transactions without a uid", 1)[1], err
        assert "the other 2 were stored" in err, err
