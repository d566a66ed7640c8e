"""Verify a whole log: recompute the Merkle tree from the stored entries and check everything against it.

One pass over the entries in ``seq`` order (streamed; memory O(log n) plus the heads), inside one read
snapshot. What is checked, and the fixed problem ``kind`` reported (each with the FIRST affected seq and
a count of how many entries or heads it affects):

``edited``
    an entry's payload does not hash to its stored leaf hash (or is stored as text, not bytes), or its
    ``record_class``/``recorded_at`` columns differ from the hashed record, or its payload is gone
    without a redaction time.
``unauthorised_redaction``
    an entry's payload was removed (``redacted_at`` set) but no later, intact ``redaction`` record of
    its class lists it with a cut-off after its ``recorded_at`` (:mod:`.redaction`): removed by hand,
    not by retention.
``gap``
    a sequence number is missing (a row was deleted).
``root_mismatch``
    a tree head (stored in the log, or kept outside it) states a root the recomputed tree does not have
    at that size: leaf hashes edited together with their payloads, rows reordered, inserted or deleted.
    The first affected seq is located with the node cache when that is intact, otherwise it is the size
    of the last head that still matched (``detail`` says which).
``truncated``
    the log holds fewer entries than a head says it had.
``empty_log``
    the log holds no entries at all but a head says it had some.
``edited_head``
    a tree head's row (or kept line) states other values than its own JWS payload: the head was edited
    after signing. Checked with or without public keys (no signature is needed to see it).
``bad_signature``
    a head's JWS does not verify with the given public keys, or was signed for another log.
    Heads that are edited or badly signed are not used for the root checks.
``state_mismatch``
    the tree-state row (size, frontier) or the node cache disagrees with the recomputed tree.
``index_mismatch``
    (with an :class:`~.index_check.IndexChecker`) the owner's index tables hold rows edited, deleted
    or added without a log entry, compared with the rows each intact entry's record gives, or a
    redacted entry's index rows still hold what retention removes.

Redacted entries (payload removed under retention, leaf hash kept, listed by a ``redaction`` record) are
counted, not problems.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import READ_ONLY
from familyctx.auditlog.heads import SignedTreeHead
from familyctx.auditlog.index_check import IndexChecker, IndexWalk
from familyctx.auditlog.log import envelope_head, head_from_row, node_last_seq
from familyctx.auditlog.merkle import EMPTY_ROOT, Frontier, leaf_hash, perfect_pieces
from familyctx.auditlog.redaction import REDACTION_CLASS, RedactionCoverage
from familyctx.auditlog.tables import LogTables

__all__ = ["PROBLEM_KINDS", "Problem", "VerifyReport", "verify_log"]

PROBLEM_KINDS = (
    "edited",
    "gap",
    "unauthorised_redaction",
    "root_mismatch",
    "truncated",
    "empty_log",
    "edited_head",
    "bad_signature",
    "state_mismatch",
    "index_mismatch",
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One kind of problem found: ``kind`` (one of :data:`PROBLEM_KINDS`), ``seq`` the first affected
    entry (None when no entry can be named), ``count`` how many entries (or heads, for head kinds) are
    affected, ``tree_size`` the first head involved (head kinds), ``detail`` a short explanation with
    ids and sizes only (never record content)."""

    kind: str
    seq: int | None
    detail: str
    count: int = 1
    tree_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "kind": self.kind,
            "seq": self.seq,
            "count": self.count,
            "tree_size": self.tree_size,
            "detail": self.detail,
        }


@dataclass(slots=True)
class VerifyReport:
    """The outcome of :func:`verify_log`. ``ok``: no problems; ``entries``: rows read; ``redacted``:
    entries whose payload was removed under retention (leaf hash kept, still verified);
    ``checked_heads``: heads (stored and kept) whose root was compared; ``tree_size``/``root_hash``: the
    recomputed tree; ``signatures_checked``: False when no public keys were given (signatures unchecked);
    ``seconds``: time taken."""

    ok: bool
    entries: int
    redacted: int
    problems: list[Problem]
    checked_heads: int
    tree_size: int = 0
    root_hash: bytes = EMPTY_ROOT
    signatures_checked: bool = False
    redacted_by_class: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def problem(self, kind: str) -> Problem | None:
        """The problem of ``kind``, or None."""
        return next((p for p in self.problems if p.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (root hash as hex)."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "redacted": self.redacted,
            "redacted_by_class": dict(self.redacted_by_class),
            "checked_heads": self.checked_heads,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "signatures_checked": self.signatures_checked,
            "seconds": round(self.seconds, 3),
            "problems": [p.to_dict() for p in self.problems],
        }


class _Problems:
    """First occurrence and count per kind."""

    def __init__(self) -> None:
        self._first: dict[str, Problem] = {}
        self._count: dict[str, int] = {}

    def add(
        self, kind: str, seq: int | None, detail: str, *, count: int = 1, tree_size: int | None = None
    ) -> None:
        if kind not in self._first:
            self._first[kind] = Problem(kind, seq, detail, 0, tree_size)
        self._count[kind] = self._count.get(kind, 0) + count

    def result(self) -> list[Problem]:
        out = []
        for kind in PROBLEM_KINDS:
            if kind in self._first:
                p = self._first[kind]
                out.append(Problem(kind, p.seq, p.detail, self._count[kind], p.tree_size))
        return out


def _check_heads(
    heads: list[tuple[str, SignedTreeHead]],
    public_jwks: Mapping[str, Any] | None,
    log_id: str | None,
    problems: _Problems,
) -> dict[int, list[tuple[str, SignedTreeHead]]]:
    """Signature checks; returns the heads fit for root checks, by size."""
    by_size: dict[int, list[tuple[str, SignedTreeHead]]] = {}
    for source, head in heads:
        if not head.matches_jws():
            problems.add(
                "edited_head",
                None,
                f"{source} tree head of size {head.tree_size}: its values differ from its signed JWS",
                tree_size=head.tree_size,
            )
            continue
        reason = head.verify(public_jwks) if public_jwks is not None else None
        if reason is None and log_id is not None and head.log_id != log_id:
            reason = "signed for another log"
        if reason is not None:
            problems.add(
                "bad_signature",
                None,
                f"{source} tree head of size {head.tree_size}: {reason}",
                tree_size=head.tree_size,
            )
            continue
        by_size.setdefault(head.tree_size, []).append((source, head))
    return by_size


def _stream(
    conn: sa.Connection, query: sa.Select[Any], name: str, batch_size: int
) -> Generator[Any, None, None]:
    """Rows of ``query`` (tuples), fetched ``batch_size`` at a time, inside ``conn``'s open transaction.

    The driver's own cursors on the same connection and snapshot (SQLAlchemy's row objects cost more
    than the checks at a million entries). PostgreSQL: a named (server-side) psycopg cursor in the
    binary protocol (bytea travels as bytes instead of hex text: half the fetch time); SQLite: a plain
    cursor (times come back as SQLAlchemy's stored text: see :meth:`_Walk._check_payload`)."""
    name_ = conn.dialect.name
    if name_ in ("postgresql", "sqlite"):
        driver: Any = conn.connection.driver_connection
        sql = str(query.compile(dialect=conn.dialect))
        cursor = driver.cursor(name=name, binary=True) if name_ == "postgresql" else driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch_size):
                yield from rows
        finally:
            cursor.close()
        return
    result = conn.execute(query.execution_options(stream_results=True))
    for part in result.partitions(batch_size):
        yield from (tuple(row) for row in part)


def verify_log(
    engine: sa.Engine,
    tables: LogTables,
    *,
    public_jwks: Mapping[str, Any] | None,
    kept_heads: Sequence[SignedTreeHead] = (),
    log_id: str | None = None,
    batch_size: int = 5000,
    index_checker: IndexChecker | None = None,
) -> VerifyReport:
    """Verify the log in ``tables`` on ``engine`` (see the module docstring for the checks and kinds).

    ``public_jwks``: the log's public JWK Set; None skips signature checks (``signatures_checked``
    False). ``kept_heads``: heads kept outside the system (e.g. from ``read_heads_jsonl``): they catch a
    truncated, emptied or rewritten log that the database's own heads no longer can. ``log_id``: when
    given, heads signed for another log are ``bad_signature``. ``index_checker``: the log owner's
    :class:`~.index_check.IndexChecker` (e.g. the gateway's or an adapter's): also compare its index
    tables with the records (``index_mismatch``). Reads in one snapshot (PostgreSQL
    REPEATABLE READ; SQLite a deferred read transaction), so appends may go on meanwhile. Raises
    SQLAlchemy errors when the database cannot be read, :class:`~.errors.TreeHeadKeyError` for a JWK Set
    without ``keys``."""
    started = time.perf_counter()
    t = tables
    problems = _Problems()
    with engine.connect() as conn:
        conn.execution_options(**READ_ONLY)
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        stored = [("stored", head_from_row(r)) for r in conn.execute(sa.select(t.tree_heads))]
        heads = stored + [("kept", h) for h in kept_heads]
        by_size = _check_heads(heads, public_jwks, log_id, problems)
        state = conn.execute(sa.select(t.tree_state).where(t.tree_state.c.id == 1)).first()
        entries_q = sa.select(
            t.entries.c.seq,
            t.entries.c.record_class,
            t.entries.c.recorded_at,
            t.entries.c.payload,
            t.entries.c.leaf_hash,
            t.entries.c.redacted_at,
        ).order_by(t.entries.c.seq)
        n = t.tree_nodes.c
        nodes_q = sa.select(n.last_seq, n.level, n.hash).order_by(n.last_seq, n.level)
        e = t.entries.c
        redactions_q = sa.select(e.seq, e.payload, e.leaf_hash).where(e.record_class == REDACTION_CLASS)
        coverage = RedactionCoverage(
            (row.seq, row.payload, row.leaf_hash) for row in conn.execute(redactions_q.order_by(e.seq))
        )
        index = IndexWalk(index_checker, conn, batch_size) if index_checker is not None else None
        walk = _Walk(by_size, problems, coverage, index)
        entries = _stream(conn, entries_q, "familyctx_verify_entries", batch_size)
        nodes = _stream(conn, nodes_q, "familyctx_verify_nodes", batch_size)
        try:
            walk.run(entries, nodes)
            if index is not None:
                index.finish(conn)
        finally:  # close the cursors while the connection is open (an error must not be masked)
            entries.close()
            nodes.close()
            if index is not None:
                index.close()
    walk.finish(state)
    if index is not None:
        _index_problems(index, problems)
    return VerifyReport(
        ok=not problems.result(),
        entries=walk.entries,
        redacted=walk.redacted,
        problems=problems.result(),
        checked_heads=walk.checked_heads,
        tree_size=walk.frontier.size,
        root_hash=walk.frontier.root(),
        signatures_checked=public_jwks is not None,
        redacted_by_class=walk.redacted_by_class,
        seconds=time.perf_counter() - started,
    )


def _index_problems(index: IndexWalk, problems: _Problems) -> None:
    findings = sorted(index.findings, key=lambda f: (f[0] is None, f[0] or 0))
    if not findings:
        return
    seqs = {f[0] for f in findings if f[0] is not None}
    count = len(seqs) + sum(1 for f in findings if f[0] is None)
    first = findings[0]
    problems.add("index_mismatch", first[0], first[1], count=count)


def _utc(moment: Any) -> dt.datetime | None:
    """A stored ``recorded_at`` as an aware UTC time (SQLite's raw cursor gives SQLAlchemy's stored text
    "YYYY-MM-DD HH:MM:SS.ffffff", UTC, without a zone); None when unreadable."""
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            return None
    if not isinstance(moment, dt.datetime):
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class _Walk:
    """The single pass: entries beside the node cache, heads checked as their size is reached."""

    def __init__(
        self,
        by_size: dict[int, list[tuple[str, SignedTreeHead]]],
        problems: _Problems,
        coverage: RedactionCoverage,
        index: IndexWalk | None,
    ) -> None:
        self.by_size = by_size
        self.problems = problems
        self.coverage = coverage
        self.index = index
        self.frontier = Frontier()
        self.entries = 0
        self.redacted = 0
        self.redacted_by_class: dict[str, int] = {}
        self.checked_heads = 0
        self.first_node_mismatch: int | None = None
        self.last_good_head = 0
        self._heads: dict[str, bytes] = {}

    def run(self, entries: Iterator[Any], nodes: Iterator[Any]) -> None:
        problems = self.problems
        frontier = self.frontier
        # rows are tuples: entries (seq, record_class, recorded_at, payload, leaf_hash, redacted_at),
        # nodes (last_seq, level, hash), both in key order
        stored = next(nodes, None)
        if 0 in self.by_size:
            self._check_heads_at(0)  # heads of the empty tree
        expected = 0
        by_size = self.by_size
        for seq, record_class, recorded_at, payload, leaf, redacted_at in entries:
            if seq != expected:
                problems.add("gap", expected, f"seq {expected}..{seq - 1} missing", count=seq - expected)
            expected = seq + 1
            self._check_payload(seq, record_class, recorded_at, payload, leaf, redacted_at)
            for level, idx, digest in frontier.append(leaf):
                key = (node_last_seq(level, idx), level)
                while stored is not None and (stored[0], stored[1]) < key:
                    self._node_problem(stored[0], stored[1], "not in the recomputed tree")
                    stored = next(nodes, None)
                if stored is None or (stored[0], stored[1]) != key:
                    self._node_problem(key[0], level, "missing")
                else:
                    if stored[2] != digest:
                        self._node_problem(key[0], level, "differs")
                    stored = next(nodes, None)
            self.entries += 1
            if frontier.size in by_size:
                self._check_heads_at(frontier.size)
        while stored is not None:
            self._node_problem(stored[0], stored[1], "not in the recomputed tree")
            stored = next(nodes, None)

    def _check_payload(
        self,
        seq: int,
        record_class: str,
        recorded_at: dt.datetime | str,
        payload: Any,
        leaf: bytes,
        redacted_at: dt.datetime | None,
    ) -> None:
        state = self._payload_state(seq, record_class, recorded_at, payload, leaf, redacted_at)
        if self.index is not None:
            record = None
            if state == "intact":
                try:
                    record = json.loads(payload)["record"]
                except (ValueError, KeyError, TypeError):
                    state = "unreadable"
            self.index.entry(seq, record_class, record, state)

    def _payload_state(
        self,
        seq: int,
        record_class: str,
        recorded_at: dt.datetime | str,
        payload: Any,
        leaf: bytes,
        redacted_at: dt.datetime | None,
    ) -> str:
        """``intact``, ``redacted`` or ``unreadable`` (a problem was added)."""
        moment = _utc(recorded_at)
        if payload is None:
            if redacted_at is None:
                self.problems.add("edited", seq, "payload removed without a redaction time")
                return "unreadable"
            self.redacted += 1
            self.redacted_by_class[record_class] = self.redacted_by_class.get(record_class, 0) + 1
            reason = self.coverage.check(seq, record_class, moment) if moment is not None else "no valid time"
            if reason is not None:
                self.problems.add("unauthorised_redaction", seq, reason)
            return "redacted"
        if isinstance(payload, memoryview):
            payload = payload.tobytes()
        if not isinstance(payload, bytes):
            self.problems.add("edited", seq, "payload stored as text, not the bytes that were hashed")
            return "unreadable"
        if leaf_hash(payload) != leaf:
            self.problems.add("edited", seq, "payload does not hash to the leaf hash")
            return "unreadable"
        # The envelope is canonical JSON with sorted keys: {"class":..,"record":{..},"recorded_at":".."}.
        head = self._heads.get(record_class)
        if head is None:
            head = self._heads[record_class] = envelope_head(record_class)
        try:
            stated = dt.datetime.fromisoformat(payload[-29:-2].decode("ascii"))
        except (ValueError, UnicodeError):
            stated = None
        if not (
            payload.startswith(head)
            and payload[-45:-29] == b',"recorded_at":"'
            and payload[-2:] == b'"}'
            and stated == moment
        ):
            self.problems.add("edited", seq, "class or time column differs from the hashed record")
            return "unreadable"
        return "intact"

    def _node_problem(self, last_seq: int, level: int, what: str) -> None:
        # The first node met (in completion order) is the smallest subtree holding the first change.
        first = last_seq + 1 - (1 << level)
        if self.first_node_mismatch is None and what == "differs":  # a missing cache locates nothing
            self.first_node_mismatch = first
        self.problems.add("state_mismatch", first, f"node cache: subtree of seq {first}..{last_seq} {what}")

    def _check_heads_at(self, size: int) -> None:
        root = self.frontier.root()
        all_ok = True
        for source, head in self.by_size[size]:
            self.checked_heads += 1
            if head.root_hash == root:
                continue
            all_ok = False
            located = self.first_node_mismatch
            if located is not None and located < size:
                detail = f"{source} tree head of size {size}: root differs; node cache locates seq {located}"
            else:
                located = self.last_good_head
                detail = (
                    f"{source} tree head of size {size}: root differs; first difference at or after "
                    f"seq {located} (last matching head)"
                )
            self.problems.add("root_mismatch", located, detail, tree_size=size)
        if all_ok:
            self.last_good_head = max(self.last_good_head, size)

    def finish(self, state: Any) -> None:
        """Heads beyond the log, and the tree-state row."""
        size = self.frontier.size
        longer = sorted(s for s in self.by_size if s > size)
        for s in longer:
            for source, _head in self.by_size[s]:
                if size == 0:
                    self.problems.add(
                        "empty_log", 0, f"log has no entries; a {source} tree head says {s}", tree_size=s
                    )
                else:
                    self.problems.add(
                        "truncated",
                        size,
                        f"log has {size} entries; a {source} tree head says {s}",
                        tree_size=s,
                    )
        self._check_state(state)

    def _check_state(self, state: Any) -> None:
        frontier = self.frontier
        if state is None:
            if frontier.size:
                self.problems.add("state_mismatch", 0, "tree state row missing")
            return
        data = state.frontier
        try:
            stored = Frontier.from_json(json.loads(data) if isinstance(data, str) else data)
        except ValueError:
            self.problems.add("state_mismatch", None, "tree state frontier is corrupt")
            return
        if state.size != stored.size or stored.size != frontier.size:
            first = min(stored.size, state.size, frontier.size)
            self.problems.add(
                "state_mismatch",
                first,
                f"tree state says {state.size} entries, the entries make {frontier.size}",
            )
            return
        if stored.hashes != frontier.hashes:
            pieces = perfect_pieces(0, frontier.size)
            for (level, idx), mine, theirs in zip(pieces, frontier.hashes, stored.hashes, strict=True):
                if mine != theirs:
                    first = idx << level
                    self.problems.add(
                        "state_mismatch", first, f"tree state frontier differs from seq {first} on"
                    )
                    break
