"""The IG API's read side (familyctx_gateway.audit_queries, audit_flags) on real SQL: SQLite files and
PostgreSQL, with index rows written as the gateway writes them (one log entry, its audit_events row,
its audit_subjects and audit_councils rows). Scope (which council's IG officer sees what), subject
matching across councils on normalised keys, filters, keyset paging, CSV cells safe from formula
injection, and the three flags."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from audit_index_support import IndexWriter, audit_metadata
from familyctx_gateway.audit_flags import find_flags, worker_family_name_keys
from familyctx_gateway.audit_queries import (
    CSV_COLUMNS,
    AuditFilter,
    AuditIndex,
    AuditQueries,
    SubjectQuery,
    csv_cell,
    csv_row,
)

from familyctx.auditlog.engine import create_log_engine

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
ZOE_NHS = "9990000018"
DAY = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)  # a Monday


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = create_log_engine(url)
    audit_metadata().create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def log(engine: sa.Engine) -> IndexWriter:
    return IndexWriter(engine)


@pytest.fixture
def queries(engine: sa.Engine) -> AuditQueries:
    return AuditQueries(engine, AuditIndex(audit_metadata()))


def zoe(gss: str = STOCKPORT, local: str = "S-1001", **overrides: Any) -> dict[str, Any]:
    return {
        "gss_code": gss,
        "local_person_id": local,
        "nhs_number": ZOE_NHS,
        "given_name": "Zoë",
        "family_name": "O'Neill",
        "date_of_birth": dt.date(2014, 3, 5),
        **overrides,
    }


def seqs(page: Any) -> list[int]:
    return [view.seq for view in page.events]


# --- scope ----------------------------------------------------------------------------------------


def test_an_ig_officer_sees_their_council_staff_and_their_council_data_only(
    log: IndexWriter, queries: AuditQueries
) -> None:
    stockport_only = log.add(organisation=STOCKPORT, councils={STOCKPORT: "ok"}, subjects=[zoe()])
    # Every search asks every council: being asked does not bring a record into a council's scope.
    asked_leeds = log.add(organisation=STOCKPORT, councils={STOCKPORT: "ok", LEEDS: "ok"}, subjects=[zoe()])
    leeds_worker = log.add(user="tm.leeds", organisation=LEEDS, councils={STOCKPORT: "ok"})
    holds_leeds = log.add(organisation=MANCHESTER, subjects=[zoe(LEEDS, "L-77")])
    manchester_only = log.add(organisation=MANCHESTER, councils={MANCHESTER: "unavailable"})

    leeds = seqs(queries.search(AuditFilter(), scope=LEEDS))
    assert leeds == [holds_leeds, leeds_worker]
    assert stockport_only not in leeds and manchester_only not in leeds and asked_leeds not in leeds
    # Leeds's worker's request only asked Stockport, which returned nothing: not Stockport's.
    assert seqs(queries.search(AuditFilter(), scope=STOCKPORT)) == [asked_leeds, stockport_only]
    assert queries.record(stockport_only, scope=LEEDS) is None
    assert queries.record(asked_leeds, scope=LEEDS) is None
    assert queries.record(stockport_only, scope=STOCKPORT) is not None
    # Leeds's own worker's record is Leeds's in full; Manchester's record naming Leeds's person is not.
    views = {v.seq: v for v in queries.search(AuditFilter(), scope=LEEDS).events}
    assert views[leeds_worker].partial is False and views[holds_leeds].partial is True


def test_a_mixed_record_shows_each_council_only_its_part(log: IndexWriter, queries: AuditQueries) -> None:
    # A Stockport worker's family context returned Stockport's Zoë and Leeds's record of her mother.
    mixed = log.add(
        subjects=[
            {"kind": "searched_for", "gss_code": STOCKPORT, "local_person_id": "S-1001"},
            zoe(),
            zoe(
                LEEDS, "L-77", nhs_number="9990000034", given_name="Clare", date_of_birth=dt.date(1988, 11, 2)
            ),
            zoe(MANCHESTER, "M-9", nhs_number=None, given_name="Ava"),
        ],
        councils={STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "timed_out"},
        response_sha256="ab" * 32,
    )
    full = queries.record(mixed, scope=STOCKPORT)
    part = queries.record(mixed, scope=LEEDS)
    assert full is not None and part is not None
    assert full.view.partial is False and len(full.view.subjects) == 4 and len(full.view.councils) == 3
    assert full.view.event["response_sha256"] == "ab" * 32
    assert part.view.partial is True
    assert [(s["kind"], s["gss"], s["local_person_id"]) for s in part.view.subjects] == [
        ("searched_for", STOCKPORT, "S-1001"),
        ("returned", LEEDS, "L-77"),
    ]
    assert part.view.councils == [{"gss": LEEDS, "state": "ok", "detail": None}]
    assert part.view.event["response_sha256"] is None
    # The leaf hash is the whole record's, in either view.
    assert part.leaf_hash == full.leaf_hash
    # What Leeds cannot see, Leeds cannot filter or match on either.
    assert seqs(queries.search(AuditFilter(council=MANCHESTER), scope=LEEDS)) == []
    assert seqs(queries.search(AuditFilter(council=MANCHESTER), scope=STOCKPORT)) == [mixed]
    assert seqs(queries.search(AuditFilter(subject=SubjectQuery.of(nhs_number=ZOE_NHS)), scope=LEEDS)) == []
    claire = SubjectQuery.of(nhs_number="9990000034")
    assert seqs(queries.search(AuditFilter(subject=claire), scope=LEEDS)) == [mixed]
    assert queries.subject_identities(claire, scope=LEEDS) == [(LEEDS, "L-77")]
    assert [v.partial for v in queries.search(AuditFilter(), scope=MANCHESTER).events] == [True]
    [row] = [
        dict(zip(CSV_COLUMNS, csv_row(v), strict=True))
        for v in queries.search(AuditFilter(), scope=LEEDS).events
    ]
    assert row["view"] == "partial" and "S-1001" in row["subjects"] and ZOE_NHS not in row["subjects"]
    assert row["councils"] == f"{LEEDS}=ok"


def test_lookups_of_a_person_a_council_holds_are_in_its_scope(
    log: IndexWriter, queries: AuditQueries
) -> None:
    # Stockport holds Zoë (a record naming Stockport's S-1001 with her NHS number, names and birthday).
    known = log.add(subjects=[zoe()])
    # A Leeds worker's searches for her, refused (nothing returned): by NHS number, by names and birthday.
    by_nhs = log.add(
        user="tm.leeds",
        organisation=LEEDS,
        outcome="denied",
        http_status=403,
        subjects=[{"nhs_number": ZOE_NHS}],
    )
    by_name = log.add(
        user="tm.leeds",
        organisation=LEEDS,
        outcome="denied",
        http_status=403,
        subjects=[{"given_name": "ZOE", "family_name": "O Neill", "date_of_birth": dt.date(2014, 3, 5)}],
    )
    # Another NHS number with her names: another person, not Stockport's.
    conflict = log.add(
        user="tm.leeds",
        organisation=LEEDS,
        subjects=[{"nhs_number": "9990000042", "given_name": "Zoe", "family_name": "ONeill",
                   "date_of_birth": dt.date(2014, 3, 5)}],
    )  # fmt: skip
    # A search for somebody nobody holds.
    stranger = log.add(user="tm.leeds", organisation=LEEDS, subjects=[{"nhs_number": "9990000026"}])
    stockport = seqs(queries.search(AuditFilter(), scope=STOCKPORT))
    assert stockport == [by_name, by_nhs, known]
    assert conflict not in stockport and stranger not in stockport
    assert all(v.partial for v in queries.search(AuditFilter(user="user-tm.leeds"), scope=STOCKPORT).events)
    assert seqs(queries.search(AuditFilter(), scope=MANCHESTER)) == []


def test_names_and_nhs_numbers_find_each_other_through_the_index(
    log: IndexWriter, queries: AuditQueries
) -> None:
    known = log.add(subjects=[zoe()])  # links her NHS number to her names and birthday
    nhs_only = log.add(outcome="denied", http_status=403, subjects=[{"nhs_number": ZOE_NHS}])
    name_only = log.add(
        subjects=[{"given_name": "Zoe", "family_name": "O'Neill", "date_of_birth": dt.date(2014, 3, 5)}]
    )
    unrelated = log.add(subjects=[{"nhs_number": "9990000026"}])
    named = SubjectQuery.of(given_name="zoë", family_name="ONEILL", date_of_birth=dt.date(2014, 3, 5))
    assert seqs(queries.search(AuditFilter(subject=named), scope=STOCKPORT)) == [name_only, nhs_only, known]
    by_nhs = SubjectQuery.of(nhs_number=ZOE_NHS)
    assert seqs(queries.search(AuditFilter(subject=by_nhs), scope=STOCKPORT)) == [name_only, nhs_only, known]
    assert unrelated not in seqs(queries.search(AuditFilter(subject=named), scope=STOCKPORT))


# --- filters --------------------------------------------------------------------------------------


def test_filters_combine(log: IndexWriter, queries: AuditQueries) -> None:
    monday = log.add(at=DAY, purpose="cla_review", councils={STOCKPORT: "ok"})
    tuesday = log.add(at=DAY + dt.timedelta(days=1), purpose="s17_assessment", outcome="partial")
    glass = log.add(
        at=DAY + dt.timedelta(days=2), break_glass=True, break_glass_id="b" * 36, record_class="access"
    )
    other_user = log.add(
        user="tm.leeds", organisation=LEEDS, at=DAY, councils={STOCKPORT: "ok"}, subjects=[zoe()]
    )
    denied = log.add(at=DAY, outcome="denied", http_status=403)
    ig = log.add(user="ig.stockport", at=DAY, record_class="ig_access", endpoint="GET /v1/audit/events")

    def find(**kwargs: Any) -> list[int]:
        return seqs(queries.search(AuditFilter(**kwargs), scope=STOCKPORT))

    assert find(user="user-tm.leeds") == [other_user]
    # from inclusive, to exclusive
    assert find(since=DAY + dt.timedelta(days=1), until=DAY + dt.timedelta(days=2)) == [tuesday]
    # an aware time in another zone means the same instant
    bst = dt.timezone(dt.timedelta(hours=1))
    assert find(since=(DAY + dt.timedelta(days=2)).astimezone(bst)) == [glass]
    assert find(purpose="cla_review") == [monday]
    assert find(outcome="partial") == [tuesday]
    assert find(outcome="denied") == [denied]
    assert find(break_glass=True) == [glass]
    assert glass not in find(break_glass=False)
    assert find(record_class="ig_access") == [ig]
    assert find(council=LEEDS) == [other_user]
    assert find(user="user-sw.stockport", since=DAY, until=DAY + dt.timedelta(hours=1)) == [denied, monday]
    assert find(user="nobody") == []


def test_keyset_paging_is_newest_first_and_complete(log: IndexWriter, queries: AuditQueries) -> None:
    written = [log.add() for _ in range(7)]
    first = queries.search(AuditFilter(), scope=STOCKPORT, limit=3)
    assert seqs(first) == written[::-1][:3] and first.next_before == written[4]
    second = queries.search(AuditFilter(), scope=STOCKPORT, limit=3, before=first.next_before)
    third = queries.search(AuditFilter(), scope=STOCKPORT, limit=3, before=second.next_before)
    assert seqs(first) + seqs(second) + seqs(third) == written[::-1]
    assert third.next_before is None
    chunks = list(queries.iter_search(AuditFilter(), scope=STOCKPORT, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    assert [v.seq for c in chunks for v in c] == written[::-1]


# --- subjects -------------------------------------------------------------------------------------


def test_a_subject_is_found_across_councils(log: IndexWriter, queries: AuditQueries) -> None:
    # A search by NHS number that returned Zoë at Stockport (NHS number held) and Leeds (none held,
    # names spelt differently).
    search = log.add(
        subjects=[
            {"nhs_number": ZOE_NHS},  # what was searched for
            zoe(),
            zoe(LEEDS, "L-9", nhs_number=None, given_name="Zoe", family_name="ONeill"),
        ],
        councils={STOCKPORT: "ok", LEEDS: "ok"},
    )
    # A family context that named only Leeds's local id.
    family = log.add(subjects=[{"gss_code": LEEDS, "local_person_id": "L-9"}], councils={LEEDS: "ok"})
    # A Manchester worker's search by name and date of birth alone.
    by_name = log.add(
        organisation=MANCHESTER,
        user="sw.manchester",
        subjects=[{"given_name": "ZOE", "family_name": "O Neill", "date_of_birth": dt.date(2014, 3, 5)}],
        councils={STOCKPORT: "ok"},
    )
    # Another Zoe O'Neill: same names, another birthday and NHS number.
    other = log.add(
        subjects=[zoe(MANCHESTER, "M-5", nhs_number="9990000042", date_of_birth=dt.date(2015, 1, 1))]
    )

    by_nhs = SubjectQuery.of(nhs_number=ZOE_NHS)
    # The NHS number finds Stockport's record; its names and date of birth find Leeds's record (no NHS
    # number there) and the search by name; Leeds's local id finds the family context.
    assert seqs(queries.search(AuditFilter(subject=by_nhs), scope=STOCKPORT)) == [by_name, family, search]
    assert queries.subject_identities(by_nhs, scope=STOCKPORT) == [(STOCKPORT, "S-1001"), (LEEDS, "L-9")]
    assert other not in seqs(queries.search(AuditFilter(subject=by_nhs), scope=MANCHESTER))

    named = SubjectQuery.of(given_name="Zoe", family_name="o'neill", date_of_birth=dt.date(2014, 3, 5))
    # Leeds sees the family context (its record named) and the search (its record returned), and
    # Manchester's search by names and birthday of a person Leeds holds (L-9: same names and birthday).
    assert seqs(queries.search(AuditFilter(subject=named), scope=LEEDS)) == [by_name, family, search]
    assert seqs(queries.search(AuditFilter(subject=named), scope=STOCKPORT)) == [by_name, family, search]


def test_subject_query_needs_an_nhs_number_or_names_with_a_date_of_birth() -> None:
    with pytest.raises(ValueError, match="together"):
        SubjectQuery.of(family_name="O'Neill", date_of_birth=dt.date(2014, 3, 5))
    with pytest.raises(ValueError, match="nhs_number"):
        SubjectQuery.of()
    both = SubjectQuery.of(
        nhs_number=ZOE_NHS, given_name="Zoë", family_name="O'Neill", date_of_birth=dt.date(2014, 3, 5)
    )
    assert (both.nhs_number, both.given_name_key, both.family_name_key) == (ZOE_NHS, "zoe", "oneill")


# --- one record -----------------------------------------------------------------------------------


def test_a_record_in_full(log: IndexWriter, queries: AuditQueries) -> None:
    seq = log.add(subjects=[zoe()], councils={STOCKPORT: "ok", LEEDS: "timed_out"})
    stored = queries.record(seq, scope=STOCKPORT)
    assert stored is not None
    # The payload is the canonical envelope that was hashed into the tree (RFC 9162 leaf hash).
    assert (
        stored.payload is not None and hashlib.sha256(b"\x00" + stored.payload).digest() == stored.leaf_hash
    )
    envelope = json.loads(stored.payload)
    assert envelope["class"] == "access" and envelope["record"]["whose"][0]["local_person_id"] == "S-1001"
    assert stored.redacted_at is None
    assert stored.view.record_class == "access"
    assert stored.view.event["request_id"] == envelope["record"]["request"]["request_id"]
    assert stored.view.event["occurred_at"] == DAY.replace(hour=12)
    assert stored.view.event["occurred_at"].tzinfo is dt.UTC
    assert [c["state"] for c in stored.view.councils] == ["ok", "timed_out"]
    assert stored.view.subjects[0]["nhs_number"] == ZOE_NHS
    assert queries.record(seq + 100, scope=STOCKPORT) is None


def test_a_redacted_record_keeps_its_leaf_hash(log: IndexWriter, queries: AuditQueries) -> None:
    seq = log.add(subjects=[zoe()])
    before = queries.record(seq, scope=STOCKPORT)
    with log.engine.begin() as conn:
        cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        assert log.log.redact(conn, [seq], record_class="access", cutoff=cutoff) == 1
    after = queries.record(seq, scope=STOCKPORT)
    assert before is not None and after is not None
    assert after.payload is None and after.redacted_at is not None
    assert after.leaf_hash == before.leaf_hash


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("CASE-2026-0042", "CASE-2026-0042"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (200, "200"),
        (dt.datetime(2026, 5, 4, 9, 0), "2026-05-04T09:00:00+00:00"),
        (dt.date(2014, 3, 5), "2014-03-05"),
    ],
)
def test_csv_cells_are_safe_from_formula_injection(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_csv_row(log: IndexWriter, queries: AuditQueries) -> None:
    seq = log.add(
        case_reference="=cmd|' /C calc'!A0",
        subjects=[zoe()],
        councils={STOCKPORT: "ok", LEEDS: "unavailable"},
        user_name="@Sam Walker",
    )
    view = queries.search(AuditFilter(), scope=STOCKPORT).events[0]
    row = dict(zip(CSV_COLUMNS, csv_row(view), strict=True))
    assert row["seq"] == str(seq)
    assert row["case_reference"] == "'=cmd|' /C calc'!A0"
    assert row["user_name"] == "'@Sam Walker"
    assert row["councils"] == f"{STOCKPORT}=ok; {LEEDS}=unavailable"
    assert row["subjects"] == f"returned {STOCKPORT}/S-1001 nhs={ZOE_NHS} name=zoe oneill born=2014-03-05"
    assert row["break_glass"] == "false" and row["outcome"] == "success"


# --- flags ----------------------------------------------------------------------------------------


def test_worker_family_name_keys() -> None:
    assert worker_family_name_keys("Sam O'Neill") == {"oneill"}
    assert worker_family_name_keys("Sam Smith-Jones") == {"smithjones", "smith", "jones"}
    assert worker_family_name_keys("Smith-Jones") == {"smithjones", "smith", "jones"}
    assert worker_family_name_keys("Anne de la Cruz") == {"delacruz", "lacruz", "cruz"}
    assert worker_family_name_keys("Prince") == {"prince"}
    assert worker_family_name_keys("  ") == set()


def test_flags(log: IndexWriter, engine: sa.Engine) -> None:
    index = AuditIndex(audit_metadata())
    # A worker named O'Neill looks up Zoë O'Neill: flagged, and it is the first use of the case ref.
    relative = log.add(user_name="Sam O Neill", at=DAY, subjects=[zoe()], case_reference="CASE-1")
    again = log.add(user_name="Sam O Neill", at=DAY + dt.timedelta(hours=1), case_reference="CASE-1")
    # A case reference first used before the window is not new inside it.
    log.add(user="tm.leeds", organisation=LEEDS, at=DAY - dt.timedelta(days=30), case_reference="L-1")
    log.add(user="tm.leeds", organisation=LEEDS, at=DAY, case_reference="L-1", councils={STOCKPORT: "ok"})
    # Another worker's first use of the same case reference is new for them.
    theirs = log.add(
        user="tm.leeds",
        organisation=LEEDS,
        at=DAY,
        case_reference="CASE-1",
        councils={STOCKPORT: "ok"},
        subjects=[zoe()],
    )
    # Volume: 4 distinct council records in one day (twice the same one does not count twice).
    busy = [
        log.add(user="busy", at=DAY + dt.timedelta(minutes=i), subjects=[zoe(local=f"S-{i % 4}")])
        for i in range(6)
    ]
    # The next day, 2 records only.
    log.add(user="busy", at=DAY + dt.timedelta(days=1), subjects=[zoe(local="S-1"), zoe(local="S-2")])

    report = find_flags(
        engine,
        index,
        scope=STOCKPORT,
        since=DAY,
        until=DAY + dt.timedelta(days=2),
        daily_records_threshold=3,
    )
    by_kind: dict[str, list[Any]] = {}
    for flag in report.flags:
        by_kind.setdefault(flag.kind, []).append(flag)
    assert [f.seq for f in by_kind["shared_family_name"]] == [relative]
    assert by_kind["shared_family_name"][0].subjects[0]["local_person_id"] == "S-1001"
    assert by_kind["shared_family_name"][0].subjects[0]["gss"] == STOCKPORT
    new_refs = {(f.user_sub, f.case_reference, f.seq) for f in by_kind["new_case_reference"]}
    assert ("user-sw.stockport", "CASE-1", relative) in new_refs
    assert ("user-tm.leeds", "CASE-1", theirs) in new_refs
    assert all(seq != again for _, _, seq in new_refs)
    assert all(ref != "L-1" for _, ref, _ in new_refs)
    [volume] = by_kind["volume"]
    assert (volume.user_sub, volume.count, volume.threshold) == ("user-busy", 4, 3)
    assert volume.lookups == 0  # returned records only: nothing was searched for
    assert volume.occurred_at == dt.datetime(2026, 5, 4, tzinfo=dt.UTC)
    assert report.truncated == []
    assert busy  # written

    # Leeds's IG officer does not see Stockport-only records, so none of Stockport's flags.
    leeds = find_flags(
        engine, index, scope=LEEDS, since=DAY, until=DAY + dt.timedelta(days=2), daily_records_threshold=3
    )
    assert {(f.kind, f.user_sub) for f in leeds.flags} == {("new_case_reference", "user-tm.leeds")}


def test_volume_counts_lookups_that_found_nothing(log: IndexWriter, engine: sa.Engine) -> None:
    # 5 NHS-number searches in a day that found nothing (a refused one too), by a Stockport worker.
    for i in range(5):
        log.add(
            user="curious",
            at=DAY + dt.timedelta(minutes=i),
            subjects=[{"nhs_number": ZOE_NHS}],
            outcome="denied" if i == 0 else "success",
            http_status=403 if i == 0 else 200,
        )
    log.add(user="steady", at=DAY, subjects=[{"nhs_number": ZOE_NHS}])
    report = find_flags(
        engine,
        AuditIndex(audit_metadata()),
        scope=STOCKPORT,
        since=DAY,
        until=DAY + dt.timedelta(days=1),
        daily_records_threshold=3,
        kinds=("volume",),
    )
    assert [(f.user_sub, f.lookups, f.count, f.threshold) for f in report.flags] == [
        ("user-curious", 5, 0, 3)
    ]


@pytest.mark.parametrize(
    ("worker", "subject_family", "flagged"),
    [
        ("Sam Smith-Jones", "Jones", True),
        ("Sam Smith-Jones", "smith", True),
        ("Sam Jones", "Smith-Jones", True),
        ("Sam Jones", "Smith Jones", True),
        ("Sam Jones", "Smith–Jones", True),  # an en dash
        ("Sam Jones", "Jonesy", False),
        ("Sam Jones", "Ajones", False),
        ("Sam O'Neill", "O NEILL", True),
        ("Sam Walker", "Smith-Jones", False),
    ],
)
def test_shared_family_name_matches_any_part_of_a_double_barrelled_name(
    log: IndexWriter, engine: sa.Engine, worker: str, subject_family: str, flagged: bool
) -> None:
    seq = log.add(
        user_name=worker,
        at=DAY,
        subjects=[zoe(local="S-7", nhs_number=None, family_name=subject_family)],
    )
    report = find_flags(
        engine,
        AuditIndex(audit_metadata()),
        scope=STOCKPORT,
        since=DAY,
        until=DAY + dt.timedelta(days=1),
        daily_records_threshold=50,
        kinds=("shared_family_name",),
    )
    assert [f.seq for f in report.flags] == ([seq] if flagged else [])
