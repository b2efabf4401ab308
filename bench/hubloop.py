"""Hub benchmark: the event loop's service work per publish, for instruction counts.

The hub's event-loop thread does, per ``evt.pub`` of ``bench/hub.py``'s rate clients,
``HubService.handle`` (frame split, JSON, the typed transaction, the token bucket, the job)
and, after the commit, ``HubService.finish`` (audit, fan-out, the reply frame), then writes
the frame. This script runs exactly that, without sockets or threads, on ``--n`` frames as
the 10 rate clients send them (one ``new`` of ``field.site`` with a name, 10 interleaved
key streams), in groups of ``--group`` published with ``SqlLedger.publish_many``
(``synchronous=OFF``, a file in ``/dev/shm`` when it exists) between ``handle`` and
``finish``:

- ``--mode pub``: only the ledger's ``publish_many`` of the same transactions (decoded
  beforehand, as in every mode);
- ``--mode handle``: ``handle`` of each frame, then ``publish_many`` of the jobs' items;
- ``--mode full``: as ``handle``, then ``finish`` of each job and the reply's frame bytes
  (what ``Peer.write`` sends).

With ``--subs N`` the topic has ``N`` subscribers: ``full`` then also fans each publish
out and builds each subscriber's ``evt.update`` frame (``take_push``), the push path of
``bench/hub.py``'s latency figures.

The loop's share per publish is ``full`` minus ``pub``; ``handle`` minus ``pub`` is the
request's part, ``full`` minus ``handle`` the reply's. The deterministic figure on a shared
machine is user-space instructions (docs/benchmarks.md, "Hub: durable publish rate,
session 9")::

    for m in pub handle full; do PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no \\
        --cachegrind-out-file=/dev/null .venv/bin/python bench/hubloop.py --mode $m --n 2000
    done   # (full - pub) / 2000: the loop's service instructions per publish

It also prints the thread CPU per transaction of the run (noisy: read the instructions).
Asyncio's and websockets' share of the loop thread (reading, the frame parse, writing) is
not here: ``bench/hubws.py`` counts the loop thread's whole work per publish (callgrind, per
thread), and ``bench/hub.py`` prints its CPU per transaction.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger import PROJECT  # noqa: E402

from core.ledger.sql import SqlLedger  # noqa: E402
from core.wire import dec_trans, decode_body, parse_frame  # noqa: E402
from hubserver.limits import Limits  # noqa: E402
from hubserver.outputs import Flush  # noqa: E402
from hubserver.service import HubService, Send  # noqa: E402


def frames_of(n: int, clients: int = 10, seed: int = 1) -> tuple[list[str], list[str]]:
    """``n`` ``evt.pub`` frames as bench/hub.py's rate clients send them, and the
    connection each comes from."""
    rng = random.Random(seed)
    counts = [0] * clients
    frames: list[str] = []
    conns: list[str] = []
    for t in range(n):
        i = rng.randrange(clients)
        key = f"rate0-{i}-{counts[i]}"
        counts[i] += 1
        act = {"top": "field.site", "key": key, "cmd": "new", "arg": {"name": "bench " + key}}
        frames.append(f"evt.pub#{t}\n" + orjson.dumps({"acts": [act]}).decode())
        conns.append(f"c{i}")
    return frames, conns


def frame_bytes(text: str | bytes) -> int:
    """The size of ``text`` as ``Peer.write`` sends it (header and UTF-8 payload)."""
    try:  # a str (every reply here); no type test per reply: this bench counts instructions
        data = text.encode()  # type: ignore[union-attr]
    except AttributeError:  # bytes (an evt.sat reply's Send.data)
        data = text  # type: ignore[assignment]
    head = bytes((0x81, len(data))) if len(data) < 126 else \
        b"\x81\x7e" + len(data).to_bytes(2, "big")
    return len(head + data)


def run(mode: str, n: int, group: int, subs: int = 0) -> None:
    frames, conns = frames_of(n)
    pre = [(dec_trans(decode_body(parse_frame(f)), "evt.pub"), "anonymous") for f in frames]
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as d:
        led = SqlLedger(f"sqlite:///{d}/hub.db", PROJECT, synchronous="OFF")
        svc = HubService(led, limits=Limits(rate=1e9, burst=1e9))
        for i in range(10):
            svc.connect(f"c{i}", "anonymous", "writer")
        for i in range(subs):  # subscribers of the topic (bench/hub.py's latency clients)
            svc.connect(f"s{i}", "anonymous", "reader")
            svc.handle(f"s{i}", 'evt.sub#1\n{"rev":"0001-01-01T00:00:00Z","tops":["field.site"]}')
        clock = svc.clock
        sent = pushes = 0
        t0 = time.thread_time()
        for g in range(0, n, group):
            if mode == "pub":
                led.publish_many(pre[g:g + group], clock())
                continue
            jobs = []
            for k in range(g, min(n, g + group)):
                job = svc.handle(conns[k], frames[k])[1]
                assert job is not None
                jobs.append(job)
            res = led.publish_many([it for j in jobs for it in j.items], clock())
            if mode != "full":
                continue
            for j, r in zip(jobs, res, strict=True):
                for o in svc.finish(j, [r]):
                    if isinstance(o, Send):  # Peer.write's frame: header and text
                        sent += frame_bytes(o.data)
                    elif isinstance(o, Flush):  # a push: the hub takes it when it sends
                        text = svc.take_push(o.conn)
                        if text is not None:
                            sent += frame_bytes(text)
                            pushes += 1
        cpu = time.thread_time() - t0
        led.close()
    print(f"mode {mode}: {n} publishes in groups of {group}, thread CPU "
          f"{cpu / max(n, 1) * 1e6:.1f} us per publish; {sent} reply bytes, {pushes} pushes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    ap.add_argument("--mode", choices=("pub", "handle", "full"), default="full")
    ap.add_argument("--n", type=int, default=2000, help="publishes")
    ap.add_argument("--group", type=int, default=4, help="transactions per commit")
    ap.add_argument("--subs", type=int, default=0, help="subscribers of the topic (each "
                    "publish is then also pushed to them: bench/hub.py's latency at 10)")
    args = ap.parse_args()
    run(args.mode, args.n, args.group, args.subs)


if __name__ == "__main__":
    main()
