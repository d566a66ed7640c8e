"""Flags for IG review: patterns in the audit log that may be misuse (the pilots' DPIA's top risk is a
worker looking up relatives or acquaintances for personal reasons).

- ``shared_family_name``: a worker's request named a subject (searched for or returned) whose family
  name matches the worker's own, compared on the normalised keys
  (:func:`familyctx.identifiers.name_match_key`). The worker's family name comes from the display name
  in their access token (``name``): the last word, or the last words of a name of three or more words
  ("Anne de la Cruz" is checked as "de la Cruz", "la Cruz" and "Cruz"). Double-barrelled names match on
  any part, either way round: a worker "Sam Smith-Jones" is flagged looking up a "Jones" or a "Smith",
  and a worker "Sam Jones" looking up a "Smith-Jones" or a "Smith Jones" (the subject's family name as
  the record holds it, split at hyphens and spaces; each part folded to its key). A shared *address*
  is not flagged: the gateway holds no worker addresses, and this flag does not invent them.
- ``new_case_reference``: the first request in which a worker used a case reference (no earlier record
  of that worker carries it), so an IG officer can check that the case exists and is theirs.
- ``volume``: a worker whose requests on one UTC day were more lookups (requests with a subject searched
  for, whether or not anything was found) than the configured threshold, or named more distinct council
  records (council, local person id) than it.

Flags are read over records the asking IG officer may see (:meth:`AuditIndex.in_scope`), on the subject
rows their view of each record shows (:mod:`familyctx_gateway.audit_scope`); "earlier records" of a case
reference are looked for across the whole log.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from familyctx.identifiers import name_match_key
from familyctx_gateway.audit_queries import AuditIndex, read_only, utc

__all__ = [
    "MAX_FLAGS",
    "Flag",
    "FlagKind",
    "FlagReport",
    "family_name_part_keys",
    "find_flags",
    "worker_family_name_keys",
]

FlagKind = Literal["shared_family_name", "new_case_reference", "volume"]

#: At most this many flags of each kind are returned (the report says when more were left off).
MAX_FLAGS = 1000
_USERS_PER_QUERY = 200
#: Where a double-barrelled family name divides: spaces, hyphens and dashes.
_NAME_PARTS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014]+")


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag. ``seq``: the record flagged (None for ``volume``, which flags a worker's day);
    ``occurred_at``: the record's time, or the start (UTC midnight) of the day for ``volume``;
    ``subjects``: the subject rows that raised it (``shared_family_name``); ``count`` / ``lookups`` /
    ``threshold``: distinct council records named that day, requests with a subject searched for that
    day, and the configured limit (``volume``)."""

    kind: FlagKind
    user_sub: str
    user_name: str
    occurred_at: dt.datetime
    seq: int | None = None
    case_reference: str | None = None
    subjects: list[dict[str, Any]] = field(default_factory=list)
    count: int | None = None
    threshold: int | None = None
    lookups: int | None = None


@dataclass(frozen=True, slots=True)
class FlagReport:
    """The flags found, newest first within each kind; ``truncated``: kinds with more than
    :data:`MAX_FLAGS` flags (the rest were left off)."""

    flags: list[Flag]
    truncated: list[FlagKind]


def family_name_part_keys(name: str) -> set[str]:
    """Match keys of a family name and of each of its parts (split at spaces, hyphens and dashes):
    "Smith-Jones" -> {"smithjones", "smith", "jones"}; "O'Neill" -> {"oneill"}. Empty keys are left out."""
    parts = [name, *_NAME_PARTS.split(name)]
    return {key for key in map(name_match_key, parts) if key}


def worker_family_name_keys(name: str) -> set[str]:
    """Match keys a worker's family name may have, from their display ``name``: the key of the last
    word and, for names of three or more words, of each run of last words after the first word, and of
    each hyphenated part of the last word ("Sam Smith-Jones" -> smithjones, smith, jones). A one-word
    name gives its own keys; an empty name gives none."""
    words = name.split()
    if len(words) <= 1:
        return family_name_part_keys(name) if name.strip() else set()
    runs = (" ".join(words[i:]) for i in range(1, len(words)))
    keys = {key for key in map(name_match_key, runs) if key}
    return keys | {key for key in map(name_match_key, _NAME_PARTS.split(words[-1])) if key}


def _confirmed(payloads: dict[int, bytes | None], seq: int, row_key: str, worker_keys: Iterable[str]) -> bool:
    """Whether a subject of record ``seq`` with family name key ``row_key`` has a family name (as
    recorded in the payload) with a part whose key is one of ``worker_keys``."""
    payload = payloads.get(seq)
    if payload is None:  # redacted under retention: the parts cannot be told
        return False
    whose = json.loads(payload).get("record", {}).get("whose") or []
    wanted = set(worker_keys)
    for subject in whose:
        family = subject.get("family_name") if isinstance(subject, dict) else None
        if isinstance(family, str) and name_match_key(family) == row_key:
            if family_name_part_keys(family) & wanted:
                return True
    return False


def _day(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The UTC calendar day of a stored time, as text ``YYYY-MM-DD`` (SQLite stores UTC text)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", column)


class _Finder:
    def __init__(
        self, conn: sa.Connection, index: AuditIndex, scope: str, since: dt.datetime, until: dt.datetime
    ) -> None:
        self.conn, self.index, self.scope = conn, index, scope
        e = index.events.c
        self.window = sa.and_(index.in_scope(scope), e.occurred_at >= utc(since), e.occurred_at < utc(until))

    def shared_family_name(self) -> list[Flag]:
        e, s = self.index.events.c, self.index.subjects
        users = self.conn.execute(sa.select(e.user_sub, e.user_name).where(self.window).distinct()).all()
        keys_by_user: dict[str, set[str]] = {}
        for sub, name in users:
            keys_by_user.setdefault(str(sub), set()).update(worker_family_name_keys(str(name or "")))
        pairs = [(sub, sorted(keys)) for sub, keys in keys_by_user.items() if keys]
        hits: dict[int, Flag] = {}
        subject_columns = [c.label(f"subject_{c.name}") for c in s.c if c.name not in ("seq", "id")]
        for start in range(0, len(pairs), _USERS_PER_QUERY):
            chunk = pairs[start : start + _USERS_PER_QUERY]
            # Equal keys, or a key containing a worker's key (a double-barrelled subject: confirmed below
            # on the family name as recorded).
            match = sa.or_(
                *(
                    sa.and_(
                        e.user_sub == sub,
                        sa.or_(*(s.c.family_name_key.contains(k, autoescape=True) for k in keys)),
                    )
                    for sub, keys in chunk
                )
            )
            query = (
                sa.select(e.seq, e.user_sub, e.user_name, e.occurred_at, e.case_reference, *subject_columns)
                .join_from(self.index.events, s, s.c.seq == e.seq)
                .where(self.window, self.index.visible_subject(self.scope), match)
                .order_by(e.seq.desc())
                .limit(MAX_FLAGS * 4 + 1)
            )
            rows = [dict(row._mapping) for row in self.conn.execute(query)]
            keys_of = dict(chunk)
            unsure = {
                int(r["seq"]) for r in rows if r["subject_family_name_key"] not in keys_of[str(r["user_sub"])]
            }
            payloads = self._payloads(unsure)
            for values in rows:
                seq, key = int(values["seq"]), str(values["subject_family_name_key"])
                worker_keys = keys_of[str(values["user_sub"])]
                if key not in worker_keys and not _confirmed(payloads, seq, key, worker_keys):
                    continue
                flag = hits.get(seq) or Flag(
                    "shared_family_name",
                    str(values["user_sub"]),
                    str(values["user_name"]),
                    utc(values["occurred_at"]),
                    seq=seq,
                    case_reference=values["case_reference"],
                )
                hits[seq] = flag
                flag.subjects.append(
                    {k.removeprefix("subject_"): v for k, v in values.items() if k.startswith("subject_")}
                )
        return sorted(hits.values(), key=lambda f: f.seq or 0, reverse=True)

    def _payloads(self, seqs: set[int]) -> dict[int, bytes | None]:
        entries = self.index.entries
        out: dict[int, bytes | None] = {}
        ordered = sorted(seqs)
        for start in range(0, len(ordered), 500):
            query = sa.select(entries.c.seq, entries.c.payload).where(
                entries.c.seq.in_(ordered[start : start + 500])
            )
            for seq, payload in self.conn.execute(query):
                out[int(seq)] = bytes(payload) if payload is not None else None
        return out

    def new_case_reference(self) -> list[Flag]:
        e = self.index.events
        earlier = e.alias("earlier")
        before = sa.exists().where(
            earlier.c.user_sub == e.c.user_sub,
            earlier.c.case_reference == e.c.case_reference,
            earlier.c.seq < e.c.seq,
        )
        query = (
            sa.select(e.c.seq, e.c.user_sub, e.c.user_name, e.c.occurred_at, e.c.case_reference)
            .where(self.window, e.c.case_reference.is_not(None), e.c.case_reference != "", ~before)
            .order_by(e.c.seq.desc())
            .limit(MAX_FLAGS + 1)
        )
        return [
            Flag(
                "new_case_reference",
                str(row.user_sub),
                str(row.user_name),
                utc(row.occurred_at),
                seq=int(row.seq),
                case_reference=row.case_reference,
            )
            for row in self.conn.execute(query)
        ]

    def volume(self, threshold: int) -> list[Flag]:
        e, s = self.index.events.c, self.index.subjects.c
        day = _day(e.occurred_at, self.conn.dialect.name).label("day")
        record = self.index.subject_council + sa.literal("/") + s.local_person_id
        distinct = sa.func.count(sa.distinct(record)).label("records")
        joined = sa.select(e.user_sub, sa.func.max(e.user_name).label("user_name"), day).join_from(
            self.index.events, self.index.subjects, s.seq == e.seq
        )
        records = (
            joined.add_columns(distinct)
            .where(self.window, self.index.visible_subject(self.scope))
            .where(s.local_person_id.is_not(None), self.index.subject_council.is_not(None))
            .group_by(e.user_sub, day)
        )
        # Lookups: requests with a subject searched for, found or not (a refused or empty search too).
        lookups_count = sa.func.count(sa.distinct(e.seq)).label("lookups")
        lookups = (
            joined.add_columns(lookups_count)
            .where(self.window, s.kind == "searched_for")
            .group_by(e.user_sub, day)
        )
        days: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.conn.execute(records.having(distinct > threshold)):
            days[(str(row.user_sub), str(row.day))] = {"name": row.user_name, "records": int(row.records)}
        for row in self.conn.execute(lookups.having(lookups_count > threshold)):
            found = days.setdefault((str(row.user_sub), str(row.day)), {"name": row.user_name})
            found["lookups"] = int(row.lookups)
        missing = [key for key, v in days.items() if "records" not in v or "lookups" not in v]
        self._fill_counts(days, missing, records, lookups)
        flags = [
            Flag(
                "volume",
                sub,
                str(v["name"]),
                dt.datetime.fromisoformat(day_text).replace(tzinfo=dt.UTC),
                count=v.get("records", 0),
                lookups=v.get("lookups", 0),
                threshold=threshold,
            )
            for (sub, day_text), v in days.items()
        ]
        flags.sort(key=lambda f: (-f.occurred_at.timestamp(), f.user_sub))
        return flags[: MAX_FLAGS + 1]

    def _fill_counts(
        self,
        days: dict[tuple[str, str], dict[str, Any]],
        missing: list[tuple[str, str]],
        records: sa.Select[Any],
        lookups: sa.Select[Any],
    ) -> None:
        """The other measure (records or lookups) of the flagged days that crossed only one threshold."""
        users = sorted({sub for sub, _ in missing})
        if not users:
            return
        e = self.index.events.c
        for start in range(0, len(users), _USERS_PER_QUERY):
            chunk = users[start : start + _USERS_PER_QUERY]
            for name, query in (("records", records), ("lookups", lookups)):
                for row in self.conn.execute(query.where(e.user_sub.in_(chunk))):
                    key = (str(row.user_sub), str(row.day))
                    if key in days and name not in days[key]:
                        days[key][name] = int(getattr(row, name))


def find_flags(
    engine: sa.Engine,
    index: AuditIndex,
    *,
    scope: str,
    since: dt.datetime,
    until: dt.datetime,
    daily_records_threshold: int,
    kinds: Sequence[FlagKind] = ("shared_family_name", "new_case_reference", "volume"),
) -> FlagReport:
    """Flags of ``kinds`` over records ``scope`` (GSS code) may see, that occurred in [``since``,
    ``until``) (aware datetimes). ``daily_records_threshold``: a worker's day is flagged when it named
    more than this many distinct council records. Blocking; database errors propagate."""
    flags: list[Flag] = []
    truncated: list[FlagKind] = []
    with read_only(engine) as conn:
        finder = _Finder(conn, index, scope, since, until)
        for kind in kinds:
            found = finder.volume(daily_records_threshold) if kind == "volume" else getattr(finder, kind)()
            if len(found) > MAX_FLAGS:
                truncated.append(kind)
            flags.extend(found[:MAX_FLAGS])
    return FlagReport(flags, truncated)
