"""The Merkle log over SQL: appends inside the caller's transaction, tree heads, proofs, redaction.

Each record is stored as the canonical bytes (see :mod:`.canonical`) of an envelope
``{"class": record_class, "record": {...}, "recorded_at": RFC 3339 UTC}``; its leaf hash is
``SHA-256(0x00 || those bytes)`` (RFC 9162 2.1.1), so the class and time are covered by the tree too.
Appends take the tree-state row's lock (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite: the caller's
transaction is ``BEGIN IMMEDIATE``, see :mod:`.engine`), so writers in several processes extend one tree
with gapless sequence numbers. Every append also writes the perfect subtrees it completes to the node
cache, so proofs and past roots cost O(log n) rows.

Also exported here (agreed names): :class:`LogWriter` (async group commit), :class:`SignedTreeHead`,
:class:`TreeHeadSigner`, :class:`TreeHead`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from familyctx.auditlog.canonical import canonical_bytes, rfc3339_utc
from familyctx.auditlog.engine import READ_ONLY, configure_sqlite
from familyctx.auditlog.errors import LogStateError, ProofError
from familyctx.auditlog.heads import SignedTreeHead, TreeHead, TreeHeadSigner, parse_rfc3339
from familyctx.auditlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    fold_pieces,
    inclusion_ranges,
    leaf_hash,
    perfect_pieces,
)
from familyctx.auditlog.proofs import ConsistencyProof, InclusionProof
from familyctx.auditlog.redaction import REDACTION_CLASS, redaction_record
from familyctx.auditlog.tables import LogTables
from familyctx.auditlog.writer import LogWriter

__all__ = [
    "LogEntry",
    "LogWriter",
    "MerkleLog",
    "PreparedEntry",
    "SignedTreeHead",
    "TreeHead",
    "TreeHeadSigner",
    "as_utc",
    "envelope_bytes",
    "insert_rows",
    "payload_bytes",
    "stored_payload",
]

_RECORD_CLASS = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CHUNK = 500  # parameters per IN list


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC; a naive value (how SQLite returns a stored UTC time) is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def envelope_bytes(record_class: str, recorded_at: dt.datetime, record: Mapping[str, Any]) -> bytes:
    """The canonical bytes stored and hashed for one record (see the module docstring). Raises
    ``ValueError`` for a record :func:`~.canonical.canonical_bytes` refuses or a bad ``record_class``
    (1-40 of ``a-z 0-9 _``, starting with a letter)."""
    if not isinstance(record_class, str) or not _RECORD_CLASS.match(record_class):
        raise ValueError("record_class must be 1-40 of a-z, 0-9, '_', starting with a letter")
    return canonical_bytes({"class": record_class, "recorded_at": recorded_at, "record": record})


def envelope_edges(record_class: str, recorded_at: dt.datetime) -> tuple[bytes, bytes]:
    """The fixed start and end of :func:`envelope_bytes` for this class and time (the record sits
    between): lets a verifier check the ``record_class`` and ``recorded_at`` columns without parsing."""
    tail = b',"recorded_at":"' + rfc3339_utc(as_utc(recorded_at)).encode() + b'"}'
    return envelope_head(record_class), tail


def envelope_head(record_class: str) -> bytes:
    """The fixed start of :func:`envelope_bytes` for ``record_class`` (up to the record)."""
    return b'{"class":' + json.dumps(record_class, ensure_ascii=False).encode() + b',"record":'


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """A record turned into its stored form, ready to append (see :meth:`MerkleLog.prepare`)."""

    record_class: str
    recorded_at: dt.datetime
    payload: bytes


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stored entry. ``record`` is None when redacted under retention (``redacted_at`` set)."""

    seq: int
    record_class: str
    recorded_at: dt.datetime
    record: dict[str, Any] | None
    leaf_hash: bytes
    redacted_at: dt.datetime | None
    #: False when the stored payload is not what was hashed (edited, stored as text, not JSON): then
    #: ``record`` is None although the entry is not redacted; ``familyctx audit verify`` reports it.
    intact: bool = True


class MerkleLog:
    """A tamper-evident log kept in ``tables`` on ``engine`` (see the module docstring).

    On SQLite, ``engine`` must run writers' transactions as ``BEGIN IMMEDIATE``: build it with
    :func:`~.engine.create_log_engine`; an engine that lacks the listeners gets them here (before its
    first connection, or they miss pooled connections). The log's name in tree heads is the signer's
    ``log_id`` (:class:`TreeHeadSigner`). Reads made here (heads, proofs, entries) use
    :data:`~.engine.READ_ONLY` connections, so they never hold SQLite's write lock."""

    def __init__(self, engine: sa.Engine, tables: LogTables) -> None:
        configure_sqlite(engine)
        self.engine = engine
        self.tables = tables

    # -- schema ---------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create missing tables and the tree-state row (tests and the embedded default; production uses
        the owner's Alembic migrations, which may leave the row to the first append)."""
        self.tables.create(self.engine)
        with self.engine.begin() as conn:
            self._ensure_state_row(conn)

    def _ensure_state_row(self, conn: sa.Connection) -> None:
        state = self.tables.tree_state
        values = {"id": 1, "size": 0, "frontier": Frontier().to_json()}
        if conn.dialect.name == "postgresql":
            conn.execute(postgresql.insert(state).values(values).on_conflict_do_nothing())
        elif conn.dialect.name == "sqlite":
            conn.execute(sqlite.insert(state).values(values).on_conflict_do_nothing())
        elif conn.execute(sa.select(state.c.id).where(state.c.id == 1)).first() is None:
            conn.execute(state.insert().values(values))

    # -- appends --------------------------------------------------------------------------------------

    @staticmethod
    def prepare(
        record_class: str, record: Mapping[str, Any], recorded_at: dt.datetime | None = None
    ) -> PreparedEntry:
        """The stored form of one record (``recorded_at`` default: now, UTC). Raises ``ValueError`` as
        :func:`envelope_bytes`. Cheap and database-free: call it before taking any lock."""
        moment = as_utc(recorded_at) if recorded_at is not None else dt.datetime.now(dt.UTC)
        return PreparedEntry(record_class, moment, envelope_bytes(record_class, moment, record))

    def append(self, conn: sa.Connection, records: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Append ``records`` (``(record_class, record)`` pairs) inside the caller's open transaction on
        ``conn``; returns their sequence numbers (consecutive). Nothing is visible until the caller
        commits; insert index rows keyed by these numbers in the same transaction. Raises ``ValueError``
        for a record that cannot be canonicalised (before any lock), :class:`~.errors.LogStateError` for
        a corrupt tree state, SQLAlchemy errors from the database."""
        now = dt.datetime.now(dt.UTC)
        return self.append_prepared(conn, [self.prepare(c, r, now) for c, r in records])

    def append_prepared(self, conn: sa.Connection, entries: Sequence[PreparedEntry]) -> list[int]:
        """As :meth:`append`, for entries made by :meth:`prepare`."""
        if not entries:
            return []
        frontier = self._lock_state(conn)
        start = frontier.size
        rows: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        for offset, entry in enumerate(entries):
            leaf = leaf_hash(entry.payload)
            for level, idx, digest in frontier.append(leaf):
                nodes.append({"last_seq": node_last_seq(level, idx), "level": level, "hash": digest})
            rows.append(
                {
                    "seq": start + offset,
                    "record_class": entry.record_class,
                    "recorded_at": entry.recorded_at,
                    "payload": entry.payload,
                    "leaf_hash": leaf,
                }
            )
        t = self.tables
        insert_rows(conn, t.entries, rows)
        insert_rows(conn, t.tree_nodes, nodes)
        conn.execute(
            t.tree_state.update()
            .where(t.tree_state.c.id == 1)
            .values(size=frontier.size, frontier=frontier.to_json(), updated_at=dt.datetime.now(dt.UTC))
        )
        return list(range(start, frontier.size))

    def _lock_state(self, conn: sa.Connection) -> Frontier:
        state = self.tables.tree_state
        query = sa.select(state.c.size, state.c.frontier).where(state.c.id == 1).with_for_update()
        row = conn.execute(query).first()
        if row is None:
            self._ensure_state_row(conn)
            row = conn.execute(query).first()
        if row is None:  # pragma: no cover - the insert above makes it
            raise LogStateError("tree state row missing")
        return _frontier_of(row.size, row.frontier)

    # -- reading --------------------------------------------------------------------------------------

    def _read(self) -> sa.Connection:
        return self.engine.connect().execution_options(**READ_ONLY)

    def tree_head(self, conn: sa.Connection | None = None) -> TreeHead:
        """The current size and root (committed state; ``EMPTY_ROOT`` for an empty log). Raises
        :class:`~.errors.LogStateError` for a corrupt tree state."""
        if conn is None:
            with self._read() as own:
                return self.tree_head(own)
        state = self.tables.tree_state
        row = conn.execute(sa.select(state.c.size, state.c.frontier).where(state.c.id == 1)).first()
        if row is None:
            return TreeHead(0, EMPTY_ROOT)
        frontier = _frontier_of(row.size, row.frontier)
        return TreeHead(frontier.size, frontier.root())

    def signed_heads(self, *, min_size: int = 0) -> list[SignedTreeHead]:
        """Stored signed tree heads with ``tree_size >= min_size``, oldest first (for export)."""
        heads = self.tables.tree_heads
        query = sa.select(heads).where(heads.c.tree_size >= min_size).order_by(heads.c.tree_size)
        with self._read() as conn:
            return [head_from_row(row) for row in conn.execute(query)]

    def latest_signed_head(self) -> SignedTreeHead | None:
        """The stored signed head with the largest size, or None."""
        heads = self.tables.tree_heads
        with self._read() as conn:
            row = conn.execute(sa.select(heads).order_by(heads.c.tree_size.desc()).limit(1)).first()
        return head_from_row(row) if row is not None else None

    def sign_tree_head(self, signer: TreeHeadSigner) -> SignedTreeHead:
        """Sign the current head with ``signer`` and store it, unless the latest stored head already has
        this size (then that head is returned). Safe when several processes do it at once."""
        current = self.tree_head()
        latest = self.latest_signed_head()
        if latest is not None and latest.tree_size >= current.tree_size:
            return latest
        signed = signer.sign(current)
        row = {
            "tree_size": signed.tree_size,
            "root_hash": signed.root_hash,
            "issued_at": signed.issued_at,
            "log_id": signed.log_id,
            "jws": signed.jws,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(self.tables.tree_heads.insert(), row)
        except IntegrityError:  # another process signed this size first
            heads = self.tables.tree_heads
            with self._read() as conn:
                stored = conn.execute(sa.select(heads).where(heads.c.tree_size == signed.tree_size)).one()
            return head_from_row(stored)
        return signed

    def entry(self, seq: int) -> LogEntry | None:
        """The entry ``seq`` with its record decoded, or None when there is no such entry."""
        e = self.tables.entries
        with self._read() as conn:
            row = conn.execute(sa.select(e).where(e.c.seq == seq)).first()
        if row is None:
            return None
        payload = stored_payload(row.payload, row.leaf_hash)
        record = None
        if payload is not None:
            record = json.loads(payload)["record"]
        return LogEntry(
            row.seq,
            row.record_class,
            as_utc(row.recorded_at),
            record,
            bytes(row.leaf_hash),
            as_utc(row.redacted_at) if row.redacted_at is not None else None,
            intact=payload is not None or (row.payload is None and row.redacted_at is not None),
        )

    # -- proofs ---------------------------------------------------------------------------------------

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that entry ``seq`` is in the tree of ``tree_size`` entries (default: the current size),
        with that tree's root. O(log n) rows read. Raises :class:`~.errors.ProofError` unless
        ``0 <= seq < tree_size <= current size``; :class:`~.errors.LogStateError` if the node cache lacks
        a node."""
        with self._read() as conn:
            size = self._checked_size(conn, tree_size)
            if not 0 <= seq < size:
                raise ProofError("seq must satisfy 0 <= seq < tree_size")
            ranges = inclusion_ranges(seq, size)
            plan = [perfect_pieces(a, b) for a, b in ranges] + [[(0, seq)], perfect_pieces(0, size)]
            found = self._fetch(conn, {c for pieces in plan for c in pieces})
        hashes = [fold_pieces([found[c] for c in pieces]) for pieces in plan]
        return InclusionProof(seq, size, hashes[-2], hashes[-1], tuple(hashes[:-2]))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``new_size`` entries (default: current) extends the tree of
        ``old_size``, with both roots. Raises :class:`~.errors.ProofError` unless
        ``0 <= old_size <= new_size <= current size``."""
        with self._read() as conn:
            size = self._checked_size(conn, new_size)
            if not 0 <= old_size <= size:
                raise ProofError("sizes must satisfy 0 <= old_size <= new_size")
            plan = [perfect_pieces(a, b) for a, b in consistency_ranges(old_size, size)]
            roots = [perfect_pieces(0, n) if n else [] for n in (old_size, size)]
            found = self._fetch(conn, {c for pieces in plan + roots for c in pieces})
        old_root, new_root = (fold_pieces([found[c] for c in r]) if r else EMPTY_ROOT for r in roots)
        hashes = tuple(fold_pieces([found[c] for c in pieces]) for pieces in plan)
        return ConsistencyProof(old_size, size, old_root, new_root, hashes)

    def root_at(self, tree_size: int) -> bytes:
        """The root of the tree of the first ``tree_size`` entries (O(log n) rows). ProofError when
        ``tree_size`` exceeds the log."""
        with self._read() as conn:
            size = self._checked_size(conn, tree_size)
            if size == 0:
                return EMPTY_ROOT
            pieces = perfect_pieces(0, size)
            found = self._fetch(conn, set(pieces))
        return fold_pieces([found[c] for c in pieces])

    def _checked_size(self, conn: sa.Connection, tree_size: int | None) -> int:
        current = self.tree_head(conn).tree_size
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise ProofError("tree_size must be between 0 and the current size of the log")
        return tree_size

    def _fetch(self, conn: sa.Connection, coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        t = self.tables
        found: dict[tuple[int, int], bytes] = {}
        leaves = sorted(idx for level, idx in coords if level == 0)
        inner = sorted(c for c in coords if c[0] > 0)
        if leaves:
            query = sa.select(t.entries.c.seq, t.entries.c.leaf_hash).where(t.entries.c.seq.in_(leaves))
            found.update({(0, row.seq): row.leaf_hash for row in conn.execute(query)})
        if inner:
            n = t.tree_nodes.c
            wanted = {(node_last_seq(level, idx), level) for level, idx in inner}
            # By the key's first column only (an index range per value on every database; SQLite does not
            # use the index for a row-value IN list), keeping the wanted levels.
            query = sa.select(n.last_seq, n.level, n.hash).where(
                n.last_seq.in_(sorted({k[0] for k in wanted}))
            )
            for row in conn.execute(query):
                if (row.last_seq, row.level) in wanted:
                    found[(row.level, row.last_seq >> row.level)] = row.hash
        if len(found) != len(coords):
            raise LogStateError(f"node cache incomplete: {len(coords) - len(found)} node(s) missing")
        return found

    # -- retention ------------------------------------------------------------------------------------

    def redact(
        self,
        conn: sa.Connection,
        seqs: Iterable[int],
        *,
        record_class: str,
        cutoff: dt.datetime,
        retention_days: int | None = None,
    ) -> int:
        """Retention: drop the payload of those entries ``seqs`` that are of ``record_class`` and were
        recorded before ``cutoff`` (set NULL, ``redacted_at`` now), inside the caller's transaction; the
        leaf hash stays, so the tree and every signed head still verify. In the same transaction a
        :data:`~.redaction.REDACTION_CLASS` record listing the entries redacted, the class, the period
        (``retention_days``) and the cut-off is appended (:mod:`.redaction`), so that ``verify_log`` can
        tell retention from a payload removed by hand. Takes the tree-state lock first (as appends do).
        Returns the number of entries newly redacted (others, and already-redacted ones, are left
        alone; nothing is appended when none is). Raises ``ValueError`` for a bad ``record_class``."""
        if record_class == REDACTION_CLASS or not _RECORD_CLASS.match(record_class):
            raise ValueError("record_class must be a record class other than 'redaction'")
        e = self.tables.entries
        before = as_utc(cutoff)
        wanted = sorted(set(int(s) for s in seqs))
        if not wanted:
            return 0
        self._lock_state(conn)
        due: list[int] = []
        for i in range(0, len(wanted), _CHUNK):
            query = sa.select(e.c.seq).where(
                e.c.seq.in_(wanted[i : i + _CHUNK]),
                e.c.record_class == record_class,
                e.c.recorded_at < before,
                e.c.payload.is_not(None),
            )
            due.extend(int(s) for s in conn.execute(query).scalars())
        if not due:
            return 0
        due.sort()
        now = dt.datetime.now(dt.UTC)
        for i in range(0, len(due), _CHUNK):
            conn.execute(
                e.update().where(e.c.seq.in_(due[i : i + _CHUNK])).values(payload=None, redacted_at=now)
            )
        record = redaction_record(record_class, due, cutoff=before, retention_days=retention_days)
        self.append(conn, [(REDACTION_CLASS, record)])
        return len(due)

    def redact_older_than(
        self,
        conn: sa.Connection,
        record_class: str,
        before: dt.datetime,
        *,
        retention_days: int | None = None,
        batch: int = 1000,
    ) -> int:
        """Retention by class: redact every entry of ``record_class`` recorded before ``before`` (UTC)
        inside the caller's transaction, as :meth:`redact` (one redaction record per ``batch``
        entries); returns how many were newly redacted."""
        e = self.tables.entries
        query = (
            sa.select(e.c.seq)
            .where(
                e.c.record_class == record_class, e.c.recorded_at < as_utc(before), e.c.payload.is_not(None)
            )
            .order_by(e.c.seq)
        )
        seqs = [int(s) for s in conn.execute(query).scalars()]
        done = 0
        for i in range(0, len(seqs), batch):
            done += self.redact(
                conn,
                seqs[i : i + batch],
                record_class=record_class,
                cutoff=before,
                retention_days=retention_days,
            )
        return done


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` inside ``conn``'s transaction, fast.

    PostgreSQL: one ``COPY ... FROM STDIN`` on the same connection (a plain executemany on psycopg 3
    sends one INSERT per row, and a multi-row INSERT costs more to build and parse than COPY: COPY
    roughly doubles a batch's throughput). Elsewhere: SQLAlchemy's executemany (in-process for
    SQLite). Index writers (e.g. the gateway's audit index) can use it too: values as SQLAlchemy would
    take them (JSON columns as Python objects, ``None`` for NULL); server defaults apply to missing
    columns, Python-side ``default=`` values do not. No-op for no rows."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    from psycopg import sql  # the PostgreSQL driver this project installs
    from psycopg.types.json import Json

    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*([table.schema] if table.schema else []), table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([Json(row[c]) if c in json_columns else row[c] for c in columns])


def payload_bytes(payload: Any) -> bytes | None:
    """A stored ``payload`` column value as bytes for display (None stays None; text, which a hand edit
    in SQLite can leave in the BLOB column, is encoded as UTF-8 rather than failing). Whether those bytes
    are what was hashed is :func:`stored_payload`'s question."""
    if payload is None:
        return None
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    return bytes(payload)


def stored_payload(payload: Any, leaf: Any) -> bytes | None:
    """The stored ``payload`` column as bytes when it is intact: bytes (not text, as a hand edit in
    SQLite can leave it) that hash to the entry's ``leaf`` hash and hold a JSON envelope with a
    ``record`` object. None otherwise (redacted, edited or unreadable): readers such as the IG API show
    such an entry without its record instead of failing; ``verify_log`` reports it as ``edited``."""
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    if not isinstance(payload, bytes) or leaf is None or leaf_hash(payload) != bytes(leaf):
        return None
    try:
        envelope = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("record"), dict):
        return None
    return payload


def node_last_seq(level: int, idx: int) -> int:
    """The last leaf (seq) of the perfect subtree ``(level, idx)``: ``(idx + 1) * 2**level - 1``."""
    return ((idx + 1) << level) - 1


def _frontier_of(size: int, data: Any) -> Frontier:
    try:
        frontier = Frontier.from_json(json.loads(data) if isinstance(data, str) else data)
    except ValueError as exc:
        raise LogStateError(f"tree state frontier is corrupt ({exc})") from None
    if frontier.size != size:
        raise LogStateError("tree state size disagrees with its frontier")
    return frontier


def head_from_row(row: Any) -> SignedTreeHead:
    """A :class:`SignedTreeHead` from a ``<prefix>_tree_heads`` row (columns as stored; not verified)."""
    issued = row.issued_at
    if isinstance(issued, str):
        issued = parse_rfc3339(issued)
    return SignedTreeHead(row.log_id, row.tree_size, bytes(row.root_hash), as_utc(issued), row.jws)
