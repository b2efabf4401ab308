"""The SQL ledger's publish path: one batch of transactions, one database transaction.

:class:`SqlLedger <core.ledger.sql.SqlLedger>` opens the write transaction and hands its DBAPI
connection here. :func:`publish_batch` then

1. reads what the rules need for the whole batch: the revision and last event id (after the
   write lock on PostgreSQL), the uids already applied, the state of every touched record,
   and the events after the oldest base where a transaction may conflict — in ONE statement
   (:class:`_SqRead` on SQLite for batches of up to :data:`CHUNK` parameters, one statement
   per table and topic beyond; :class:`_PgRead` on PostgreSQL);
2. plans every transaction in order (:func:`core.ledger.batch.plan_batch`, no storage: a
   rejected transaction changes nothing, so no SAVEPOINT is needed);
3. writes the events, audits and uids with one statement each (a multi-row ``INSERT`` up to
   :data:`_MULTI_ROWS` rows, else ``executemany``) and the final state of every touched
   record with one upsert (and one delete) per topic on SQLite: a group commit of up to 64
   one-action transactions runs seven statements (BEGIN, the read, four inserts, COMMIT),
   each of which releases the GIL for its step and takes it back; on PostgreSQL all of it and
   the ``pg_notify`` of the new revision in one statement (:func:`_write_pg`). The revision
   itself is not written: the audit row and the events carry it;

all before the commit. On PostgreSQL the reads go out as one pipeline (one round trip,
BEGIN and the lock first: READ COMMITTED gives every later statement a snapshot taken after the
lock is granted, so the previous publish's commit is seen) and the writes plus COMMIT as
another: two round trips and five statements per publish (BEGIN, the lock, one read of the
revision, uids, states and later events; one write statement, COMMIT).

Any storage error propagates (the caller rolls back, nothing of the batch is stored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import BigInteger, Boolean, Double, Integer

from core.ledger.batch import BatchPlan, batch_reads, later_wanted, plan_batch
from core.ledger.protocols import PubResult
from core.ledger.rules import Later, uid_clash
from core.ledger.tables import HotSql, LedgerTables, dumps, loads
from core.model import Cmd, Event, Sig, Trans
from core.revision import Rev
from core.schema import Project

__all__ = ["CHUNK", "chunks", "event_of", "event_rows", "key_entries", "publish_batch"]

CHUNK = 500
"""Keys per ``IN (...)`` list (SQLite allows 999 parameters per statement by default)."""

_ALL = 1 << 62  # a revision after every other: "assume every base may be behind"


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most :data:`CHUNK`."""
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def event_of(row: Any) -> Event:
    """The Event of an ``(id, rev, top, key, cmd, arg)`` row."""
    return Event(int(row[0]), int(row[1]), row[2], row[3], Cmd(row[4]),
                 None if row[5] is None else loads(row[5]))


class _Reads:
    """The batch's read statements; on PostgreSQL all are sent before any result is read."""

    def __init__(self, dbapi: Any, hot: HotSql, tables: LedgerTables):
        self.dbapi = dbapi
        self.hot = hot
        self.tables = tables
        self.states: list[tuple[str, Any]] = []
        self.uids: list[Any] = []
        self.later: list[tuple[str, Any]] = []

    def run(self, sql: str, params: Any = ()) -> Any:
        cur = self.dbapi.cursor()
        cur.execute(sql, params)
        return cur

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            self.run(sql, rows[0])
        elif rows:
            self.dbapi.cursor().executemany(sql, rows)

    def ask_uids(self, uids: Sequence[str]) -> None:
        hot = self.hot
        for part in chunks(uids):
            self.uids.append(self.run(hot.by_keys(hot.find_uids, len(part)),
                                      hot.in_params(part)))

    def ask_states(self, by_top: dict[str, list[str]]) -> None:
        hot = self.hot
        for top, keys in by_top.items():
            if top not in self.tables.states:
                continue  # plan() rejects the unknown topic with a clear message
            for part in chunks(keys):
                sql = hot.by_keys(hot.select_state[top], len(part))
                self.states.append((top, self.run(sql, hot.in_params(part))))

    def ask_later(self, wanted: dict[str, tuple[Rev, list[str]]]) -> None:
        hot = self.hot
        for top, (base, keys) in wanted.items():
            if top not in self.tables.states:
                continue
            for part in chunks(keys):
                self.later.append((top, self.run(hot.later_sql(len(part), top),
                                                 hot.later_params(top, base, part))))

    def applied(self) -> dict[str, Rev]:
        return {r[0]: int(r[1]) for cur in self.uids for r in cur.fetchall()}

    def current(self) -> dict[Sig, dict[str, Any] | None]:
        out: dict[Sig, dict[str, Any] | None] = {}
        for top, cur in self.states:
            st = self.tables.states[top]
            for row in cur.fetchall():
                out[Sig(top, row[0])] = st.values(row)
        return out

    def events_after(self) -> dict[Sig, list[Later]]:
        out: dict[Sig, list[Later]] = {}
        for top, cur in self.later:
            for r in cur.fetchall():
                out.setdefault(Sig(top, r[3]), []).append(Later(event_of(r), r[6] or ""))
        return out


_PG_READ_MAX_TOPICS = 80
"""Topics (state plus later-event reads) one PostgreSQL read statement may carry: each is
an argument of ``json_build_array``, which takes at most 100."""


class _PgRead:
    """PostgreSQL: every read of a batch but the lock in ONE statement.

    The revision and last event id, the applied uids, the state of the touched records and
    the later events per topic come back as one JSON document (``json_build_array`` of
    ``json_agg`` sub-selects, each key looked up by an index probe as in
    :meth:`HotSql.by_keys`), so a publish sends BEGIN, the lock and this statement in its read
    pipeline instead of five statements: each statement costs psycopg about 0.1 ms of client
    CPU. Values survive JSON unchanged (text, bigint, boolean; a double is selected as text,
    which PostgreSQL prints as the shortest text that reads back to the same double, ``-0``
    for ``-0.0``: a JSON number ``-0`` would read back as the integer 0).
    """

    def __init__(self, cur: Any, tables: LedgerTables, stops: tuple[str, ...],
                 ltops: tuple[str, ...]):
        self.cur, self.tables, self.stops, self.ltops = cur, tables, stops, ltops

    @classmethod
    def ask(cls, reads: _Reads, uids: list[str], by_top: dict[str, list[str]],
            wanted: dict[str, tuple[Rev, list[str]]]) -> _PgRead | None:
        """Send the statement (in the caller's pipeline); None when it would be too wide."""
        states = reads.tables.states
        stops = tuple(t for t in by_top if t in states)  # plan() rejects unknown topics
        ltops = tuple(t for t in wanted if t in states)
        if len(stops) + len(ltops) > _PG_READ_MAX_TOPICS:
            return None
        hot = reads.hot
        sql = hot.cache.get(("pg_read", stops, ltops))
        if sql is None:
            sql = _pg_read_sql(hot, stops, ltops)
            if len(hot.cache) < 10_000:  # topic combinations vary: keep the cache bounded
                hot.cache[("pg_read", stops, ltops)] = sql
        params: list[Any] = [uids]
        params.extend(by_top[t] for t in stops)
        for t in ltops:
            base, keys = wanted[t]
            params.extend((keys, t, base))
        return cls(reads.run(sql, params), reads.tables, stops, ltops)

    def result(self) -> tuple[Rev, int, dict[str, Rev], dict[Sig, dict[str, Any] | None],
                              dict[Sig, list[Later]]]:
        doc = loads(self.cur.fetchone()[0])
        applied = {u: int(r) for u, r in doc[2] or ()}
        states: dict[Sig, dict[str, Any] | None] = {}
        for top, objs in zip(self.stops, doc[3:3 + len(self.stops)], strict=True):
            st = self.tables.states[top]
            cols = [c.name for c in st.table.columns]
            for o in objs or ():
                # doubles come as text (json_state: -0 keeps its sign); values() reads them
                states[Sig(top, o["key"])] = st.values([o[c] for c in cols])
        later: dict[Sig, list[Later]] = {}
        for top, evs in zip(self.ltops, doc[3 + len(self.stops):], strict=True):
            for r in evs or ():
                later.setdefault(Sig(top, r[3]), []).append(Later(event_of(r), r[6] or ""))
        return int(doc[0]), int(doc[1]), applied, states, later


class _SqRead:
    """SQLite: every read of a small batch in ONE statement (a ``UNION ALL`` of tagged rows).

    The revision and last event id, the applied uids, the state of the touched records and
    the later events per topic come back as rows of one compound select, each tagged with
    its kind and topic and padded with NULLs to one width. Up to :data:`_ARM_KEYS` keys of
    a kind are looked up in one arm each (``key = ?``), more in one ``IN (?, ...)`` arm
    (SQLite builds a temporary index of an ``IN`` list first: for five keys the arms cost
    about 5 µs less). Three statements became one: for the hub's small group commits that
    took the reads from about 29 to 11 µs of the writer thread's CPU for one transaction and
    49 to 27 µs for five (the statements' own work, not only Python's), and two GIL
    hand-offs fewer. Values come back as stored (doubles exact). The text depends on the
    batch's topics and key counts: statements are cached per shape (bounded), and only
    batches of up to :data:`CHUNK` parameters and :data:`_MAX_ARMS` arms take this path.
    """

    def __init__(self, cur: Any, tables: LedgerTables, stops: tuple[str, ...],
                 ltops: tuple[str, ...]):
        self.cur, self.tables, self.stops, self.ltops = cur, tables, stops, ltops

    @classmethod
    def ask(cls, reads: _Reads, uids: list[str], by_top: dict[str, list[str]],
            wanted: dict[str, tuple[Rev, list[str]]]) -> _SqRead | None:
        """Run the statement; None when the batch is too big for one."""
        states = reads.tables.states
        # plan() rejects unknown topics; the shape: topic and key count of every arm group
        n = len(uids)
        arms = 1 + _arms(n)
        skeys = []
        for t, keys in by_top.items():
            if t in states:
                skeys.append((t, len(keys)))
                n += len(keys)
                arms += _arms(len(keys))
        lkeys = []
        for t, (_base, keys) in wanted.items():
            if t in states:
                lkeys.append((t, len(keys)))
                n += 3 * len(keys)
                arms += _arms(len(keys))
        if n > CHUNK or arms > _MAX_ARMS or len(skeys) + len(lkeys) > _PG_READ_MAX_TOPICS:
            return None
        shape = ("sq_read", len(uids), tuple(skeys), tuple(lkeys))
        hot = reads.hot
        sql = hot.cache.get(shape)
        if sql is None:
            sql = _sq_read_sql(hot, reads.tables, shape)
            if len(hot.cache) < 10_000:  # shapes vary: keep the cache bounded
                hot.cache[shape] = sql
        params: list[Any] = list(uids)
        for t, _n in skeys:
            params.extend(by_top[t])
        for t, n_keys in lkeys:
            base, keys = wanted[t]
            if n_keys > _ARM_KEYS:
                params.append(t)
                params.append(base)
                params.extend(keys)
            else:
                for k in keys:
                    params.append(t)
                    params.append(base)
                    params.append(k)
        stops = tuple(t for t, _n in skeys)
        ltops = tuple(t for t, _n in lkeys)
        return cls(reads.run(sql, params), reads.tables, stops, ltops)

    def result(self) -> tuple[Rev, int, dict[str, Rev], dict[Sig, dict[str, Any] | None],
                              dict[Sig, list[Later]]]:
        last_rev = last_id = 0
        applied: dict[str, Rev] = {}
        states: dict[Sig, dict[str, Any] | None] = {}
        later: dict[Sig, list[Later]] = {}
        for r in self.cur.fetchall():
            kind = r[0]
            if kind == 0:
                last_rev, last_id = int(r[2]), int(r[3])
            elif kind == 1:
                applied[r[2]] = int(r[3])
            elif kind == 2:
                top = self.stops[r[1]]
                states[Sig(top, r[2])] = self.tables.states[top].values(r[2:])
            else:
                later.setdefault(Sig(self.ltops[r[1]], r[5]), []).append(
                    Later(event_of(r[2:]), r[8] or ""))
        for evs in later.values():  # (rev, id) order per record, whatever the plan's order
            if len(evs) > 1:
                evs.sort(key=_ev_order)
        return last_rev, last_id, applied, states, later


_ARM_KEYS = 8
""":class:`_SqRead`: up to this many keys of a kind get one ``key = ?`` arm each."""

_MAX_ARMS = 400
""":class:`_SqRead`: the most arms one statement may have (SQLite refuses a compound select of
more than 500: "too many terms in compound SELECT"); a batch needing more reads table by
table."""


def _arms(n: int) -> int:
    """The arms of :class:`_SqRead` that look ``n`` keys of a kind up."""
    return n if n <= _ARM_KEYS else (1 if n else 0)


def _ev_order(x: Later) -> tuple[Rev, int]:
    return x.ev.rev, x.ev.id


def _sq_read_sql(hot: HotSql, tables: LedgerTables, shape: tuple[Any, ...]) -> str:
    """The compound select of :class:`_SqRead`: rows of ``kind, topic index, values...``."""
    _, n_uids, stops, ltops = shape
    width = max([7, *(len(tables.states[t].table.columns) for t, _ in stops)])

    def pad(n: int) -> str:
        return ", NULL" * (width - n)

    def arms(select: str, n: int) -> list[str]:  # select ends with "WHERE <column>"
        if n > _ARM_KEYS:
            return [select + hot.in_list(n)]
        return [select + " = ?"] * n

    out = [f"SELECT 0, NULL, mr.rev, mr.last_id{pad(2)} FROM ({hot.read_meta}) mr"]
    if n_uids:
        out += arms(f"SELECT 1, NULL, uid, rev{pad(2)} FROM evt_uid WHERE uid", n_uids)
    for i, (top, n) in enumerate(stops):
        head, _, rest = hot.select_state[top].partition("SELECT ")[2].partition(" FROM ")
        cols = len(tables.states[top].table.columns)
        out += arms(f"SELECT 2, {i}, {head}{pad(cols)} FROM {rest}", n)
    for i, (top, n) in enumerate(ltops):
        rest = hot.later_from(top).partition(" FROM ")[2]  # by-record: through the entries
        out += arms(f"SELECT 3, {i}, e.id, e.rev, e.top, e.key, e.cmd, e.arg, a.usr{pad(7)} "
                    f"FROM {rest}", n)
    return " UNION ALL ".join(out)


def _pg_read_sql(hot: HotSql, stops: tuple[str, ...], ltops: tuple[str, ...]) -> str:
    probe = "FROM unnest(%s::text[]) AS k(k) CROSS JOIN LATERAL"
    parts = ["mr.rev", "mr.last_id",
             f"(SELECT json_agg(json_build_array(u.uid, u.rev)) {probe} "
             "(SELECT uid, rev FROM evt_uid WHERE uid = k.k OFFSET 0) u)"]
    for top in stops:
        # the row's alias starts with "_", which no field name can (a field named like the
        # alias would make json_agg aggregate that column instead of the row)
        parts.append(f'(SELECT json_agg("_row") {probe} ({hot.json_state[top]} = k.k '
                     'OFFSET 0) "_row")')
    for _top in ltops:
        parts.append(
            "(SELECT json_agg(json_build_array(e.id, e.rev, e.top, e.key, e.cmd, e.arg, a.usr)"
            f" ORDER BY e.rev, e.id) {probe} (SELECT id, rev, top, key, cmd, arg FROM evt_event"
            " WHERE top = %s AND rev > %s AND key = k.k OFFSET 0) e"
            " LEFT JOIN evt_audit a ON a.rev = e.rev)")
    return f"SELECT json_build_array({', '.join(parts)})::text FROM ({hot.read_meta}) mr"


def _pipeline(dbapi: Any, pg: bool) -> AbstractContextManager[Any]:
    return dbapi.pipeline() if pg else nullcontext()


def publish_batch(dbapi: Any, *, project: Project, tables: LedgerTables, hot: HotSql,
                  items: Sequence[tuple[Trans, str]], clock: Callable[[], Rev],
                  lock_key: int, channel: str) -> list[PubResult | Exception]:
    """Publish ``items`` inside the caller's open write transaction on ``dbapi``.

    Args:
        dbapi: the DBAPI connection (sqlite3 after ``BEGIN IMMEDIATE``; psycopg 3 inside a
            READ COMMITTED transaction, not yet holding the lock: it is taken here).
        project, tables, hot: the ledger's schema, tables and driver SQL.
        items: ``(transaction, user)`` pairs in publish order.
        clock: the clock reading per transaction (``now`` or the wall clock).
        lock_key, channel: PostgreSQL's advisory lock key and NOTIFY channel.

    Returns:
        Per transaction its PubResult (``dup=True`` for a uid applied before) or the
        ValidationError / ConflictError that rejected it. The caller commits on SQLite; on
        PostgreSQL the commit is sent at the end of the write pipeline (the caller's commit
        then has nothing to do).

    Raises:
        sqlite3.Error, psycopg.Error: the database failed; the caller rolls back.
    """
    pg = hot.pg
    reads = _Reads(dbapi, hot, tables)
    # the revision is not known before the read: ask for the events after every base; a base
    # that turns out current has none, so nothing extra comes back
    uids, by_top, wanted = batch_reads(items, _ALL)
    # PostgreSQL, the publisher's connection in autocommit mode: BEGIN and COMMIT are sent in
    # the pipelines (psycopg waits for its own BEGIN and COMMIT in a round trip of their own)
    explicit = pg and bool(getattr(dbapi, "autocommit", False))
    one: _PgRead | None = None
    sq: _SqRead | None = None
    with _pipeline(dbapi, pg) as pipe:
        if explicit:
            reads.run("BEGIN ISOLATION LEVEL READ COMMITTED")
        if pg:
            reads.run("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            # everything else after the lock (its own snapshot)
            one = _PgRead.ask(reads, uids, by_top, wanted)
            if one is None:  # too many topics for one statement: one read per table
                meta = reads.run(hot.meta_uids, (uids,))
        else:
            # one statement for everything; None for a batch too big for one
            sq = _SqRead.ask(reads, uids, by_top, wanted)
            if sq is None:
                meta = reads.run(hot.read_meta)
                rows = [meta.fetchone()]
                wanted = later_wanted(items, int(rows[0][0]))
                reads.ask_uids(uids)
        if one is None and sq is None:
            reads.ask_states(by_top)
            reads.ask_later(wanted)
        if pipe is not None:
            pipe.sync()
        if one is not None:
            last_rev, last_id, applied, states, later = one.result()
        elif sq is not None:
            last_rev, last_id, applied, states, later = sq.result()
        else:
            if pg:
                rows = meta.fetchall()
            row = rows[0]
            applied = reads.applied() if reads.uids else {
                r[2]: int(r[3]) for r in rows if len(r) > 2 and r[2] is not None}
            last_rev, last_id = int(row[0]), int(row[1])
            states, later = reads.current(), reads.events_after()
        bp = plan_batch(project, items, last_rev=last_rev, last_id=last_id,
                        states=states, later=later, applied=applied, clock=clock)
        # the events of each duplicate's first publish: read now on SQLite (a statement
        # left open per duplicate made each next one slower: 1,000 resent uids took 46 s),
        # after the pipeline on PostgreSQL (every read is sent before any result is read)
        # (and the user of its audit row: a uid resent by another user, or with other
        # actions, is rejected, not acknowledged: rules.uid_clash)
        dup_cur: dict[int, Any] = {
            i: ((reads.run(hot.events_at, (rev,)), reads.run(hot.usr_at, (rev,))) if pg else
                (reads.run(hot.events_at, (rev,)).fetchall(),
                 reads.run(hot.usr_at, (rev,)).fetchall()))
            for i, rev in bp.dup_of.items()}
        if bp.changed:
            if pg:
                _write_pg(reads, hot, tables, bp, channel)
            else:
                _write(reads, hot, tables, bp)
        if explicit:
            # COMMIT goes out with the writes and the pipeline's closing Sync: one round trip
            # for both (the caller's commit is then a no-op); the lock is held until it is done
            reads.run("COMMIT")
        elif pipe is not None:
            dbapi.commit()
    if not bp.dup_of:  # no None left in the results
        return bp.results  # type: ignore[return-value]
    out: list[PubResult | Exception] = []
    for i, r in enumerate(bp.results):
        if r is None:
            got, who = dup_cur[i]
            evs = tuple(event_of(x) for x in (got.fetchall() if pg else got))
            rows = who.fetchall() if pg else who
            t, usr = items[i]
            out.append(uid_clash(project, t, usr, evs, rows[0][0] if rows else None)
                       or PubResult(bp.dup_of[i], evs, dup=True))
        else:
            out.append(r)
    return out


def event_rows(evs: Sequence[Event]) -> list[tuple[Any, ...]]:
    """Driver rows for ``evt_event``."""
    # the plain text of the StrEnum (drivers get a str, never the Enum: sqlite3 would send
    # a str subclass through its adapter protocol); a dict lookup costs less than str()
    text = _CMD_TEXT
    return [(e.id, e.rev, e.top, e.key, text[e.cmd], None if e.arg is None else dumps(e.arg))
            for e in evs]


_CMD_TEXT: dict[str, str] = {c: c.value for c in Cmd}
"""Each command's text (a plain str) by command (a ``Cmd`` or its text: same hash)."""


def _states_by_top(tables: LedgerTables, bp: BatchPlan,
                   ) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[str]]]:
    """The batch's final states: upsert rows and deleted keys, per topic."""
    ups: dict[str, list[tuple[Any, ...]]] = {}
    dels: dict[str, list[str]] = {}
    top_of, rows_of = "", None  # a batch's records are mostly of one topic: cache its table
    row_tuple = None
    for sig, (fields, rev) in bp.states.items():
        if fields is None:
            dels.setdefault(sig.top, []).append(sig.key)
            continue
        if sig.top != top_of or rows_of is None or row_tuple is None:
            top_of = sig.top
            rows_of = ups.setdefault(top_of, [])
            row_tuple = tables.states[top_of].row_tuple
        rows_of.append(row_tuple(sig.key, fields, rev))
    return ups, dels


def _pg_type(col: Any) -> str:
    t = col.type
    if isinstance(t, Boolean):
        return "boolean"
    if isinstance(t, Double):
        return "double precision"
    if isinstance(t, BigInteger | Integer):
        return "bigint"
    return "text"


def _columns(rows: list[tuple[Any, ...]], floats: Sequence[int] = ()) -> list[list[Any]]:
    """``rows`` as one list per column (psycopg sends a list as an array); the values of
    ``floats`` columns as floats, so that each array holds one Python type (a float field
    may hold an int: 3 for 3.0)."""
    cols = [list(c) for c in zip(*rows, strict=True)]
    for i in floats:
        cols[i] = [None if v is None else float(v) for v in cols[i]]
    return cols


def _write_pg(io: _Reads, hot: HotSql, tables: LedgerTables, bp: BatchPlan,
              channel: str) -> None:
    """PostgreSQL: the events, audits, uids, state upserts and the NOTIFY in ONE statement
    (data-modifying CTEs; the tables have no foreign keys, so their order does not matter),
    deletes before it, one per key.

    Beyond :data:`_PG_SMALL` values, every table's rows go as one array per column,
    unnested: the statement's text depends only on which tables and topics the batch writes,
    so psycopg converts it once and the server keeps it prepared. (Rows as ``VALUES`` lists
    make a text per batch size, which psycopg parses again at every execute when it has more
    than 50 parameters: 29 ms for a 100-action publish.) Each statement
    costs the client about as much CPU as the server's work for a small publish, and a
    one-action publish had five writes here.
    """
    ups, dels = _states_by_top(tables, bp)
    for top, keys in dels.items():  # one index probe per key (see HotSql.by_keys), pipelined
        io.many(hot.delete_state[top] + " = %s", [(k,) for k in keys])
    evs = event_rows(bp.events)
    auds = [(rev, created, arrived, usr, None if extra is None else dumps(extra), uid)
            for rev, created, arrived, usr, extra, uid in bp.audits]
    n = 6 * len(evs) + 6 * len(auds) + 2 * len(bp.uids) + 2
    n += sum(len(rows) * len(rows[0]) for rows in ups.values())
    if n <= _PG_SMALL:
        # a small batch (a one-action publish: 23 values): one VALUES row per row — psycopg
        # keeps such a statement converted (<= 50 parameters) and scalars cost it less to
        # send than arrays (about 25 us per array)
        small = ("pg_write_values", len(evs), len(auds), len(bp.uids),
                 tuple((top, len(rows)) for top, rows in ups.items()))
        sql = hot.cache.get(small)
        if sql is None:
            sql = _write_pg_values_sql(hot, small)
            if len(hot.cache) < 10_000:
                hot.cache[small] = sql
        flat: list[Any] = []
        for rows in (evs, auds, bp.uids, *ups.values()):
            for r in rows:
                flat.extend(r)
        flat.append(channel)
        flat.append(str(bp.last_rev))
        io.run(sql, flat)
        return
    shape = ("pg_write", bool(bp.uids), tuple(ups))
    sql = hot.cache.get(shape)
    if sql is None:
        sql = _write_pg_sql(hot, tables, bool(bp.uids), tuple(ups))
        if len(hot.cache) < 10_000:
            hot.cache[shape] = sql
    # a batch that changed anything has events and audits; uids only when some carry one
    params: list[Any] = _columns(evs)
    params += _columns(auds)
    if bp.uids:
        params += _columns(list(bp.uids))
    for top, rows in ups.items():
        st = tables.states[top]
        params += _columns(rows, [i + 1 for i, f in enumerate(st.fields) if f in st.floats])
    params.append(channel)
    params.append(str(bp.last_rev))
    io.run(sql, params)


_PG_SMALL = 50
"""Up to this many values, the PostgreSQL write sends rows as ``VALUES`` (psycopg's cache of
converted statements takes at most 50 parameters); beyond, one array per column."""


def _write_pg_values_sql(hot: HotSql, shape: tuple[Any, ...]) -> str:
    _, n_ev, n_au, n_uid, tops = shape
    ctes: list[str] = []
    for name, sql, n in (("e", hot.ins_event, n_ev), ("a", hot.ins_audit, n_au),
                         ("u", hot.ins_uid, n_uid)):
        if n:
            head, _, row = sql.partition(" VALUES ")
            ctes.append(f"{name} AS ({head} VALUES {', '.join([row] * n)})")
    for i, (top, n) in enumerate(tops):
        head, _, rest = hot.upsert_state[top].partition(" VALUES ")
        row, _, tail = rest.partition(" ON CONFLICT ")
        ctes.append(f"s{i} AS ({head} VALUES {', '.join([row] * n)} ON CONFLICT {tail})")
    return f"WITH {', '.join(ctes)} SELECT pg_notify(%s, %s)"


def _write_pg_sql(hot: HotSql, tables: LedgerTables, uids: bool, tops: tuple[str, ...]) -> str:
    def unnest(table: Any) -> str:
        cols = list(table.columns)
        names = ", ".join('"' + c.name + '"' for c in cols)
        arrays = ", ".join(f"%s::{_pg_type(c)}[]" for c in cols)
        return f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"

    t = tables
    ctes = [f"e AS ({unnest(t.event)})", f"a AS ({unnest(t.audit)})"]
    if uids:
        ctes.append(f"u AS ({unnest(t.uid)})")
    for i, top in enumerate(tops):
        tail = hot.upsert_state[top].partition(" ON CONFLICT ")[2]
        ctes.append(f"s{i} AS ({unnest(t.states[top].table)} ON CONFLICT {tail})")
    return f"WITH {', '.join(ctes)} SELECT pg_notify(%s, %s)"


_MULTI_ROWS = 64
"""SQLite: up to this many rows (and 999 parameters) go into one table as ONE multi-row
``INSERT ... VALUES (...), (...)`` statement instead of an ``executemany``: one step
instead of one per row (each a GIL release and re-acquire on the hub's writer thread), about
1.5 µs less CPU per table for 5 rows and 5 µs for 10."""


def _insert(io: _Reads, hot: HotSql, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """SQLite: ``rows`` into one table with the one-row statement ``sql`` (``... VALUES
    (?, ...)`` and maybe an ``ON CONFLICT`` clause): one multi-row statement when small."""
    n = len(rows)
    if n < 2 or n > _MULTI_ROWS or n * len(rows[0]) > 999:
        io.many(sql, rows)
        return
    ck = ("multi", sql, n)
    multi = hot.cache.get(ck)
    if multi is None:
        head, _, rest = sql.partition(" VALUES ")
        row, sep, tail = rest.partition(" ON CONFLICT ")
        multi = f"{head} VALUES {', '.join([row] * n)}{sep}{tail}"
        if len(hot.cache) < 10_000:
            hot.cache[ck] = multi
    io.run(multi, [v for r in rows for v in r])


def key_entries(evs: Sequence[Event]) -> dict[str, list[tuple[str, Rev, int]]]:
    """By-record layout: the event key entries ``(key, rev, id)`` of ``evs``, per topic."""
    out: dict[str, list[tuple[str, Rev, int]]] = {}
    top_of, rows = "", None  # a batch's events are mostly of one topic
    for e in evs:
        if e.top != top_of or rows is None:
            top_of = e.top
            rows = out.setdefault(top_of, [])
        rows.append((e.key, e.rev, e.id))
    return out


def _write(io: _Reads, hot: HotSql, tables: LedgerTables, bp: BatchPlan) -> None:
    _insert(io, hot, hot.ins_event, event_rows(bp.events))
    _insert(io, hot, hot.ins_audit, [(rev, created, arrived, usr,
                                      None if extra is None else dumps(extra), uid)
                                     for rev, created, arrived, usr, extra, uid in bp.audits])
    _insert(io, hot, hot.ins_uid, list(bp.uids))
    ups, dels = _states_by_top(tables, bp)
    for top, keys in dels.items():
        if hot.pg:  # one index probe per key (see HotSql.by_keys), pipelined
            io.many(hot.delete_state[top] + " = %s", [(k,) for k in keys])
            continue
        for part in chunks(keys):
            io.run(hot.delete_state[top] + hot.in_list(len(part)), hot.in_params(part))
    if hot.rec:
        # by-record: each topic's state rows and its events' key entries (the same leaf
        # pages) in one statement
        for top, ents in key_entries(bp.events).items():
            rows = ups.pop(top, [])
            n = len(rows) * (len(rows[0]) if rows else 0) + 3 * len(ents)
            if len(rows) + len(ents) <= _MULTI_ROWS and n <= 999:
                params = [v for r in rows for v in r]
                params += [v for r in ents for v in r]
                io.run(hot.rec_write(top, len(rows), len(ents)), params)
                continue
            io.many(hot.ins_key[top], ents)
            _insert(io, hot, hot.upsert_state[top], rows)
    for top, rows in ups.items():
        _insert(io, hot, hot.upsert_state[top], rows)
    # no evt_meta update: the audit row and the events carry the new revision and last event
    # id (HotSql.read_meta reads them back)
