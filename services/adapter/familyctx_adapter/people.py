"""Reading people from the warehouse: the FindPeople strategies and the Person message.

Strategies (each an indexed lookup; see :mod:`.indexes`), unioned and ranked:

* NHS number (valid only) on the normalised ``pers_single_unique_id`` (SSD PERS013A);
* local person id (SSD PERS001A);
* date of birth (PERS005A), also the day/month-swapped date when both are <= 12, then names scored
  in Python with rapidfuzz (Jaro-Winkler on folded names, see :func:`.normalise.match_key`);
* family name (folded) when there is no date of birth, narrowed by given name and postcode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from familycontext.v1 import types_pb2
from rapidfuzz.distance import JaroWinkler

from familyctx.identifiers import normalise_nhs_number, normalise_postcode, parse_date, postcode_sector
from familyctx_adapter.normalise import (
    address_lines,
    date_message,
    display_name,
    is_open,
    match_key,
    sex_of,
)
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.warehouse import Warehouse, nhs_key_expression, surname_key_expression

__all__ = ["PersonReader", "ScoredRow"]

#: Most rows a family-name-only lookup reads before narrowing in Python.
NAME_ONLY_ROW_LIMIT = 2000
#: Jaro-Winkler similarity at which one name "strongly agrees".
STRONG_NAME = 0.88
#: Lowest mean similarity of the names given for a date-of-birth candidate to be kept.
PLAUSIBLE_MEAN = 0.6


@dataclass(slots=True)
class ScoredRow:
    """A person row with its ranking score (0..1, higher is better)."""

    row: Mapping[str, Any]
    score: float


def _sim(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return float(JaroWinkler.normalized_similarity(a, b))


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class PersonReader:
    """People in one warehouse: lookups by identifier and conversion to ``types_pb2.Person``."""

    def __init__(self, warehouse: Warehouse, *, gss_code: str) -> None:
        self.w = warehouse
        self.gss_code = gss_code
        self._person_cols = warehouse.cols("person")
        self._sqlite = warehouse.engine.dialect.name == "sqlite"

    # --- lookups -----------------------------------------------------------------------------------
    def _select(
        self, conn: sa.Connection, where: sa.ColumnElement[bool], limit: int | None = None
    ) -> list[Any]:
        stmt = sa.select(*self._person_cols).where(where)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(conn.execute(stmt).mappings())

    def by_ids(self, conn: sa.Connection, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """Person rows for local ids (any order; unknown ids absent)."""
        rows: list[Mapping[str, Any]] = []
        for chunk in _chunks(list(ids)):
            rows.extend(self._select(conn, self.w.c("person", "id").in_(list(chunk))))
        return rows

    def _date_bounds(self, d: dt.date) -> tuple[Any, Any]:
        nxt = d + dt.timedelta(days=1)
        if self._sqlite:  # DateTime is ISO text in SQLite; compare as text so "2014-03-05" rows match too
            return d.isoformat(), nxt.isoformat()
        return dt.datetime(d.year, d.month, d.day), dt.datetime(nxt.year, nxt.month, nxt.day)

    def search(self, conn: sa.Connection, q: PersonSearch) -> list[ScoredRow]:
        """Every plausible candidate for ``q`` with a score, best first (not yet limited)."""
        found: dict[str, ScoredRow] = {}

        def add(rows: Iterable[Mapping[str, Any]], score: float) -> None:
            for row in rows:
                key, value = str(row["id"]), float(row.get("_score", score))
                if key not in found or found[key].score < value:
                    found[key] = ScoredRow(row, value)

        if q.nhs_number:
            rows = self._select(conn, nhs_key_expression(self.w.c("person", "nhs_number")) == q.nhs_number)
            # The stored value must itself be valid: a placeholder never matches.
            add((r for r in rows if normalise_nhs_number(r["nhs_number"]) == q.nhs_number), 1.0)
        if q.local_person_id:
            add(self._select(conn, self.w.c("person", "id") == q.local_person_id), 1.0)
        if q.date_of_birth:
            add(self._by_date_of_birth(conn, q), 0.0)
        elif q.family_name:
            add(self._by_family_name(conn, q), 0.0)
        ranked = sorted(found.values(), key=lambda s: (-s.score, str(s.row["id"])))
        return ranked

    def _by_date_of_birth(self, conn: sa.Connection, q: PersonSearch) -> list[Mapping[str, Any]]:
        assert q.date_of_birth is not None
        dates = [(q.date_of_birth, 0.0)]
        d = q.date_of_birth
        if d.day <= 12 and d.month <= 12 and d.day != d.month:
            dates.append((dt.date(d.year, d.day, d.month), 0.05))
        dob_col = self.w.c("person", "date_of_birth")
        scored: list[Mapping[str, Any]] = []
        for candidate_date, penalty in dates:
            lo, hi = self._date_bounds(candidate_date)
            for row in self._select(conn, sa.and_(dob_col >= lo, dob_col < hi)):
                score = self._name_score(row, q)
                if score is not None:
                    scored.append({**row, "_score": max(0.0, score - penalty)})
        return scored

    def _name_score(self, row: Mapping[str, Any], q: PersonSearch) -> float | None:
        """Score of a date-of-birth candidate from its names; None when implausible."""
        qg, qf = match_key(q.given_name), match_key(q.family_name)
        if not qg and not qf:
            return 0.8
        rg, rf = match_key(row["given_name"]), match_key(row["family_name"])
        best: float | None = None
        for g, f in ((rg, rf), (rf, rg)):  # given and family names recorded the wrong way round
            sims = [
                s for s in ((_sim(qg, g) if qg else None), (_sim(qf, f) if qf else None)) if s is not None
            ]
            mean = sum(sims) / len(sims)
            if max(sims) >= STRONG_NAME and mean >= PLAUSIBLE_MEAN:
                score = 0.5 + 0.45 * mean - (0.05 if (g, f) == (rf, rg) else 0.0)
                best = score if best is None else max(best, score)
        return best

    def _by_family_name(self, conn: sa.Connection, q: PersonSearch) -> list[Mapping[str, Any]]:
        keys = {
            match_key(q.family_name),
            q.family_name.replace("'", "").replace("-", "").replace(" ", "").lower(),
        }
        keys.discard("")
        where = surname_key_expression(self.w.c("person", "family_name")).in_(sorted(keys))
        rows = self._select(conn, where, limit=NAME_ONLY_ROW_LIMIT)
        qg = match_key(q.given_name)
        kept = []
        for row in rows:
            gs = _sim(qg, match_key(row["given_name"])) if qg else 1.0
            if qg and gs < STRONG_NAME:
                continue
            kept.append({**row, "_score": 0.5 + 0.4 * gs})
        if q.postcode and kept:
            current = self.current_addresses(conn, [str(r["id"]) for r in kept])
            sector = postcode_sector(q.postcode)
            narrowed = []
            for row in kept:
                addr = current.get(str(row["id"]))
                pc = normalise_postcode(addr["postcode"]) if addr else None
                if pc == q.postcode:
                    narrowed.append({**row, "_score": row["_score"] + 0.05})
                elif pc and postcode_sector(pc) == sector:
                    narrowed.append(row)
            kept = narrowed
        return kept

    # --- addresses and messages ----------------------------------------------------------------------
    def current_addresses(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The current address row per person id: end date missing/sentinel/future, latest start."""
        if not ids:
            return {}
        today = dt.date.today()
        best: dict[str, tuple[dt.date, Mapping[str, Any]]] = {}
        cols = self.w.cols("address")
        for chunk in _chunks(list(ids)):
            stmt = sa.select(*cols).where(self.w.c("address", "person_id").in_(list(chunk)))
            for row in conn.execute(stmt).mappings():
                if not is_open(row["end_date"], today=today):
                    continue
                start = parse_date(row["start_date"]) or dt.date.min
                pid = str(row["person_id"])
                if pid not in best or start >= best[pid][0]:
                    best[pid] = (start, row)
        return {pid: row for pid, (_, row) in best.items()}

    @staticmethod
    def to_sex(row: Mapping[str, Any]) -> int:
        """The row's sex as ``types_pb2.Sex``."""
        return sex_of(row["sex"])

    def to_message(
        self, row: Mapping[str, Any], address: Mapping[str, Any] | None, provenance: types_pb2.Provenance
    ) -> types_pb2.Person:
        """A ``types_pb2.Person`` from a person row, normalised (valid NHS number or empty, names for
        display, sentinel dates unset, postcode canonical)."""
        person = types_pb2.Person(
            local_person_id=str(row["id"]),
            nhs_number=normalise_nhs_number(row["nhs_number"]) or "",
            given_name=display_name(row["given_name"]),
            family_name=display_name(row["family_name"]),
            sex=sex_of(row["sex"]),  # type: ignore[arg-type]
            provenance=provenance,
        )
        for field, key in (
            ("date_of_birth", "date_of_birth"),
            ("expected_date_of_birth", "expected_date_of_birth"),
            ("date_of_death", "date_of_death"),
        ):
            value = date_message(row[key])
            if value is not None:
                getattr(person, field).CopyFrom(value)
        if address is not None:
            lines, uprn = address_lines(address["detail_json"])
            msg = types_pb2.Address(
                lines=lines, postcode=normalise_postcode(address["postcode"]) or "", uprn=uprn
            )
            start = date_message(address["start_date"])
            if start is not None:
                msg.start_date.CopyFrom(start)
            person.address.CopyFrom(msg)
        return person
