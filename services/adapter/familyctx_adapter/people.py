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

from familyctx.identifiers import normalise_nhs_number, normalise_postcode, postcode_sector
from familyctx_adapter.normalise import (
    address_lines,
    date_message,
    display_name,
    is_open,
    match_key,
    sex_of,
    to_date,
)
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.warehouse import Warehouse, nhs_key_expression, surname_key_expression

__all__ = ["PersonReader", "PersonRecord"]

#: Most rows a family-name-only lookup reads before narrowing in Python.
NAME_ONLY_ROW_LIMIT = 2000
#: Jaro-Winkler similarity at which one name "strongly agrees".
STRONG_NAME = 0.88
#: Lowest mean similarity of the names given for a date-of-birth candidate to be kept.
PLAUSIBLE_MEAN = 0.6


@dataclass(slots=True)
class PersonRecord:
    """A person row (logical column names), the current address row (or None) and a ranking score."""

    row: dict[str, Any]
    address: dict[str, Any] | None = None
    score: float = 0.0
    #: False when read without its addresses (broad searches); :meth:`PersonReader.load_addresses` fills it.
    address_loaded: bool = True

    @property
    def id(self) -> str:
        return str(self.row["id"])


def _sim(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return float(JaroWinkler.normalized_similarity(a, b))


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class PersonReader:
    """People in one warehouse: lookups by identifier and conversion to ``types_pb2.Person``.

    Statements are built once, with bound parameters, and join the person to their addresses so that
    one round trip gives demographics and the current address.
    """

    def __init__(self, warehouse: Warehouse, *, gss_code: str) -> None:
        self.w = warehouse
        self.gss_code = gss_code
        self._sqlite = warehouse.engine.dialect.name == "sqlite"
        person, address = warehouse.t("person"), warehouse.t("address")
        pid = warehouse.c("person", "id")
        cols = warehouse.cols("person") + [
            c.label(f"addr_{c.name}")
            for c in warehouse.cols("address")  # type: ignore[attr-defined]
        ]
        base = sa.select(*cols).select_from(
            person.outerjoin(address, warehouse.c("address", "person_id") == pid)
        )
        # Broad lookups (a date of birth, a family name) read people alone, score them, and fetch
        # addresses only for the few kept: most rows are discarded on their names.
        people_only = sa.select(*warehouse.cols("person"))
        self._addresses = sa.select(*warehouse.cols("address")).where(
            warehouse.c("address", "person_id").in_(sa.bindparam("ids", expanding=True))
        )
        self._address_keys = [f"addr_{name}" for name in warehouse.mapping.table("address").columns]
        dob = warehouse.c("person", "date_of_birth")
        self._by_nhs = base.where(
            nhs_key_expression(warehouse.c("person", "nhs_number")) == sa.bindparam("nhs")
        )
        self._by_id = base.where(pid == sa.bindparam("pid"))
        self._by_ids = base.where(pid.in_(sa.bindparam("ids", expanding=True)))
        self._by_dob = people_only.where(dob >= sa.bindparam("lo"), dob < sa.bindparam("hi"))
        self._by_surname = people_only.where(
            surname_key_expression(warehouse.c("person", "family_name")).in_(
                sa.bindparam("keys", expanding=True)
            )
        ).limit(NAME_ONLY_ROW_LIMIT)

    # --- lookups -----------------------------------------------------------------------------------
    def _run(self, conn: sa.Connection, stmt: sa.Select[Any], **params: Any) -> list[PersonRecord]:
        """Execute a person+address statement; one record per person (first-seen order), current address."""
        today = dt.date.today()
        records: dict[str, PersonRecord] = {}
        best_start: dict[str, dt.date] = {}
        result = conn.execute(stmt, params).mappings()
        if "addr_id" not in result.keys():
            return [PersonRecord(dict(m), address_loaded=False) for m in result]
        for m in result:
            key = str(m["id"])
            record = records.get(key)
            if record is None:
                record = records[key] = PersonRecord(
                    {k: v for k, v in m.items() if not k.startswith("addr_")}
                )
            if m["addr_id"] is None or not is_open(m["addr_end_date"], today=today):
                continue
            start = to_date(m["addr_start_date"]) or dt.date.min
            if key not in best_start or start >= best_start[key]:
                best_start[key] = start
                record.address = {k[5:]: m[k] for k in self._address_keys}
        return list(records.values())

    def load_addresses(self, conn: sa.Connection, records: Sequence[PersonRecord]) -> None:
        """Fill the current address (end date missing, sentinel or future; latest start) of records
        read without it, in one query per 500 people."""
        missing = {r.id: r for r in records if not r.address_loaded}
        if not missing:
            return
        today = dt.date.today()
        best_start: dict[str, dt.date] = {}
        for chunk in _chunks(list(missing)):
            for m in conn.execute(self._addresses, {"ids": list(chunk)}).mappings():
                if not is_open(m["end_date"], today=today):
                    continue
                key, start = str(m["person_id"]), to_date(m["start_date"]) or dt.date.min
                if key not in best_start or start >= best_start[key]:
                    best_start[key] = start
                    missing[key].address = dict(m)
        for r in missing.values():
            r.address_loaded = True

    def by_ids(self, conn: sa.Connection, ids: Sequence[str]) -> list[PersonRecord]:
        """Person records for local ids (any order; unknown ids absent)."""
        out: list[PersonRecord] = []
        for chunk in _chunks(list(ids)):
            out.extend(self._run(conn, self._by_ids, ids=list(chunk)))
        return out

    def _date_bounds(self, d: dt.date) -> tuple[Any, Any]:
        nxt = d + dt.timedelta(days=1)
        if self._sqlite:  # DateTime is ISO text in SQLite; compare as text so "2014-03-05" rows match too
            return d.isoformat(), nxt.isoformat()
        return dt.datetime(d.year, d.month, d.day), dt.datetime(nxt.year, nxt.month, nxt.day)

    def search(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        """Every plausible candidate for ``q`` with a score, best first (not yet limited)."""
        found: dict[str, PersonRecord] = {}

        def add(records: Iterable[PersonRecord]) -> None:
            for r in records:
                if r.id not in found or found[r.id].score < r.score:
                    found[r.id] = r

        if q.nhs_number:
            records = self._run(conn, self._by_nhs, nhs=q.nhs_number)
            # The stored value must itself be valid: a placeholder never matches.
            add(_scored(r, 1.0) for r in records if normalise_nhs_number(r.row["nhs_number"]) == q.nhs_number)
        if q.local_person_id:
            add(_scored(r, 1.0) for r in self._run(conn, self._by_id, pid=q.local_person_id))
        if q.date_of_birth:
            add(self._by_date_of_birth(conn, q))
        elif q.family_name:
            add(self._by_family_name(conn, q))
        return sorted(found.values(), key=lambda r: (-r.score, r.id))

    def _by_date_of_birth(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        assert q.date_of_birth is not None
        d = q.date_of_birth
        dates = [(d, 0.0)]
        if d.day <= 12 and d.month <= 12 and d.day != d.month:
            dates.append((dt.date(d.year, d.day, d.month), 0.05))
        scored: list[PersonRecord] = []
        qg, qf = match_key(q.given_name), match_key(q.family_name)
        for candidate_date, penalty in dates:
            lo, hi = self._date_bounds(candidate_date)
            for record in self._run(conn, self._by_dob, lo=lo, hi=hi):
                score = self._name_score(record.row, qg, qf)
                if score is not None:
                    scored.append(_scored(record, max(0.0, score - penalty)))
        return scored

    @staticmethod
    def _name_score(row: Mapping[str, Any], qg: str, qf: str) -> float | None:
        """Score of a date-of-birth candidate from its names (query names already folded by
        :func:`.normalise.match_key`); None when implausible."""
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

    def _by_family_name(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        plain = q.family_name.replace("'", "").replace("-", "").replace(" ", "").lower()
        keys = sorted({match_key(q.family_name), plain} - {""})
        qg = match_key(q.given_name)
        sector = postcode_sector(q.postcode) if q.postcode else None
        named = []
        for record in self._run(conn, self._by_surname, keys=keys):
            gs = _sim(qg, match_key(record.row["given_name"])) if qg else 1.0
            if not qg or gs >= STRONG_NAME:
                named.append(_scored(record, 0.5 + 0.4 * gs))
        if q.postcode:
            self.load_addresses(conn, named)
        kept = []
        for record in named:
            score = record.score
            if q.postcode:
                pc = normalise_postcode(record.address["postcode"]) if record.address else None
                if pc == q.postcode:
                    score += 0.05
                elif not pc or postcode_sector(pc) != sector:
                    continue
            kept.append(_scored(record, score))
        return kept

    # --- messages ------------------------------------------------------------------------------------
    @staticmethod
    def to_sex(row: Mapping[str, Any]) -> int:
        """The row's sex as ``types_pb2.Sex``."""
        return sex_of(row["sex"])

    def to_message(self, record: PersonRecord, provenance: types_pb2.Provenance) -> types_pb2.Person:
        """A ``types_pb2.Person`` from a person row, normalised (valid NHS number or empty, names for
        display, sentinel dates unset, postcode canonical)."""
        row, address = record.row, record.address
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


def _scored(record: PersonRecord, score: float) -> PersonRecord:
    record.score = score
    return record
