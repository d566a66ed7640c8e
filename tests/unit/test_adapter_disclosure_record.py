"""What an adapter's disclosure record holds, built from real policy decisions on fixture answers, and
the ``disclosure_log`` settings section."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from familycontext.v1 import adapter_pb2, types_pb2
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter.errors import (
    AdapterConfigError,
    DisclosureLogUnavailable,
    DisclosureRefused,
    grpc_status_for,
)
from familyctx_adapter.policy import Decision, Disclosure
from familyctx_adapter.settings import load_settings
from unit.test_adapter_policy import CASE_REF, CHILD, MOTHER, family_context, load, person, requester

from familyctx.auditlog.canonical import canonical_bytes
from familyctx.trust.assertion import Requester, VerifiedAssertion

LEEDS, STOCKPORT = "E08000035", "E08000007"
NOW = dt.datetime(2026, 1, 31, 9, 5, tzinfo=dt.UTC)


def verified(who: Requester) -> VerifiedAssertion:
    return VerifiedAssertion(
        requester=who,
        jti="jti-0001",
        issued_at=NOW,
        expires_at=NOW + dt.timedelta(seconds=60),
        audience=LEEDS,
    )


def family_record(policy_council: str, gss: str, name: str, who: Requester) -> tuple[dict, bytes]:
    policy = load(policy_council, gss, name)
    response = family_context()
    present = dr.datasets_present(response)
    disclosure = policy.decide(who, datasets=present)
    response = policy.filter_family_context(who, response, disclosure=disclosure)
    maker = dr.RecordMaker(
        gss,
        "GetFamilyContext",
        verified(who),
        dr.asked_family_context(adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD])),
    )
    record_class, record = maker.disclosed(
        response, dr.released_family_context(response, disclosure, present)
    )
    assert record_class == "disclosure"
    return record, response.SerializeToString()


def test_family_context_record_names_what_left_and_what_the_policy_withheld() -> None:
    who = requester(purpose="s17_assessment", org=LEEDS)  # Leeds keeps housing for child protection only
    record, sent = family_record("leeds", LEEDS, "Leeds", who)
    released = record["released"]
    assert released["local_person_ids"] == [CHILD, MOTHER]
    assert released["datasets_withheld"] == ["housing"]
    assert released["datasets_released"] == ["asc", "csc", "early_help"]
    assert released["involvement_ids"] == [f"asc-{MOTHER}", f"csc-{CHILD}", f"early_help-{CHILD}"]
    assert (released["people"], released["involvements"], released["relationships"]) == (2, 3, 1)
    assert released["fields_withheld"] == []
    assert "csc-early-help-asc-to-practitioners" in record["policies"]
    assert record["response_sha256"] == hashlib.sha256(sent).hexdigest()
    assert record["outcome"] == "disclosed" and record["method"] == "GetFamilyContext"
    assert record["council"] == LEEDS
    assert record["requester"] == {
        "sub": who.sub,
        "name": who.name,
        "organisation": LEEDS,
        "role": "social_worker",
        "client": "familyctx-web",
    }
    assert (record["purpose"], record["case_reference"], record["request_id"]) == (
        "s17_assessment",
        CASE_REF,
        "req-abc",
    )
    assert record["assertion"]["jti"] == "jti-0001"
    assert record["asked"] == {"query_fields": [], "local_person_ids": [CHILD], "include_relatives": False}


def test_fields_withheld_are_named_per_released_dataset() -> None:
    """Stockport withholds practitioner phone numbers from workers of other councils."""
    record, _ = family_record("stockport", STOCKPORT, "Stockport", requester(org=LEEDS))
    released = record["released"]
    assert released["datasets_withheld"] == []
    assert released["fields_withheld"] == [
        f"{d}:practitioner.phone" for d in ("asc", "csc", "early_help", "housing")
    ]
    assert "phone-numbers-stockport-only" in record["policies"]
    own, _ = family_record("stockport", STOCKPORT, "Stockport", requester(org=STOCKPORT))
    assert own["released"]["fields_withheld"] == []


def test_break_glass_and_its_reason_are_recorded() -> None:
    who = requester(purpose="s47_enquiry", break_glass=True, break_glass_reason="Child at risk tonight")
    record, _ = family_record("leeds", LEEDS, "Leeds", who)
    assert record["break_glass"] is True
    assert record["break_glass_reason"] == "Child at risk tonight"


def test_refusal_by_policy_releases_nothing_and_keeps_the_deciding_policy() -> None:
    policy = load("leeds", LEEDS, "Leeds")
    who = requester(role="ig_officer")
    disclosure = policy.decide(who, datasets=())
    with pytest.raises(DisclosureRefused):
        policy.filter_find_people(who, adapter_pb2.FindPeopleResponse(), disclosure=disclosure)
    maker = dr.RecordMaker(LEEDS, "FindPeople", verified(who), dr.Asked(query_fields=("nhs_number",)))
    record_class, record = maker.refused(disclosure)
    assert record_class == "refusal"
    assert record["outcome"] == "refused" and record["response_sha256"] is None
    assert record["released"]["local_person_ids"] == [] and record["released"]["people"] == 0
    assert record["policies"] == ["no-family-data-for-non-practitioners"]
    assert record["requester"]["role"] == "ig_officer"


def test_find_people_record_has_candidates_and_withheld_address_but_no_query_values() -> None:
    request = adapter_pb2.FindPeopleRequest(
        query=adapter_pb2.PersonQuery(
            nhs_number="9434765919",
            family_name="O'Neill",
            date_of_birth=types_pb2.Date(year=2014, month=3, day=5),
        )
    )
    response = adapter_pb2.FindPeopleResponse(candidates=[person(CHILD, "Zoë"), person(MOTHER, "Mary")])
    disclosure = Disclosure(
        people=Decision(True, ("people",)),
        datasets={},
        fields={("", "person.address"): Decision(False, ("no-addresses",))},
    )
    maker = dr.RecordMaker(LEEDS, "FindPeople", verified(requester()), dr.asked_find_people(request))
    _, record = maker.disclosed(response, dr.released_find_people(response, disclosure))
    assert record["asked"]["query_fields"] == ["nhs_number", "family_name", "date_of_birth"]
    assert record["released"]["local_person_ids"] == [CHILD, MOTHER]
    assert record["released"]["fields_withheld"] == ["person.address"]
    assert record["released"]["datasets_released"] == []
    assert record["policies"] == ["no-addresses", "people"]
    text = canonical_bytes(record).decode()
    for value in ("9434765919", "O'Neill", "2014"):  # what was searched for is not in the record
        assert value not in text


def test_record_is_canonical_json_with_rfc3339_times() -> None:
    record, _ = family_record("leeds", LEEDS, "Leeds", requester())
    data = json.loads(canonical_bytes(record))
    assert data["record_version"] == 1
    assert data["assertion"]["issued_at"] == "2026-01-31T09:05:00.000000Z"
    assert data["occurred_at"].endswith("Z")
    # Re-reading the stored bytes gives the same bytes: what a verifier hashes is what was logged.
    assert canonical_bytes(data) == canonical_bytes(record)


def test_summary_for_log_lines_has_counts_only() -> None:
    record, _ = family_record("leeds", LEEDS, "Leeds", requester())
    summary = dr.record_summary(record)
    assert summary == "method=GetFamilyContext outcome=disclosed people=2 involvements=3"
    assert CASE_REF not in summary and "Alex" not in summary


def test_disclosure_log_unavailable_is_grpc_unavailable() -> None:
    import grpc

    assert grpc_status_for(DisclosureLogUnavailable()) == (
        grpc.StatusCode.UNAVAILABLE,
        "disclosure log unavailable",
    )


# --- settings -------------------------------------------------------------------------------------

BASE = """
council: {gss_code: E08000007, name: Stockport, dfe_la_number: 356}
cms: systemc
database_url: sqlite:///var/demo/stockport.sqlite
tls: {cert_file: a.pem, key_file: a.key, client_ca_file: ca.pem}
gateway: {issuer: https://gateway.familyctx.local, jwks_file: jwks.json}
policy_file: stockport.cedar
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_disclosure_log_section_is_required(tmp_path: Path) -> None:
    with pytest.raises(AdapterConfigError, match="disclosure_log: Field required"):
        load_settings(write(tmp_path, BASE))


def test_disclosure_log_defaults_and_auto_migrate(tmp_path: Path) -> None:
    sqlite = BASE + "disclosure_log: {database_url: 'sqlite:///d.sqlite', signing_key_file: k.json}\n"
    s = load_settings(write(tmp_path, sqlite)).disclosure_log
    assert (s.tree_head_interval_seconds, s.auto_migrate, s.migrate_on_start) == (60.0, None, True)
    pg = BASE + "disclosure_log: {database_url: 'postgresql+psycopg://u@db/d', signing_key_file: k.json}\n"
    assert load_settings(write(tmp_path, pg)).disclosure_log.migrate_on_start is False
    forced = pg.replace("k.json}", "k.json, auto_migrate: true}")
    assert load_settings(write(tmp_path, forced)).disclosure_log.migrate_on_start is True


def test_disclosure_log_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__DATABASE_URL", "postgresql+psycopg://u:p@db/disclosure"
    )
    text = BASE + "disclosure_log: {database_url: 'sqlite:///d.sqlite', signing_key_file: k.json}\n"
    s = load_settings(write(tmp_path, text)).disclosure_log
    assert s.database_url == "postgresql+psycopg://u:p@db/disclosure"
    assert s.signing_key_file == Path("k.json")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{database_url: 'not a url', signing_key_file: k.json}", "disclosure_log.database_url"),
        ("{database_url: 'sqlite:///d.sqlite'}", "disclosure_log.signing_key_file: Field required"),
        (
            "{database_url: 'sqlite:///d.sqlite', signing_key_file: k.json, tree_head_interval_seconds: 0}",
            "disclosure_log.tree_head_interval_seconds",
        ),
        (
            "{database_url: 'sqlite:///d.sqlite', signing_key_file: k.json, colour: blue}",
            "disclosure_log.colour",
        ),
    ],
)
def test_bad_disclosure_log_settings_name_the_field(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        load_settings(write(tmp_path, BASE + f"disclosure_log: {section}\n"))


def test_unusable_signing_key_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    from familyctx_adapter.disclosure import load_disclosure_log

    (tmp_path / "k.json").write_text('{"kty": "oct", "k": "AAAA"}', encoding="utf-8")
    text = (
        BASE
        + f"disclosure_log: {{database_url: 'sqlite:///{tmp_path}/d.sqlite', "
        + f"signing_key_file: {tmp_path}/k.json}}\n"
    )
    settings = load_settings(write(tmp_path, text))
    with pytest.raises(AdapterConfigError, match="disclosure_log.signing_key_file"):
        load_disclosure_log(settings)
    settings = load_settings(write(tmp_path, text.replace("k.json", "missing.json")))
    with pytest.raises(AdapterConfigError, match="disclosure_log.signing_key_file.*missing.json"):
        load_disclosure_log(settings)
