"""``verify_log`` with the gateway's index checker (SQLite and PostgreSQL): the index tables the IG API and
subject access reports read are rebuilt from the records and compared, so an index row edited, deleted or
added without a record is ``index_mismatch``; what retention leaves of redacted records verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit import (
    AuditEvent,
    AuditOutcome,
    AuditStore,
    RecordClass,
    Subject,
    SubjectKind,
    write_index,
)
from familyctx_gateway.audit_record import audit_payload, rfc3339
from familyctx_gateway.audit_retention import apply_retention
from familyctx_gateway.audit_schema import (
    audit_councils,
    audit_events,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
)
from familyctx_gateway.settings import AuditSettings
from familyctx_gateway.testing.audit import verify_audit_log

from familyctx.auditlog.verify import VerifyReport

NOW = dt.datetime.now(dt.UTC)
NHS = "9990000018"
GRANT = "6f1c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b11"


def _event(n: int, when: dt.datetime, record_class: RecordClass = RecordClass.access) -> AuditEvent:
    event = AuditEvent(
        request_id=f"r-{n}", user_sub="user-sw.stockport", user_name="Sam Walker", organisation="E08000007",
        roles=["social_worker"], client="familyctx-cli", jti=f"j-{n}", endpoint="POST /v1/searches",
        outcome=AuditOutcome.success, http_status=200, record_class=record_class, purpose="s47_enquiry",
        case_reference="C-1", role="social_worker", occurred_at=when, response_sha256="ab" * 32,
        subjects=[
            Subject(SubjectKind.searched_for, family_name="O'Neill", date_of_birth="2014-03-05"),
            Subject(SubjectKind.returned, gss_code="E08000007", local_person_id="S-1", nhs_number=NHS),
        ],
    )  # fmt: skip
    if record_class is RecordClass.break_glass:
        event.break_glass, event.break_glass_id, event.break_glass_reason = True, GRANT, "Police report"
        event.grant = {
            "break_glass_id": GRANT, "reason": "Police report", "opened_at": rfc3339(when),
            "expires_at": rfc3339(when + dt.timedelta(minutes=15)), "councils_notified": ["E08000007"],
        }  # fmt: skip
    if record_class is RecordClass.ig_access:
        event.review = {"break_glass_id": GRANT, "note": "Checked with the team manager"}
    return event


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    store = AuditStore(AuditSettings(database_url=url, retention_days={"break_glass": 30, "ig_access": 30}))
    store.create_schema()
    events = [
        _event(0, NOW - dt.timedelta(days=40)),  # access
        _event(1, NOW - dt.timedelta(days=40), RecordClass.break_glass),  # opens the grant
        _event(2, NOW - dt.timedelta(days=39), RecordClass.ig_access),  # its review
        _event(3, NOW - dt.timedelta(days=1)),
    ]
    with store.engine.begin() as conn:
        for event in events:
            payload = audit_payload(event)
            prepared = store.log.prepare(event.record_class.value, payload, recorded_at=event.occurred_at)
            (seq,) = store.log.append_prepared(conn, [prepared])
            write_index(conn, [(seq, payload)])
    yield store
    store.dispose()


def _run(store: AuditStore, *statements: sa.Executable) -> VerifyReport:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    return verify_audit_log(store.engine)


def _found(report: VerifyReport) -> tuple[int | None, int] | None:
    problem = report.problem("index_mismatch")
    return None if problem is None else (problem.seq, problem.count)


def test_an_untouched_index_verifies(store: AuditStore) -> None:
    report = verify_audit_log(store.engine)
    assert report.ok, report.to_dict()


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (audit_subjects.update().where(audit_subjects.c.seq == 3).values(nhs_number="9990000026"), (3, 1)),
        (audit_events.update().where(audit_events.c.seq == 0).values(user_sub="someone-else"), (0, 1)),
        (audit_councils.insert().values(seq=3, gss="E08000035", state="ok"), (3, 1)),
        (audit_subjects.delete().where(audit_subjects.c.seq == 0), (0, 1)),
        (break_glass_notifications.delete(), (1, 1)),  # reported at the grant's record
        (break_glass_grants.update().values(reason="Routine"), (1, 1)),
        (audit_reviews.update().values(note="Nothing to see"), (2, 1)),
        (
            audit_events.insert().values(
                seq=9,
                record_class="access",
                request_id="ghost",
                occurred_at=NOW,
                organisation="E08000007",
                endpoint="POST /v1/searches",
                outcome="success",
                http_status=200,
            ),
            (9, 1),
        ),  # fmt: skip
    ],
)
def test_edited_deleted_or_added_index_rows_are_found(
    store: AuditStore, statement: sa.Executable, found: tuple[int, int]
) -> None:
    if store.engine.dialect.name == "postgresql" and statement.compile().params.get("request_id") == "ghost":
        # PostgreSQL enforces the seq foreign key: a row without a log entry cannot even be written.
        with pytest.raises(sa.exc.IntegrityError):
            _run(store, statement)
        assert verify_audit_log(store.engine).ok
        return
    report = _run(store, statement)
    assert _found(report) == found, report.to_dict()
    assert {p.kind for p in report.problems} == {"index_mismatch"}


def test_what_retention_leaves_verifies_and_personal_data_left_behind_does_not(store: AuditStore) -> None:
    settings = AuditSettings(database_url="sqlite://", retention_days={"break_glass": 30, "ig_access": 30})
    report = apply_retention(store.engine, settings)
    assert report.redacted == {"access": 0, "break_glass": 1, "ig_access": 1}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_reviews)).scalar_one() == 0
    after = verify_audit_log(store.engine)
    assert after.ok and after.redacted == 2 and after.entries == 6, after.to_dict()
    # a redacted record's index row with a name put back: found
    report = _run(store, audit_events.update().where(audit_events.c.seq == 2).values(user_name="Sam Walker"))
    assert _found(report) == (2, 1)
