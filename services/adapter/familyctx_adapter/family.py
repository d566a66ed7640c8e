"""Relationships: who is related to whom, from person_relationships, ssd_mother and ssd_family.

person_relationships rows mean "related_person is <code> of person" and may be recorded one way only;
the inverse is inferred (MOTHER of a child => the child is CHILD of the mother). ssd_mother rows give
mother and child; ssd_family rows (not in mosaic) give household members where nothing finer is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from familycontext.v1 import types_pb2

from familyctx_adapter.normalise import clean_text
from familyctx_adapter.warehouse import Warehouse

__all__ = ["Edge", "RelationshipReader", "best_edges", "relationship_from_code"]

R = types_pb2

# code -> (type of related person relative to person, description, inverse type, inverse description
# by sex of the *person* (female, male, other)).
_CODES: Mapping[str, tuple[int, str, int, tuple[str, str, str]]] = {
    "MOTHER": (R.RELATIONSHIP_TYPE_PARENT, "Mother", R.RELATIONSHIP_TYPE_CHILD, ("Daughter", "Son", "Child")),
    "FATHER": (R.RELATIONSHIP_TYPE_PARENT, "Father", R.RELATIONSHIP_TYPE_CHILD, ("Daughter", "Son", "Child")),
    "STEPMOTHER": (
        R.RELATIONSHIP_TYPE_STEP_PARENT,
        "Stepmother",
        R.RELATIONSHIP_TYPE_STEP_CHILD,
        ("Stepdaughter", "Stepson", "Stepchild"),
    ),
    "STEPFATHER": (
        R.RELATIONSHIP_TYPE_STEP_PARENT,
        "Stepfather",
        R.RELATIONSHIP_TYPE_STEP_CHILD,
        ("Stepdaughter", "Stepson", "Stepchild"),
    ),
    "SIBLING": (
        R.RELATIONSHIP_TYPE_SIBLING,
        "Sibling",
        R.RELATIONSHIP_TYPE_SIBLING,
        ("Sister", "Brother", "Sibling"),
    ),
    "HALFSIBLING": (
        R.RELATIONSHIP_TYPE_HALF_SIBLING,
        "Half-sibling",
        R.RELATIONSHIP_TYPE_HALF_SIBLING,
        ("Half-sister", "Half-brother", "Half-sibling"),
    ),
    "PARTNER": (R.RELATIONSHIP_TYPE_PARTNER, "Partner", R.RELATIONSHIP_TYPE_PARTNER, ("Partner",) * 3),
    "GRANDMOTHER": (
        R.RELATIONSHIP_TYPE_GRANDPARENT,
        "Grandmother",
        R.RELATIONSHIP_TYPE_GRANDCHILD,
        ("Granddaughter", "Grandson", "Grandchild"),
    ),
    "GRANDFATHER": (
        R.RELATIONSHIP_TYPE_GRANDPARENT,
        "Grandfather",
        R.RELATIONSHIP_TYPE_GRANDCHILD,
        ("Granddaughter", "Grandson", "Grandchild"),
    ),
    "SON": (R.RELATIONSHIP_TYPE_CHILD, "Son", R.RELATIONSHIP_TYPE_PARENT, ("Mother", "Father", "Parent")),
    "DAUGHTER": (
        R.RELATIONSHIP_TYPE_CHILD,
        "Daughter",
        R.RELATIONSHIP_TYPE_PARENT,
        ("Mother", "Father", "Parent"),
    ),
}
_UNKNOWN = (
    R.RELATIONSHIP_TYPE_OTHER_RELATIVE,
    "Relative",
    R.RELATIONSHIP_TYPE_OTHER_RELATIVE,
    ("Relative",) * 3,
)


def relationship_from_code(code: str) -> tuple[int, str, int, tuple[str, str, str]]:
    """Map a person_relationships code (MOTHER, SIBLING...) to contract types, with its inverse."""
    return _CODES.get(clean_text(code).upper().replace("-", "").replace(" ", "").replace("_", ""), _UNKNOWN)


@dataclass(frozen=True, slots=True)
class Edge:
    """ "related is <rtype> of person", read from ``table`` row ``record_id`` (or inferred from it)."""

    person: str
    related: str
    rtype: int
    description: str
    table_key: str  # logical table
    record_id: str


class RelationshipReader:
    """Reads relationship edges touching a set of person ids, with inverses inferred."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.w = warehouse

    def edges(self, conn: sa.Connection, ids: Sequence[str], sex_of: Callable[[str], int]) -> list[Edge]:
        """Every edge with at least one end in ``ids`` (both directions). ``sex_of(id)`` picks the
        inverse description ("Son"/"Daughter"); an unknown person gives the neutral word."""
        out: list[Edge] = []
        if not ids:
            return out
        id_list = list(ids)
        if self.w.has("relationship"):
            pid, rid = self.w.c("relationship", "person_id"), self.w.c("relationship", "related_id")
            stmt = sa.select(*self.w.cols("relationship")).where(sa.or_(pid.in_(id_list), rid.in_(id_list)))
            for row in conn.execute(stmt).mappings():
                out.extend(self._from_relationship(row, sex_of))
        if self.w.has("mother"):
            mid, cid = self.w.c("mother", "mother_id"), self.w.c("mother", "child_id")
            stmt = sa.select(*self.w.cols("mother")).where(sa.or_(mid.in_(id_list), cid.in_(id_list)))
            for row in conn.execute(stmt).mappings():
                mother, child = clean_text(row["mother_id"]), clean_text(row["child_id"])
                if mother and child:
                    out.append(
                        Edge(child, mother, R.RELATIONSHIP_TYPE_PARENT, "Mother", "mother", str(row["id"]))
                    )
                    out.append(
                        Edge(
                            mother,
                            child,
                            R.RELATIONSHIP_TYPE_CHILD,
                            _child_word(sex_of(child)),
                            "mother",
                            str(row["id"]),
                        )
                    )
        if self.w.has("family"):
            out.extend(self._household(conn, id_list))
        return out

    def _from_relationship(self, row: Mapping[Any, Any], sex_of: Callable[[str], int]) -> Iterable[Edge]:
        person, related = clean_text(row["person_id"]), clean_text(row["related_id"])
        if not person or not related or person == related:
            return []
        rtype, word, inverse, inverse_words = relationship_from_code(row["code"])
        desc = clean_text(row["description"]) or word
        record = str(row["id"])
        inverse_word = inverse_words[_sex_index(sex_of(person))]
        return [
            Edge(person, related, rtype, desc, "relationship", record),
            Edge(related, person, inverse, inverse_word, "relationship", record),
        ]

    def _household(self, conn: sa.Connection, ids: list[str]) -> list[Edge]:
        fam, pid = self.w.c("family", "family_id"), self.w.c("family", "person_id")
        families = sa.select(fam).where(pid.in_(ids)).scalar_subquery()
        stmt = sa.select(*self.w.cols("family")).where(fam.in_(families))
        members: dict[str, list[tuple[str, str]]] = {}
        for row in conn.execute(stmt).mappings():
            person = clean_text(row["person_id"])
            if person:
                members.setdefault(clean_text(row["family_id"]), []).append((person, str(row["id"])))
        wanted = set(ids)
        out = []
        for people in members.values():
            if len(people) > 50:  # a mis-keyed "family" of hundreds is not a household
                continue
            for a, rec in people:
                for b, _ in people:
                    if a != b and (a in wanted or b in wanted):
                        out.append(
                            Edge(
                                a, b, R.RELATIONSHIP_TYPE_HOUSEHOLD_MEMBER, "Household member", "family", rec
                            )
                        )
        return out


def _sex_index(sex: int) -> int:
    return 0 if sex == R.SEX_FEMALE else 1 if sex == R.SEX_MALE else 2


def _child_word(sex: int) -> str:
    return ("Daughter", "Son", "Child")[_sex_index(sex)]


def best_edges(edges: Iterable[Edge], people: set[str]) -> list[Edge]:
    """One edge per ordered pair with both ends in ``people``: a specific type beats HOUSEHOLD_MEMBER,
    a recorded relationship beats an ssd_mother/ssd_family one."""
    rank = {"relationship": 0, "mother": 1, "family": 2}
    chosen: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if e.person not in people or e.related not in people:
            continue
        key = (e.person, e.related)
        current = chosen.get(key)
        if current is None or rank[e.table_key] < rank[current.table_key]:
            chosen[key] = e
    return sorted(chosen.values(), key=lambda e: (e.person, e.related))
