"""Reading people from the warehouse: the FindPeople strategies and the Person message.

Strategies (each an indexed lookup; see :mod:`.indexes`), unioned and ranked:

* NHS number (valid only) on the normalised ``pers_single_unique_id`` (SSD PERS013A);
* local person id (SSD PERS001A);
* date of birth (PERS005A), also the day/month-swapped date when both are <= 12, then names scored
  in Python (:func:`name_agreement`);
* family name and date of birth together: the family name's lookup keys (:func:`family_keys`: the
  whole name, the parts of a double-barrelled one, the parts reversed, and the given name for names
  recorded the wrong way round) within the year of birth, on the (family-name key, date of birth)
  index; rows whose date is near the query's are kept (:func:`date_penalty`: an estimated date
  recorded as the 15th, one of day or month keyed wrongly, day and month swapped) when both names
  agree strongly, and ranked below every exact-date candidate;
* family name alone when there is no date of birth, narrowed by given name and postcode.

A date-of-birth query with no usable name (none given, or only names that normalisation leaves empty:
"Baby", "Mr", "!!") is narrowed by its postcode when it has one: only people whose current postcode
is in the same sector are kept, the exact postcode ranked first (data minimisation: never everyone
born that day). A date of birth with neither a usable name nor a postcode is a valid query under the
contract and still answered (everyone born that day, up to ``max_results``); the gateway never sends
one (docs/adapter.md, "What the service answers").

Names are compared on the features of :func:`familyctx.linkage.normalise.link_features` (titles and
placeholders removed, diacritics folded): the first given name by Jaro-Winkler (rapidfuzz), any
shared given-name token (a middle name, "Zoë Marie") or a shared short-form canonical name (Bob and
Robert, Clare and Claire) as a strong agreement; family names by Jaro-Winkler, or a shared part of a
double-barrelled name ("Smith-Jones" recorded as "Smith") as a strong agreement.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from familycontext.v1 import types_pb2
from rapidfuzz.distance import JaroWinkler

from familyctx.identifiers import normalise_nhs_number, normalise_postcode, postcode_sector
from familyctx.linkage.normalise import LinkFeatures, LinkInput, link_features
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

__all__ = [
    "DATE_ONLY_SCORE",
    "NEAR_DATE_PENALTY",
    "POSTCODE_SECTOR_PENALTY",
    "SWAPPED_DATE_PENALTY",
    "PersonReader",
    "PersonRecord",
    "date_penalty",
    "family_keys",
    "name_agreement",
    "name_features",
]

#: Most rows a family-name lookup reads before narrowing in Python (each lookup: the whole name, the
#: parts of a double-barrelled name, the family name within a year of birth).
NAME_ONLY_ROW_LIMIT = 2000
#: Similarity at which one name "strongly agrees" (Jaro-Winkler, or the fixed values below).
STRONG_NAME = 0.88
#: Lowest mean similarity of the names given for a date-of-birth candidate to be kept.
PLAUSIBLE_MEAN = 0.6
#: Given-name similarity when one record's given-name token is another's ("Zoë Marie" and "Zoë",
#: "Anne-Marie" and "Marie"): a strong agreement.
TOKEN_MATCH = 0.95
#: Given-name similarity when the names share a canonical form (Bob and Robert, Clare and Claire).
SHORT_FORM_MATCH = 0.93
#: Family-name similarity when a double-barrelled name and one of its parts (or the parts in another
#: order) meet: "Smith-Jones" and "Smith", "Jones Smith".
FAMILY_PART_MATCH = 0.93
#: Score taken off when given and family names agree only the wrong way round.
SWAPPED_NAMES_PENALTY = 0.05
#: Score taken off a candidate whose date of birth has day and month swapped (05/03 for 03/05).
SWAPPED_DATE_PENALTY = 0.05
#: Score taken off a candidate whose date of birth is only near the query's (:func:`date_penalty`):
#: large enough that every near-date candidate ranks below every exact or swapped-date one.
NEAR_DATE_PENALTY = 0.3
#: Score of a candidate found by date of birth alone (the query has no usable name).
DATE_ONLY_SCORE = 0.8
#: Score taken off a date-of-birth-only candidate whose current postcode is only in the query's
#: postcode sector, not the same postcode: larger than :data:`SWAPPED_DATE_PENALTY`, so every exact
#: postcode ranks first.
POSTCODE_SECTOR_PENALTY = 0.1

_KEY_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")


@functools.lru_cache(maxsize=50_000)
def name_features(given_name: str, family_name: str) -> LinkFeatures:
    """The name features (:func:`familyctx.linkage.normalise.link_features`) of a given and a family
    name as recorded; other features are empty. Cached (names repeat heavily); never raises."""
    return link_features(LinkInput(source="", record_id="", given_name=given_name, family_name=family_name))


def _text(value: object) -> str:
    """A name column's value as text: ints (a number keyed into a name) as digits, other non-text ''."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def _sim(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return float(JaroWinkler.normalized_similarity(a, b))


def _given_similarity(q: LinkFeatures, r: LinkFeatures) -> float:
    """0..1: first given names by Jaro-Winkler; a shared token (middle name, part of a hyphenated
    name) counts as :data:`TOKEN_MATCH`, a shared canonical form as :data:`SHORT_FORM_MATCH`."""
    if not q.given_key or not r.given_key:
        return 0.0
    sim = _sim(q.given_key, r.given_key)
    if sim >= TOKEN_MATCH:
        return sim
    if not set(q.given_tokens).isdisjoint(r.given_tokens):
        return TOKEN_MATCH
    if sim < SHORT_FORM_MATCH and not set(q.given_canonical).isdisjoint(r.given_canonical):
        return SHORT_FORM_MATCH
    return sim


def _family_similarity(q: LinkFeatures, r: LinkFeatures) -> float:
    """0..1: whole family names by Jaro-Winkler; a double-barrelled name meeting one of its parts or
    its parts in another order counts as :data:`FAMILY_PART_MATCH`."""
    if not q.family_key or not r.family_key:
        return 0.0
    sim = _sim(q.family_key, r.family_key)
    if (
        sim < FAMILY_PART_MATCH
        and (len(q.family_parts) > 1 or len(r.family_parts) > 1)
        and not set(q.family_parts).isdisjoint(r.family_parts)
    ):
        return FAMILY_PART_MATCH
    return sim


def name_agreement(
    query: LinkFeatures, given_name: object, family_name: object
) -> list[tuple[float, float, bool]]:
    """How a record's names agree with the query's, read as recorded and (when both are present) the
    wrong way round: a list of ``(given similarity, family similarity, swapped)``, one or two items.

    ``query``: :func:`name_features` of the query's names; ``given_name`` / ``family_name``: the
    record's raw values (any type; non-text is missing). Similarities are 0..1, 0 when either side is
    missing (:data:`TOKEN_MATCH`, :data:`SHORT_FORM_MATCH`, :data:`FAMILY_PART_MATCH` for the strong
    agreements that Jaro-Winkler misses).
    """
    g_raw, f_raw = _text(given_name), _text(family_name)
    straight = name_features(g_raw, f_raw)
    readings = [(_given_similarity(query, straight), _family_similarity(query, straight), False)]
    if f_raw and g_raw:
        flipped = name_features(f_raw, g_raw)
        readings.append((_given_similarity(query, flipped), _family_similarity(query, flipped), True))
    return readings


def date_penalty(query: dt.date, recorded: dt.date | None) -> float | None:
    """Score taken off a candidate for how its date of birth differs from the query's, or None when
    it is too far off to be the same person's.

    0 for the same date; :data:`SWAPPED_DATE_PENALTY` for day and month swapped; :data:`NEAR_DATE_PENALTY`
    for the same year with the same month (an estimated date recorded as the 15th, as the SSD guidance
    asks; a day keyed wrongly) or the same day (a month keyed wrongly). Any other date: None.
    """
    if recorded is None:
        return None
    if recorded == query:
        return 0.0
    if recorded.year != query.year:
        return None
    if (recorded.day, recorded.month) == (query.month, query.day):
        return SWAPPED_DATE_PENALTY
    if recorded.month == query.month or recorded.day == query.day:
        return NEAR_DATE_PENALTY
    return None


def _plain_key(text: str) -> str:
    """What :func:`.warehouse.surname_key_expression` makes of a value: lower case, no apostrophes,
    hyphens or spaces (diacritics kept)."""
    return text.replace("'", "").replace("-", "").replace(" ", "").lower()


def family_keys(family_name: str) -> tuple[list[str], list[str]]:
    """Lookup keys (values of :func:`.warehouse.surname_key_expression`) for a query's family name:
    ``(whole, parts)``.

    ``whole``: the name folded with and without diacritics, and for a multi-part name its parts in
    reverse order ("Smith-Jones" -> smithjones, jonessmith). ``parts``: each part of a multi-part
    name on its own (particles dropped, :func:`familyctx.linkage.normalise.link_features`), so a
    record holding one part is found; empty for a one-part name. Keys shorter than two letters are
    dropped. Never raises.
    """
    features = name_features("", family_name)
    words = [w for w in _KEY_SEPARATORS.split(family_name.strip()) if w]
    whole = {match_key(family_name), _plain_key(family_name)}
    parts: set[str] = set()
    if len(features.family_parts) > 1:  # not "O Neill" or "van der Berg": one part
        reversed_words = " ".join(reversed(words))
        whole |= {match_key(reversed_words), _plain_key(reversed_words)}
        parts |= set(features.family_parts)
        parts |= {_plain_key(w) for w in words if match_key(w) in features.family_parts}
    whole = {k for k in whole if len(k) >= 2}
    return sorted(whole), sorted(k for k in parts - whole if len(k) >= 2)


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
        surname_key = surname_key_expression(warehouse.c("person", "family_name"))
        self._by_surname = people_only.where(surname_key.in_(sa.bindparam("keys", expanding=True))).limit(
            NAME_ONLY_ROW_LIMIT
        )
        # On the (family-name key, date of birth) index: the family name within one year of birth.
        self._by_surname_year = people_only.where(
            surname_key.in_(sa.bindparam("keys", expanding=True)),
            dob >= sa.bindparam("lo"),
            dob < sa.bindparam("hi"),
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

    def _date_bounds(self, d: dt.date, nxt: dt.date | None = None) -> tuple[Any, Any]:
        """Bound parameters for ``d <= date_of_birth < nxt`` (``nxt``: the next day by default)."""
        nxt = nxt or d + dt.timedelta(days=1)
        if self._sqlite:  # DateTime is ISO text in SQLite; compare as text so "2014-03-05" rows match too
            return d.isoformat(), nxt.isoformat()
        return dt.datetime(d.year, d.month, d.day), dt.datetime(nxt.year, nxt.month, nxt.day)

    def search(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        """Every plausible candidate for ``q`` with a score in 0..1, best first (not yet limited).

        Scores: 1.0 for an NHS number or local id; 0.5 + 0.45 x mean name similarity for a date-of-birth
        candidate, less the penalties for swapped names and a swapped or near date of birth (so exact
        dates rank first); 0.5 + 0.4 x given-name similarity (+0.05 for the same postcode) for a
        family-name-only candidate; :data:`DATE_ONLY_SCORE` for a candidate found on a date of birth
        with no usable name (narrowed by the query's postcode sector when it has a postcode, less
        :data:`POSTCODE_SECTOR_PENALTY` when only the sector agrees). Ties in id order.
        """
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
            if q.family_name:
                add(self._by_family_name_and_year(conn, q))
        elif q.family_name:
            add(self._by_family_name(conn, q))
        return sorted(found.values(), key=lambda r: (-r.score, r.id))

    def _by_date_of_birth(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        """People born on the query's date (or the day/month-swapped date, less
        :data:`SWAPPED_DATE_PENALTY`), kept and scored on their names (:meth:`_name_score`).

        With no usable name in the query: narrowed by the postcode when given (:meth:`_near_postcode`),
        else every one of them at :data:`DATE_ONLY_SCORE` (a valid contract query the gateway never
        sends)."""
        assert q.date_of_birth is not None
        d = q.date_of_birth
        dates = [(d, 0.0)]
        if d.day <= 12 and d.month <= 12 and d.day != d.month:
            dates.append((dt.date(d.year, d.day, d.month), SWAPPED_DATE_PENALTY))
        scored: list[PersonRecord] = []
        query = name_features(q.given_name, q.family_name)
        named = bool(query.given_key or query.family_key)
        for candidate_date, penalty in dates:
            lo, hi = self._date_bounds(candidate_date)
            for record in self._run(conn, self._by_dob, lo=lo, hi=hi):
                score = self._name_score(record.row, query, near_date=False) if named else DATE_ONLY_SCORE
                if score is not None:
                    scored.append(_scored(record, max(0.0, score - penalty)))
        if not named and q.postcode:
            return self._near_postcode(conn, scored, q.postcode)
        return scored

    def _near_postcode(
        self, conn: sa.Connection, records: list[PersonRecord], postcode: str
    ) -> list[PersonRecord]:
        """``records`` whose current address's postcode is ``postcode`` (canonical, "SK1 3XE") or in
        its sector ("SK1 3"), the others (and those with no current address or postcode) dropped;
        sector-only ones lose :data:`POSTCODE_SECTOR_PENALTY`. Addresses are read for ``records``
        (one query per 500 people)."""
        sector = postcode_sector(postcode)
        self.load_addresses(conn, records)
        kept = []
        for record in records:
            pc = normalise_postcode(record.address["postcode"]) if record.address else None
            if pc == postcode:
                kept.append(record)
            elif pc and postcode_sector(pc) == sector:
                kept.append(_scored(record, max(0.0, record.score - POSTCODE_SECTOR_PENALTY)))
        return kept

    def _by_family_name_and_year(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        """Candidates holding the query's family name (or a part of it, or its given name: names
        swapped) born in the query's year whose date of birth is near it (:func:`date_penalty`).

        One lookup on the (family-name key, date of birth) index, at most NAME_ONLY_ROW_LIMIT rows.
        Exact and swapped dates are scored as :meth:`_by_date_of_birth` does; near dates need both names
        to agree strongly and take :data:`NEAR_DATE_PENALTY`.
        """
        assert q.date_of_birth is not None
        d = q.date_of_birth
        query = name_features(q.given_name, q.family_name)
        whole, parts = family_keys(q.family_name)
        keys = set(whole) | set(parts)
        if query.given_key:  # names recorded the wrong way round: the given name in the family name
            keys.add(query.given_key)
            keys |= {_plain_key(w) for w in q.given_name.split() if match_key(w) == query.given_key}
        if not keys:
            return []
        lo, hi = self._date_bounds(dt.date(d.year, 1, 1), dt.date(min(d.year + 1, dt.MAXYEAR), 1, 1))
        scored: list[PersonRecord] = []
        for record in self._run(conn, self._by_surname_year, keys=sorted(keys), lo=lo, hi=hi):
            penalty = date_penalty(d, to_date(record.row["date_of_birth"]))
            if penalty is None:
                continue
            score = self._name_score(record.row, query, near_date=penalty >= NEAR_DATE_PENALTY)
            if score is not None:
                scored.append(_scored(record, max(0.0, score - penalty)))
        return scored

    @staticmethod
    def _name_score(row: Mapping[str, Any], query: LinkFeatures, *, near_date: bool) -> float | None:
        """Score of a date-of-birth candidate from its names (:func:`name_agreement`); None when
        implausible.

        Kept when one name agrees strongly and the mean similarity is plausible, or (twins, siblings:
        linkage tells them apart) the family name agrees strongly; with a ``near_date`` every name the
        query gives must agree strongly. Score 0.5 + 0.45 x mean, less :data:`SWAPPED_NAMES_PENALTY`.
        """
        has_given, has_family = bool(query.given_key), bool(query.family_key)
        if not has_given and not has_family:
            return None  # nothing to score on: _by_date_of_birth handles a query without names
        best: float | None = None
        for gs, fs, swapped in name_agreement(query, row["given_name"], row["family_name"]):
            sims = [s for s, asked in ((gs, has_given), (fs, has_family)) if asked]
            mean = sum(sims) / len(sims)
            if near_date:
                plausible = min(sims) >= STRONG_NAME
            else:
                plausible = (max(sims) >= STRONG_NAME and mean >= PLAUSIBLE_MEAN) or (
                    has_family and fs >= STRONG_NAME
                )
            if plausible:
                score = 0.5 + 0.45 * mean - (SWAPPED_NAMES_PENALTY if swapped else 0.0)
                best = score if best is None else max(best, score)
        return best

    def _by_family_name(self, conn: sa.Connection, q: PersonSearch) -> list[PersonRecord]:
        """Family name without a date of birth: the whole name, then (for a multi-part name) its parts
        ranked 0.1 lower; narrowed by given name (strong agreement) and postcode (same sector)."""
        whole, parts = family_keys(q.family_name)
        query = name_features(q.given_name, q.family_name)
        sector = postcode_sector(q.postcode) if q.postcode else None
        named = []
        for keys, penalty in ((whole, 0.0), (parts, 0.1)):
            if not keys:
                continue
            for record in self._run(conn, self._by_surname, keys=keys):
                if query.given_key:
                    gs = _given_similarity(query, name_features(_text(record.row["given_name"]), ""))
                    if gs < STRONG_NAME:
                        continue
                else:
                    gs = 1.0
                named.append(_scored(record, 0.5 + 0.4 * gs - penalty))
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
