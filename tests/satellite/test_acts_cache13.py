"""The queue's process-wide caches of decoded actions and their stored JSON (``_acts_of``,
``acts_json``) are bounded by the text they hold, not by a count of entries: a large import
does not keep every row's actions alive after it returns, and an offline replay of 10,000
transactions still decodes each stored row once."""

from __future__ import annotations

import pytest

from core.model import Action, Cmd, Trans
from core.satellite import queue
from core.satellite.queue import Queue, acts_json

SITE = "field.site"


@pytest.fixture(autouse=True)
def _empty_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts on empty caches (other tests of the process filled them) and leaves
    the module's as they were."""
    monkeypatch.setattr(queue, "_ACTS", {})
    monkeypatch.setattr(queue, "_TEXTS", {})
    monkeypatch.setattr(queue, "_held", 0, raising=False)


def _held() -> int:
    return sum(len(t) for _, t in queue._TEXTS.values())


def test_an_import_of_6_mb_of_actions_keeps_no_more_than_the_budget() -> None:
    note = "n" * 1500
    made = [Trans((Action(SITE, f"w{i}", Cmd.NEW, {"name": f"Site {i}", "notes": note}),),
                  uid=f"u{i}") for i in range(4000)]
    texts = [Queue.encode(t) for t in made]  # as an import queues its rows
    whole = sum(map(len, texts))
    assert whole > 6_000_000
    # before: every one of the 4,000 texts (and its actions) stayed, up to 100,000 entries
    assert _held() <= 4 << 20 < whole, (_held(), whole)
    assert queue._held == _held()
    # the latest stay and are served; a shed one is encoded again by the sender (no splice)
    assert acts_json(made[-1].acts) == texts[-1]
    assert acts_json(made[0].acts) is None
    # the decoded side too: reading the rows back keeps the budget
    for text in texts:
        queue._acts_of(text)
    assert _held() <= 4 << 20 and len(queue._ACTS) < len(texts)
    assert set(queue._ACTS) <= {t for _, t in queue._TEXTS.values()}
    assert queue._held == _held()


def test_a_replay_of_10000_transactions_decodes_each_row_once() -> None:
    """The satellite reads its pending queue after every reply: the second read of 10,000
    rows (bench/sync.py's, ~80 characters each, and a margin) is served from the cache."""
    texts = [Queue.encode(Trans((Action(SITE, f"t{i:06d}", Cmd.NEW,
                                        {"name": f"offline {i}", "lat": 2.5,
                                         "notes": "x" * 100}),), uid=f"u{i}"))
             for i in range(10_000)]
    first = [queue._acts_of(t) for t in texts]
    again = [queue._acts_of("".join(t)) for t in texts]  # equal text read anew from the file
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert all(acts_json(a) == t for a, t in zip(first, texts, strict=True))


def test_many_tiny_transactions_keep_at_most_40000_entries() -> None:
    """Tiny entries cost more in objects than in text (~600 bytes each besides it): their
    count is bounded too (before: 100,000)."""
    made = [Trans((Action(SITE, f"k{i}", Cmd.DEL),), uid=f"u{i}") for i in range(50_000)]
    for t in made:
        Queue.encode(t)
    assert len(queue._TEXTS) <= 40_000 and _held() < 4 << 20
    assert acts_json(made[-1].acts) is not None


def test_actions_are_decoded_ones_only_when_read_back_from_their_text() -> None:
    """``acts_decoded`` (session 16, ``own``): the sync machine builds the events the hub left
    out of its reply from such actions (the very values the hub decoded of the text spliced
    into the request); actions queued from the caller's objects, or whose entry was shed
    (the request then encoded them again), are rebuilt from the text that was sent."""
    t = Trans((Action(SITE, "w1", Cmd.NEW, {"name": "Ridge", "lat": (1, 2)}),), uid="u1")
    text = Queue.encode(t)  # queued by this process: the caller's objects (a tuple here)
    assert acts_json(t.acts) == text and not queue.acts_decoded(t.acts)
    back = queue._acts_of(text)  # read back from the row: decoded from the text
    assert back is not t.acts and back[0].arg == {"name": "Ridge", "lat": [1, 2]}
    assert queue.acts_decoded(back) and acts_json(back) == text
    queue._TEXTS.clear()  # shed: the sender encodes them again, no longer "decoded"
    queue._ACTS.clear()
    assert not queue.acts_decoded(back) and acts_json(back) is None
