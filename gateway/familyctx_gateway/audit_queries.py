"""Read side of the gateway's audit log for IG officers: search, subject access, one record in full,
and CSV rows. The write side (the Merkle log and its index tables) is :mod:`familyctx_gateway.audit`.

Tables (interfaces-audit.md, on the audit database): ``audit_entries`` (the log: ``seq``,
``record_class``, ``recorded_at``, canonical ``payload``, ``leaf_hash``, ``redacted_at``), and the index
rows written with each entry in the same transaction: ``audit_events`` (one per record: who, when, why,
outcome), ``audit_subjects`` (one per subject searched for or returned: council, local id, NHS number,
normalised name keys, date of birth, postcode) and ``audit_councils`` (one per council asked: its state).

**Scope.** An IG officer of council X sees the records of requests made by X's staff, in full, and the
records naming a council record of X or searching for a person X holds (per the index), as a partial
view limited to X's part (:mod:`familyctx_gateway.audit_scope`). Being asked is not enough: every search
asks every council.

**Subjects.** A person is found by NHS number, or by given name, family name and date of birth compared
on the normalised keys (:func:`familyctx.identifiers.name_match_key`). The index links the two: a subject
row carrying the NHS number and the names and date of birth makes a query by either find records naming
the other (an NHS-number-only lookup is found by name and date of birth, and a names-only lookup by NHS
number, with no conflicting NHS number). The council records (council, local person id) so found then
find every record naming that council record, so a family-context request that named only
``{gss_code, local_person_id}`` is found too. Only the subject rows the asking IG officer's view shows
are matched on: a partial view's hidden rows neither find records nor link identities.

All times are timezone-aware UTC. Blocking calls: run them in a worker thread from async code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import READ_ONLY
from familyctx.auditlog.log import payload_bytes
from familyctx.identifiers import name_match_key
from familyctx_gateway.audit_scope import COUNCIL_COLUMN, ScopeRules, visible_row

__all__ = [
    "CSV_COLUMNS",
    "MAX_IDENTITIES",
    "AuditFilter",
    "AuditIndex",
    "AuditQueries",
    "EventPage",
    "EventView",
    "StoredRecord",
    "SubjectMatch",
    "SubjectQuery",
    "csv_cell",
    "csv_row",
    "read_only",
    "utc",
]

#: At most this many council records are taken as "the same person" for one subject query.
MAX_IDENTITIES = 500


def read_only(engine: sa.Engine) -> sa.Connection:
    """A connection for reads: on SQLite a plain (deferred) transaction, so a long read never holds the
    write lock the log's appenders take (:data:`familyctx.auditlog.engine.READ_ONLY`); as is elsewhere."""
    return engine.connect().execution_options(**READ_ONLY)


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive datetimes; every stored time is UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return utc(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class SubjectQuery:
    """One person to look for: a valid ``nhs_number`` (10 digits), and/or the normalised
    ``given_name_key`` and ``family_name_key`` with ``date_of_birth`` (all three or none)."""

    nhs_number: str | None = None
    given_name_key: str | None = None
    family_name_key: str | None = None
    date_of_birth: dt.date | None = None

    @classmethod
    def of(
        cls,
        *,
        nhs_number: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        date_of_birth: dt.date | None = None,
    ) -> SubjectQuery:
        """Fold names to their match keys. Raises ValueError unless an NHS number, or given name, family
        name and date of birth together, are given (the message names no value)."""
        named = given_name is not None or family_name is not None or date_of_birth is not None
        given = name_match_key(given_name) if given_name is not None else ""
        family = name_match_key(family_name) if family_name is not None else ""
        if named and not (given and family and date_of_birth is not None):
            raise ValueError("give given_name, family_name and date_of_birth together (or an nhs_number)")
        if nhs_number is None and not named:
            raise ValueError("give an nhs_number, or given_name, family_name and date_of_birth")
        if not named:
            return cls(nhs_number=nhs_number)
        return cls(nhs_number, given, family, date_of_birth)

    @property
    def by_name(self) -> bool:
        """True when names and date of birth are part of the query."""
        return self.date_of_birth is not None


@dataclass(frozen=True, slots=True)
class SubjectMatch:
    """How a :class:`SubjectQuery` is found in the index. A record names the person when one of its
    subject rows: matches the query directly (NHS number, or names and date of birth); or has the names
    and date of birth of a row that matched (``names``: (given key, family key, date of birth)) and no
    other NHS number (the probable-link rule of record linkage); or has an NHS number a matching row
    carried (``nhs_numbers``: for a query by names, the index linking them to an NHS number); or is one
    of the council records (``identities``: (GSS code, local person id)) those rows carry."""

    subject: SubjectQuery
    names: tuple[tuple[str, str, dt.date], ...]
    identities: tuple[tuple[str, str], ...]
    nhs_numbers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What to look for. Every field is optional; given fields must all match (AND).

    ``user``: the worker's token ``sub``; ``since``/``until``: ``occurred_at`` from (inclusive) / to
    (exclusive), aware datetimes; ``council``: GSS code, matched as the worker's organisation OR a council
    whose record the record names OR (in full views) a council asked; ``outcome``: success / partial /
    denied / error; ``record_class``: access / break_glass / ig_access.
    """

    user: str | None = None
    subject: SubjectQuery | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    purpose: str | None = None
    council: str | None = None
    outcome: str | None = None
    break_glass: bool | None = None
    record_class: str | None = None
    case_reference: str | None = None


@dataclass(frozen=True, slots=True)
class EventView:
    """One record as the index describes it, as the asking council may see it. ``event``: the
    ``audit_events`` row (column -> value, times UTC); ``subjects`` / ``councils``: its
    ``audit_subjects`` / ``audit_councils`` rows (without ``seq`` and surrogate ``id``); ``partial``:
    True when the view is limited to the asking council's part (:mod:`familyctx_gateway.audit_scope`:
    other councils' subjects and states, and the response hash, left out)."""

    seq: int
    record_class: str
    event: Mapping[str, Any]
    subjects: list[dict[str, Any]] = field(default_factory=list)
    councils: list[dict[str, Any]] = field(default_factory=list)
    partial: bool = False


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of records, newest first; ``next_before``: pass as ``before`` for the next page (None: last)."""

    events: list[EventView]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One log entry: ``payload`` (the canonical bytes that were hashed; None once redacted under
    retention), ``leaf_hash`` (32 bytes, of the whole record), ``recorded_at`` / ``redacted_at`` (UTC),
    and its index. When ``view.partial``, ``payload`` holds other councils' data: never show it whole
    (:func:`familyctx_gateway.audit_scope.partial_record`)."""

    view: EventView
    recorded_at: dt.datetime
    payload: bytes | None
    leaf_hash: bytes
    redacted_at: dt.datetime | None


class AuditIndex:
    """The audit tables the IG API reads, looked up by their agreed names in ``metadata``, and the scope
    rules over them (:class:`familyctx_gateway.audit_scope.ScopeRules`).

    Raises KeyError naming the missing table when ``metadata`` lacks one.
    """

    def __init__(self, metadata: sa.MetaData) -> None:
        tables = metadata.tables
        self.entries = tables["audit_entries"]
        self.events = tables["audit_events"]
        self.subjects = tables["audit_subjects"]
        self.councils = tables["audit_councils"]
        self.subject_council = self.subjects.c[COUNCIL_COLUMN]
        self.council_code = self.councils.c[COUNCIL_COLUMN]
        self.rules = ScopeRules(self.events, self.subjects, self.councils)

    def in_scope(self, council: str) -> sa.ColumnElement[bool]:
        """Records IG officers of ``council`` may see, in full or partially (correlated on
        ``audit_events``; see :mod:`familyctx_gateway.audit_scope`)."""
        return self.rules.in_scope(council)

    def visible_subject(self, council: str, row: Any = None) -> sa.ColumnElement[bool]:
        """Subject ``row`` (``audit_subjects`` or an alias; default the table) shows in ``council``'s
        view of its record; the query must join ``audit_events`` on ``seq``."""
        return self.rules.visible_subject(council, self.subjects if row is None else row, self.events)


_ENTRY_COLUMNS = ("entry_recorded_at", "entry_payload", "entry_leaf_hash", "entry_redacted_at")


def _insert_order(table: sa.Table) -> list[sa.ColumnElement[Any]]:
    """Order rows of an index table as written: by ``seq``, then its primary key columns."""
    return [table.c.seq, *(c for c in table.primary_key.columns if c.name != "seq")]


def _row_dict(row: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    out = {}
    for key, value in row._mapping.items():
        if key in skip:
            continue
        out[key] = utc(value) if isinstance(value, dt.datetime) else value
    return out


class AuditQueries:
    """Queries over :class:`AuditIndex` on ``engine`` (SQLAlchemy 2 Core; SQLite or PostgreSQL).

    Every method takes ``scope``: the GSS code of the asking IG officer's council (see the module
    docstring). Methods are blocking; database errors propagate as ``SQLAlchemyError``.
    """

    def __init__(self, engine: sa.Engine, index: AuditIndex) -> None:
        self.engine = engine
        self.index = index

    # -- subjects ---------------------------------------------------------------------------------

    def _named(self, given: str, family: str, born: dt.date) -> sa.ColumnElement[bool]:
        s = self.index.subjects.c
        return sa.and_(s.given_name_key == given, s.family_name_key == family, s.date_of_birth == born)

    def _direct(self, subject: SubjectQuery) -> sa.ColumnElement[bool]:
        terms = []
        if subject.nhs_number is not None:
            terms.append(self.index.subjects.c.nhs_number == subject.nhs_number)
        if subject.by_name:
            assert subject.given_name_key and subject.family_name_key and subject.date_of_birth
            terms.append(self._named(subject.given_name_key, subject.family_name_key, subject.date_of_birth))
        return sa.or_(*terms)

    def _visible_rows(self, query: sa.Select[Any], scope: str) -> sa.Select[Any]:
        """``query`` over ``audit_subjects`` limited to rows ``scope`` may see, in records it may see
        (joined to an alias of ``audit_events``, so it nests in a query over ``audit_events``)."""
        s, e = self.index.subjects, self.index.events.alias("subject_event")
        rules = self.index.rules
        return query.join_from(s, e, e.c.seq == s.c.seq).where(
            rules.in_scope(scope, e), rules.visible_subject(scope, s, e)
        )

    def resolve(self, conn: sa.Connection, subject: SubjectQuery, scope: str) -> SubjectMatch:
        """Resolve ``subject`` to what identifies them in the subject rows ``scope`` may see (see
        :class:`SubjectMatch`)."""
        s = self.index.subjects.c
        council = self.index.subject_council
        query = sa.select(
            council, s.local_person_id, s.given_name_key, s.family_name_key, s.date_of_birth, s.nhs_number
        )
        query = self._visible_rows(query, scope)
        rows = conn.execute(query.where(self._direct(subject)).distinct().limit(MAX_IDENTITIES)).all()
        names = {
            (str(r.given_name_key), str(r.family_name_key), r.date_of_birth)
            for r in rows
            if r.given_name_key and r.family_name_key and r.date_of_birth is not None
        }
        nhs_numbers: set[str] = set()
        if subject.nhs_number is not None and names:
            # Same names and date of birth, no other NHS number: the probable-link rule of linkage.py.
            no_conflict = sa.or_(s.nhs_number.is_(None), s.nhs_number == subject.nhs_number)
            found = sa.or_(*(self._named(*key) for key in sorted(names)))
            more = query.where(found, no_conflict).distinct().limit(MAX_IDENTITIES)
            rows = [*rows, *conn.execute(more).all()]
        elif subject.nhs_number is None:
            # By names: the NHS numbers the index holds for rows with those names link NHS-only lookups.
            nhs_numbers = {str(r.nhs_number) for r in rows if r.nhs_number}
            if nhs_numbers:
                more = query.where(s.nhs_number.in_(sorted(nhs_numbers))).distinct().limit(MAX_IDENTITIES)
                rows = [*rows, *conn.execute(more).all()]
        identities = sorted({(str(r[0]), str(r[1])) for r in rows if r[0] is not None and r[1] is not None})
        return SubjectMatch(
            subject, tuple(sorted(names)), tuple(identities[:MAX_IDENTITIES]), tuple(sorted(nhs_numbers))
        )

    def _subject_seqs(self, match: SubjectMatch, scope: str) -> sa.Select[Any]:
        s = self.index.subjects.c
        terms = [self._direct(match.subject)]
        if match.subject.nhs_number is not None and match.names:
            no_conflict = sa.or_(s.nhs_number.is_(None), s.nhs_number == match.subject.nhs_number)
            terms.append(sa.and_(no_conflict, sa.or_(*(self._named(*key) for key in match.names))))
        if match.nhs_numbers:
            terms.append(s.nhs_number.in_(match.nhs_numbers))
        by_council: dict[str, list[str]] = {}
        for gss, local in match.identities:
            by_council.setdefault(gss, []).append(local)
        for gss, locals_ in by_council.items():
            terms.append(sa.and_(self.index.subject_council == gss, s.local_person_id.in_(locals_)))
        return self._visible_rows(sa.select(s.seq), scope).where(sa.or_(*terms))

    # -- searching --------------------------------------------------------------------------------

    def _where(
        self, conn: sa.Connection, query: sa.Select[Any], flt: AuditFilter, scope: str
    ) -> sa.Select[Any]:
        e = self.index.events.c
        query = query.where(self.index.in_scope(scope))
        if flt.user is not None:
            query = query.where(e.user_sub == flt.user)
        if flt.since is not None:
            query = query.where(e.occurred_at >= utc(flt.since))
        if flt.until is not None:
            query = query.where(e.occurred_at < utc(flt.until))
        if flt.purpose is not None:
            query = query.where(e.purpose == flt.purpose)
        if flt.outcome is not None:
            query = query.where(e.outcome == flt.outcome)
        if flt.break_glass is not None:
            query = query.where(e.break_glass.is_(flt.break_glass))
        if flt.case_reference is not None:
            query = query.where(e.case_reference == flt.case_reference)
        if flt.record_class is not None:
            query = query.where(e.record_class == flt.record_class)
        if flt.council is not None:
            query = query.where(self.index.rules.involving(flt.council, scope))
        if flt.subject is not None:
            match = self.resolve(conn, flt.subject, scope)
            query = query.where(e.seq.in_(self._subject_seqs(match, scope)))
        return query

    def _base(self) -> sa.Select[Any]:
        return sa.select(self.index.events)

    def _views(
        self, conn: sa.Connection, rows: Sequence[Any], scope: str, skip: Sequence[str] = ()
    ) -> list[EventView]:
        seqs = [int(row.seq) for row in rows]
        full = {int(row.seq): row.organisation == scope for row in rows}
        subjects: dict[int, list[dict[str, Any]]] = {seq: [] for seq in seqs}
        councils: dict[int, list[dict[str, Any]]] = {seq: [] for seq in seqs}
        if seqs:
            s, c = self.index.subjects, self.index.councils
            for row in conn.execute(sa.select(s).where(s.c.seq.in_(seqs)).order_by(*_insert_order(s))):
                subject = _row_dict(row, ("seq", "id"))
                if visible_row(subject, scope=scope, full=full[int(row.seq)]):
                    subjects[int(row.seq)].append(subject)
            for row in conn.execute(sa.select(c).where(c.c.seq.in_(seqs)).order_by(*_insert_order(c))):
                if full[int(row.seq)] or row._mapping[COUNCIL_COLUMN] == scope:
                    councils[int(row.seq)].append(_row_dict(row, ("seq", "id")))
        views = []
        for row in rows:
            seq = int(row.seq)
            event = _row_dict(row, skip)
            if not full[seq]:
                event["response_sha256"] = None  # a hash of other councils' data too
            views.append(
                EventView(
                    seq=seq,
                    record_class=str(row.record_class),
                    event=event,
                    subjects=subjects[seq],
                    councils=councils[seq],
                    partial=not full[seq],
                )
            )
        return views

    def search(
        self, flt: AuditFilter, *, scope: str, before: int | None = None, limit: int = 50
    ) -> EventPage:
        """Records matching ``flt`` that ``scope`` may see, newest (highest ``seq``) first: at most
        ``limit``, with ``seq`` below ``before`` when given (keyset paging)."""
        seq = self.index.events.c.seq
        with read_only(self.engine) as conn:
            query = self._where(conn, self._base(), flt, scope)
            if before is not None:
                query = query.where(seq < before)
            rows = conn.execute(query.order_by(seq.desc()).limit(limit + 1)).all()
            page = self._views(conn, rows[:limit], scope)
        return EventPage(page, page[-1].seq if len(rows) > limit else None)

    def iter_search(self, flt: AuditFilter, *, scope: str, chunk: int = 500) -> Iterator[list[EventView]]:
        """Every record matching ``flt`` that ``scope`` may see, newest first, ``chunk`` at a time (each
        chunk read on its own connection: a long export holds no connection between chunks)."""
        before: int | None = None
        while True:
            page = self.search(flt, scope=scope, before=before, limit=chunk)
            if page.events:
                yield page.events
            if page.next_before is None:
                return
            before = page.next_before

    def subject_identities(self, subject: SubjectQuery, *, scope: str) -> list[tuple[str, str]]:
        """The council records ``(gss_code, local_person_id)`` taken as ``subject`` in the subject rows
        ``scope`` may see (sorted; at most :data:`MAX_IDENTITIES`)."""
        with read_only(self.engine) as conn:
            return list(self.resolve(conn, subject, scope).identities)

    # -- one record -------------------------------------------------------------------------------

    def record(self, seq: int, *, scope: str) -> StoredRecord | None:
        """The entry ``seq`` with its index, or None when there is none or ``scope`` may not see it.
        In a partial view (``view.partial``) show only
        :func:`familyctx_gateway.audit_scope.partial_record` of the payload."""
        entries = self.index.entries
        query = self._base().join_from(self.index.events, entries, entries.c.seq == self.index.events.c.seq)
        query = query.add_columns(
            entries.c.recorded_at.label("entry_recorded_at"),
            entries.c.payload.label("entry_payload"),
            entries.c.leaf_hash.label("entry_leaf_hash"),
            entries.c.redacted_at.label("entry_redacted_at"),
        )
        query = query.where(self.index.events.c.seq == seq, self.index.in_scope(scope))
        with read_only(self.engine) as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            view = self._views(conn, [row], scope, skip=_ENTRY_COLUMNS)[0]
        return StoredRecord(
            view=view,
            recorded_at=utc(row.entry_recorded_at),
            payload=payload_bytes(row.entry_payload),  # text left by a hand edit: no 500
            leaf_hash=bytes(row.entry_leaf_hash),
            redacted_at=_utc_or_none(row.entry_redacted_at),
        )


# -- CSV ------------------------------------------------------------------------------------------

#: Columns of the CSV export (``GET /v1/audit/events.csv``, subject access ``text/csv``), in order.
CSV_COLUMNS = (
    "seq",
    "record_class",
    "occurred_at",
    "user_sub",
    "user_name",
    "organisation",
    "role",
    "client",
    "purpose",
    "case_reference",
    "break_glass",
    "break_glass_id",
    "endpoint",
    "outcome",
    "http_status",
    "councils",
    "subjects",
    "request_id",
    "trace_id",
    "view",
)

#: First characters a spreadsheet may read as a formula or a control (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """``value`` as CSV cell text, safe from formula injection: text starting with = + - @, a tab or a
    carriage return gets a leading single quote (OWASP "CSV Injection"). None is ""; booleans are
    ``true``/``false``; datetimes are RFC 3339 UTC (``2026-05-01T09:00:00.123456+00:00``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _subject_text(subject: Mapping[str, Any]) -> str:
    """``returned E08000007/S-1001 nhs=9990000018 born=2014-03-05`` (keys as indexed)."""
    parts = [str(subject.get("kind") or "subject")]
    if subject.get(COUNCIL_COLUMN) or subject.get("local_person_id"):
        parts.append(f"{subject.get(COUNCIL_COLUMN) or '-'}/{subject.get('local_person_id') or '-'}")
    if subject.get("nhs_number"):
        parts.append(f"nhs={subject['nhs_number']}")
    names = " ".join(str(subject[k]) for k in ("given_name_key", "family_name_key") if subject.get(k))
    if names:
        parts.append(f"name={names}")
    if subject.get("date_of_birth"):
        parts.append(f"born={subject['date_of_birth']}")
    return " ".join(parts)


def csv_row(view: EventView) -> list[str]:
    """One CSV row (:data:`CSV_COLUMNS`) for ``view``; ``councils`` as ``GSS=state`` and ``subjects`` as
    ``GSS/local id [nhs=N]`` joined with ``; ``; ``view``: ``full`` or ``partial`` (only the asking
    council's part, :mod:`familyctx_gateway.audit_scope`). Every cell through :func:`csv_cell`."""
    e = view.event
    values: dict[str, object] = {name: e.get(name) for name in CSV_COLUMNS}
    values["seq"] = view.seq
    values["record_class"] = view.record_class
    values["view"] = "partial" if view.partial else "full"
    values["councils"] = "; ".join(f"{c.get(COUNCIL_COLUMN)}={c.get('state')}" for c in view.councils)
    values["subjects"] = "; ".join(_subject_text(s) for s in view.subjects)
    return [csv_cell(values[name]) for name in CSV_COLUMNS]
