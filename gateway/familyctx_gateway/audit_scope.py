"""Which audit records, and which parts of them, an IG officer of one council may see.

**Scope.** An IG officer of council X sees a record when:

(a) X's own staff made the request (``audit_events.organisation`` = X): the record in full;
(b) the record names a council record of X (an ``audit_subjects`` row with ``gss`` = X: a person X
    returned, or X's record named in a family-context request);
(c) the worker searched for a person X holds *per the index*: a ``searched_for`` row whose NHS number,
    or whose given name, family name and date of birth (normalised keys, and no conflicting NHS number),
    equal those of a council record of X named anywhere in the audit index. A refused or empty search
    returns nothing, so this is how a council sees lookups of its people that were denied or found
    nothing.

Being *asked* is not enough: every search asks every council, so "asked" would show each council every
search. In cases (b) and (c) the record is shown as a **partial view**: who, when, why, outcome and the
query terms (``searched_for`` subjects), X's subjects and X's council state only; other councils'
subjects, council states, involvements, datasets and the response hash are left out, and the stored
payload is withheld (it holds other councils' data). The record's leaf hash and inclusion proof still
cover the whole record, so its place in the log stays checkable against a signed tree head.

Everything an IG officer can filter or match on is what their view shows: a subject query or a council
filter looks only at the subject and council rows visible to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

__all__ = ["COUNCIL_COLUMN", "PARTIAL_VIEW_NOTE", "ScopeRules", "partial_record", "visible_row"]

#: The column of ``audit_subjects`` / ``audit_councils`` naming the council (GSS code).
COUNCIL_COLUMN = "gss"
#: Said with every partial view (API and docs).
PARTIAL_VIEW_NOTE = (
    "Partial view: this request was made by another council's staff, and the record also holds other "
    "councils' data, which is not shown. You see who, when, why, the outcome, the query terms, and your "
    "council's subjects and records only; the stored payload is withheld. The leaf hash and inclusion "
    "proof cover the whole record as stored, so its place in the log can still be checked against a "
    "signed tree head."
)


def visible_row(row: Mapping[str, Any], *, scope: str, full: bool) -> bool:
    """Whether a subject row (``kind``, ``gss``) of a record shows in ``scope``'s view of it (``full``:
    the record is shown in full)."""
    return full or row.get("kind") == "searched_for" or row.get(COUNCIL_COLUMN) == scope


class ScopeRules:
    """SQL conditions for the scope rules (module docstring) over ``events`` / ``subjects`` /
    ``councils`` (the ``audit_events``, ``audit_subjects``, ``audit_councils`` tables)."""

    def __init__(self, events: sa.Table, subjects: sa.Table, councils: sa.Table) -> None:
        self.events, self.subjects, self.councils = events, subjects, councils

    def own(self, scope: str, events: Any = None) -> sa.ColumnElement[bool]:
        """Records of requests made by ``scope``'s staff (shown in full)."""
        e = self.events if events is None else events
        return e.c.organisation == scope

    def holds(self, scope: str, row: Any) -> sa.ColumnElement[bool]:
        """The ``searched_for`` subject ``row`` (an alias of ``audit_subjects``) names a person ``scope``
        holds per the index: same NHS number, or same name keys and date of birth with no other NHS
        number, as a council record of ``scope``."""
        held = self.subjects.alias("held_by_scope")
        same_person = sa.or_(
            sa.and_(row.c.nhs_number.is_not(None), held.c.nhs_number == row.c.nhs_number),
            sa.and_(
                row.c.given_name_key.is_not(None),
                row.c.family_name_key.is_not(None),
                row.c.date_of_birth.is_not(None),
                held.c.given_name_key == row.c.given_name_key,
                held.c.family_name_key == row.c.family_name_key,
                held.c.date_of_birth == row.c.date_of_birth,
                sa.or_(
                    row.c.nhs_number.is_(None),
                    held.c.nhs_number.is_(None),
                    held.c.nhs_number == row.c.nhs_number,
                ),
            ),
        )
        return sa.exists().where(
            held.c[COUNCIL_COLUMN] == scope, held.c.local_person_id.is_not(None), same_person
        )

    def in_scope(self, scope: str, events: Any = None) -> sa.ColumnElement[bool]:
        """Records ``scope``'s IG officers may see, in full or partially (correlated on ``events``: the
        ``audit_events`` table or an alias of it)."""
        e = self.events if events is None else events
        seq = e.c.seq
        mine = self.subjects.alias("scope_mine")
        sought = self.subjects.alias("scope_sought")
        return sa.or_(
            self.own(scope, e),
            sa.exists().where(mine.c.seq == seq, mine.c[COUNCIL_COLUMN] == scope),
            sa.exists().where(
                sought.c.seq == seq, sought.c.kind == "searched_for", self.holds(scope, sought)
            ),
        )

    def visible_subject(self, scope: str, row: Any, events: Any) -> sa.ColumnElement[bool]:
        """Subject ``row`` shows in ``scope``'s view of its record (``events``: that record's row)."""
        return sa.or_(self.own(scope, events), row.c.kind == "searched_for", row.c[COUNCIL_COLUMN] == scope)

    def involving(self, council: str, scope: str) -> sa.ColumnElement[bool]:
        """Records, as ``scope`` sees them, that involve ``council``: made by its staff, or naming one
        of its records, or (in full views only) asking it."""
        seq = self.events.c.seq
        named, asked = self.subjects.alias("filter_named"), self.councils.alias("filter_asked")
        return sa.or_(
            self.events.c.organisation == council,
            sa.exists().where(
                named.c.seq == seq,
                named.c[COUNCIL_COLUMN] == council,
                sa.or_(self.own(scope), named.c.kind == "searched_for", named.c[COUNCIL_COLUMN] == scope),
            ),
            sa.exists().where(
                asked.c.seq == seq,
                asked.c[COUNCIL_COLUMN] == council,
                sa.or_(self.own(scope), asked.c[COUNCIL_COLUMN] == scope),
            ),
        )


def partial_record(envelope: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """``scope``'s part of a stored envelope (``{"class", "record", "recorded_at"}``, record shape in
    :mod:`familyctx_gateway.audit_record`): who, when (request), why, the query, the ``searched_for``
    subjects and ``scope``'s own subjects, involvements, datasets and council state; nothing else."""
    record = envelope.get("record") or {}
    what = record.get("what") or {}
    outcome = record.get("outcome") or {}

    def mine(items: Any) -> list[Any]:
        return [i for i in items or [] if isinstance(i, Mapping) and i.get("gss_code") == scope]

    part: dict[str, Any] = {
        "v": record.get("v"),
        "record_class": record.get("record_class"),
        "request": record.get("request"),
        "who": record.get("who"),
        "why": record.get("why"),
        "whose": [
            s
            for s in record.get("whose") or []
            if isinstance(s, Mapping) and (s.get("kind") == "searched_for" or s.get("gss_code") == scope)
        ],
        "what": {
            "query": what.get("query"),
            "involvements": mine(what.get("involvements")),
            "datasets": mine(what.get("datasets")),
        },
        "outcome": {
            "result": outcome.get("result"),
            "http_status": outcome.get("http_status"),
            "councils": mine(outcome.get("councils")),
        },
    }
    return {"class": envelope.get("class"), "recorded_at": envelope.get("recorded_at"), "record": part}
