"""The audit record's content (payload and index rows, pure functions), what a response showed, and the
``audit:`` settings section."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.api import schemas as s
from familyctx_gateway.audit import write_index
from familyctx_gateway.audit_content import searched_for, shown
from familyctx_gateway.audit_record import (
    AuditEvent,
    AuditOutcome,
    CouncilOutcome,
    RecordClass,
    Subject,
    SubjectKind,
    audit_payload,
    index_rows,
)
from familyctx_gateway.audit_schema import audit_councils, audit_events, audit_subjects, metadata
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import GatewaySettings, load_settings

from familyctx.auditlog import canonical_bytes

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)


def _event(**overrides: object) -> AuditEvent:
    values: dict[str, object] = {
        "request_id": "req-1",
        "user_sub": "user-sw.stockport",
        "user_name": "Sam Walker",
        "organisation": "E08000007",
        "roles": ["social_worker", "team_manager"],
        "client": "familyctx-cli",
        "jti": "jti-1",
        "endpoint": "POST /v1/searches",
        "outcome": AuditOutcome.partial,
        "http_status": 200,
        "issuer": "https://idp.example",
        "purpose": "s47_enquiry",
        "case_reference": "C-1",
        "role": "social_worker",
        "query_terms": {"given_name": "Zoë", "family_name": "O'Neill", "date_of_birth": "2014-03-05"},
        "subjects": [
            Subject(
                SubjectKind.searched_for, given_name="Zoë", family_name="O'Neill", date_of_birth="2014-03-05"
            ),
            Subject(
                SubjectKind.returned,
                gss_code="E08000007",
                local_person_id="S-1001",
                nhs_number="999 000 0018",
                given_name="Zoë",
                family_name="O'Neill",
                date_of_birth="2014-03-05",
                postcode="sk13xe",
            ),
            Subject(
                SubjectKind.returned, gss_code="E08000035", local_person_id="L-9", nhs_number="1234567890"
            ),
        ],
        "councils": [
            CouncilOutcome("E08000007", "ok"),
            CouncilOutcome("E08000035", "timed_out", "no answer within 2000 ms"),
        ],
        "involvements": [
            {
                "gss_code": "E08000007",
                "local_person_id": "S-1001",
                "dataset_id": "cin",
                "involvement_id": "i-1",
            },
            {
                "gss_code": "E08000007",
                "local_person_id": "S-1001",
                "dataset_id": "cin",
                "involvement_id": "i-2",
            },
        ],
        "response_sha256": "0" * 64,
        "response_bytes": 1234,
        "trace_id": "1" * 32,
        "occurred_at": WHEN,
    }
    values.update(overrides)
    return AuditEvent(**values)  # type: ignore[arg-type]


def test_payload_is_canonical_json_and_maps_who_whose_why_what_outcome() -> None:
    payload = audit_payload(_event())
    assert json.loads(canonical_bytes(payload)) == payload  # JSON-native: stored and read back unchanged
    assert payload["v"] == 1 and payload["record_class"] == "access"
    assert payload["request"] == {
        "request_id": "req-1",
        "trace_id": "1" * 32,
        "endpoint": "POST /v1/searches",
        "occurred_at": "2026-03-04T05:06:07.890123Z",
    }
    assert (
        payload["who"]["roles"] == ["social_worker", "team_manager"]
        and payload["who"]["role"] == "social_worker"
    )
    assert payload["why"]["purpose"] == "s47_enquiry" and payload["why"]["break_glass"] is False
    assert payload["whose"][0] == {
        "kind": "searched_for",
        "given_name": "Zoë",
        "family_name": "O'Neill",
        "date_of_birth": "2014-03-05",
    }
    assert payload["what"]["datasets"] == [{"gss_code": "E08000007", "dataset_id": "cin"}]
    assert payload["what"]["response"] == {
        "sha256": "0" * 64,
        "bytes": 1234,
        "media_type": "application/json",
    }
    assert payload["outcome"]["councils"][1] == {
        "gss_code": "E08000035",
        "state": "timed_out",
        "detail": "no answer within 2000 ms",
    }
    assert "grant" not in payload and "review" not in payload


def test_index_rows_are_derived_from_the_payload_alone() -> None:
    payload = audit_payload(_event())
    rows = index_rows(7, payload)
    assert rows == index_rows(7, json.loads(canonical_bytes(payload)))  # from the stored bytes too
    (event,) = rows[audit_events]
    assert event["seq"] == 7 and event["occurred_at"] == WHEN and event["outcome"] == "partial"
    assert (event["role"], event["trace_id"], event["response_sha256"]) == (
        "social_worker",
        "1" * 32,
        "0" * 64,
    )
    subjects = rows[audit_subjects]
    assert [(r["kind"], r["gss"], r["nhs_number"]) for r in subjects] == [
        ("searched_for", None, None),
        ("returned", "E08000007", "9990000018"),  # normalised
        ("returned", "E08000035", None),  # not a valid NHS number: not indexed
    ]
    assert (subjects[1]["family_name_key"], subjects[1]["given_name_key"]) == ("oneill", "zoe")
    assert subjects[1]["date_of_birth"] == dt.date(2014, 3, 5) and subjects[1]["postcode"] == "SK1 3XE"
    assert rows[audit_councils] == [
        {"seq": 7, "gss": "E08000007", "state": "ok", "detail": None},
        {"seq": 7, "gss": "E08000035", "state": "timed_out", "detail": "no answer within 2000 ms"},
    ]


def test_a_malformed_date_is_kept_in_the_record_but_not_indexed() -> None:
    payload = audit_payload(_event(subjects=[Subject(SubjectKind.searched_for, date_of_birth="2014-02-30")]))
    assert payload["whose"] == [{"kind": "searched_for", "date_of_birth": "2014-02-30"}]
    assert index_rows(0, payload)[audit_subjects][0]["date_of_birth"] is None


def test_write_index_cuts_overlong_values_and_drops_nul_characters(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    metadata.create_all(engine)
    long = "x" * 900
    payload = audit_payload(
        _event(
            user_name=long, case_reference="C-\x001", councils=[CouncilOutcome("E08000007", "error", long)]
        )
    )
    with engine.begin() as conn:
        write_index(conn, [(0, payload)])
        name = conn.execute(sa.select(audit_events.c.user_name)).scalar_one()
        detail = conn.execute(sa.select(audit_councils.c.detail)).scalar_one()
        case = conn.execute(sa.select(audit_events.c.case_reference)).scalar_one()
    engine.dispose()
    assert (len(name), len(detail), case) == (200, 500, "C-1")
    assert payload["who"]["name"] == long  # the record keeps it whole


def _record(gss: str, local_id: str, nhs: str | None = None) -> s.PersonRecord:
    return s.PersonRecord(
        gss_code=gss,
        council_name="x",
        local_person_id=local_id,
        nhs_number=nhs,
        given_name="Zoë",
        family_name="O'Neill",
        date_of_birth=dt.date(2014, 3, 5),
        address=s.Address(postcode="SK1 3XE"),
    )


def test_shown_lists_each_council_record_once_and_each_council_state() -> None:
    a, b = _record("E08000007", "S-1", "9990000018"), _record("E08000035", "L-1")
    response = s.SearchResponse(
        request_id="r",
        purpose=s.Purpose.s47_enquiry,
        case_reference="C-1",
        candidates=[
            s.Candidate(candidate_id="c1", records=[a]),
            s.Candidate(candidate_id="c2", records=[b, a]),
        ],
        sources=[
            s.SourceStatus(gss_code="E08000007", name="Stockport", state=s.SourceState.ok),
            s.SourceStatus(
                gss_code="E08000035", name="Leeds", state=s.SourceState.unavailable, detail="down"
            ),
        ],
    )
    seen = shown(response)
    assert [(x.gss_code, x.local_person_id, x.nhs_number, x.postcode) for x in seen.subjects] == [
        ("E08000007", "S-1", "9990000018", "SK1 3XE"),
        ("E08000035", "L-1", None, "SK1 3XE"),
    ]
    assert seen.councils == [
        CouncilOutcome("E08000007", "ok"),
        CouncilOutcome("E08000035", "unavailable", "down"),
    ]
    assert seen.involvements == [] and shown(object()).subjects == []


def test_searched_for_reads_demographics_or_the_chosen_subject() -> None:
    assert searched_for({"subject": {"gss_code": "E08000007", "local_person_id": "S-1"}}) == [
        Subject(SubjectKind.searched_for, gss_code="E08000007", local_person_id="S-1")
    ]
    assert searched_for({"nhs_number": "9990000018", "postcode": "SK1 3XE"}) == [
        Subject(SubjectKind.searched_for, nhs_number="9990000018", postcode="SK1 3XE")
    ]
    assert searched_for({"minutes": 15}) == []


def test_record_class_values() -> None:
    assert [c.value for c in RecordClass] == ["access", "break_glass", "ig_access"]


# -- settings --------------------------------------------------------------------------------------------


def test_audit_section_and_the_earlier_top_level_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = GatewaySettings(audit_database_url="sqlite:///old.sqlite")
    assert old.audit.database_url == old.audit_database_url == "sqlite:///old.sqlite"
    assert old.audit.migrate_at_startup is True  # SQLite: migrated at start-up by default
    new = GatewaySettings(audit={"database_url": "postgresql://h/audit", "retention_days": {"access": 30}})
    assert new.audit_database_url == "postgresql://h/audit" and new.audit.migrate_at_startup is False
    assert new.audit.retention_days == {"access": 30, "break_glass": 2557, "ig_access": 2557}
    assert new.audit.tree_head_interval_seconds == 60 and new.audit.log_id == "familyctx-gateway"
    monkeypatch.setenv("FAMILYCTX_GATEWAY_AUDIT_DATABASE_URL", "postgresql://h/from-env")
    config = tmp_path / "g.yaml"
    config.write_text("audit: {auto_migrate: true, tree_head_interval_seconds: 5}\n")
    loaded = load_settings(config)
    assert loaded.audit.database_url == "postgresql://h/from-env" and loaded.audit.migrate_at_startup is True


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "audit_database_url: sqlite:///a.sqlite\naudit: {database_url: 'sqlite:///b.sqlite'}\n",
            "audit_database_url and audit.database_url name different databases",
        ),
        ("audit: {retention_days: {access: 0}}\n", "audit.retention_days: access: must be at least 1 day"),
        ("audit: {tree_head_interval_seconds: 0}\n", "audit.tree_head_interval_seconds:"),
        ("audit: {signing_key: x}\n", "audit: has a key that is not a known setting"),
    ],
)
def test_bad_audit_settings_say_why(tmp_path: Path, content: str, problem: str) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(content)
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert any(problem in p for p in err.value.problems), err.value.problems
