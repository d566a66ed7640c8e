"""Sharing policies applied to adapter answers: the three demo councils' policies on fixture responses.

Each test builds a GetFamilyContext / FindPeople answer as the warehouse would, runs it through
SharingPolicy and checks what is left, the outcomes, the reasons and the disclosure log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cedarpy
import pytest
from familycontext.v1 import adapter_pb2, types_pb2
from familyctx_adapter.errors import DisclosureRefused, grpc_status_for
from familyctx_adapter.policy import SharingPolicy

from familyctx.trust.assertion import Requester

T = types_pb2
REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "services/adapter/config/policies"
DATASETS = ("csc", "early_help", "asc", "housing")
STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"

CHILD, MOTHER = "P1", "P2"
PHONES = {
    "csc": "0161 474 0001",
    "early_help": "0161 474 0002",
    "asc": "0161 474 0003",
    "housing": "0161 474 0004",
}
EMAILS = {d: f"worker.{d}@example.gov.uk" for d in DATASETS}
SUMMARIES = {
    "csc": "Category: Neglect",
    "early_help": "Family Hub",
    "asc": "Home care",
    "housing": "Arrears £312.50",
}
CASE_REF = "CASE-Zoe-ONeill-77"


def load(council: str, gss: str, name: str) -> SharingPolicy:
    return SharingPolicy.load(
        POLICIES / f"{council}.cedar", council_gss=gss, datasets=DATASETS, council_name=name
    )


def requester(
    role: str = "social_worker", org: str = LEEDS, purpose: str = "s17_assessment", **kw: object
) -> Requester:
    return Requester(
        sub="worker-17",
        name="Alex Worker",
        organisation=org,
        role=role,
        client="familyctx-web",
        purpose=purpose,
        case_reference=CASE_REF,
        request_id="req-abc",
        **kw,  # type: ignore[arg-type]
    )


def person(pid: str, given: str) -> types_pb2.Person:
    return T.Person(
        local_person_id=pid,
        nhs_number="9434765919" if pid == CHILD else "9434765870",
        given_name=given,
        family_name="O'Neill",
        address=T.Address(lines=["12 High Street", "Stockport"], postcode="SK1 3XE", uprn="100012345678"),
    )


def involvement(pid: str, dataset: str) -> types_pb2.Involvement:
    return T.Involvement(
        involvement_id=f"{dataset}-{pid}",
        local_person_id=pid,
        dataset_id=dataset,
        service=f"service {dataset}",
        status=T.INVOLVEMENT_STATUS_OPEN,
        practitioner=T.Practitioner(
            name="Priya Shah",
            role="Social Worker",
            team="Team 2",
            phone=PHONES[dataset],
            email=EMAILS[dataset],
        ),
        summary=SUMMARIES[dataset],
    )


def family_context() -> adapter_pb2.GetFamilyContextResponse:
    """Child: csc + early help records, asc not in cohort, housing none found.
    Mother: asc records (stale data), housing records, csc and early help not in cohort."""
    resp = adapter_pb2.GetFamilyContextResponse(
        people=[person(CHILD, "Zoë"), person(MOTHER, "Mary")],
        relationships=[
            T.Relationship(
                local_person_id=CHILD, related_local_person_id=MOTHER, type=T.RELATIONSHIP_TYPE_PARENT
            )
        ],
        involvements=[
            involvement(CHILD, "csc"),
            involvement(CHILD, "early_help"),
            involvement(MOTHER, "asc"),
            involvement(MOTHER, "housing"),
        ],
    )
    states = {
        (CHILD, "csc"): (T.DATASET_STATE_RECORDS_FOUND, ""),
        (CHILD, "early_help"): (T.DATASET_STATE_RECORDS_FOUND, ""),
        (CHILD, "asc"): (T.DATASET_STATE_NOT_IN_COHORT, "Adult social care covers people aged 18 or over"),
        (CHILD, "housing"): (T.DATASET_STATE_NONE_FOUND, "searched; no records"),
        (MOTHER, "csc"): (
            T.DATASET_STATE_NOT_IN_COHORT,
            "Children's social care covers people aged 24 or under",
        ),
        (MOTHER, "early_help"): (T.DATASET_STATE_NOT_IN_COHORT, "Early help covers people aged 24 or under"),
        (MOTHER, "asc"): (T.DATASET_STATE_STALE, "last refreshed 2024-01-01; records found in stale data"),
        (MOTHER, "housing"): (T.DATASET_STATE_RECORDS_FOUND, ""),
    }
    for (pid, dataset), (state, reason) in states.items():
        resp.dataset_outcomes.append(
            T.DatasetOutcome(local_person_id=pid, dataset_id=dataset, state=state, reason=reason)
        )
    return resp


def outcomes(resp: adapter_pb2.GetFamilyContextResponse) -> dict[tuple[str, str], tuple[int, str]]:
    return {(o.local_person_id, o.dataset_id): (o.state, o.reason) for o in resp.dataset_outcomes}


def datasets_of(resp: adapter_pb2.GetFamilyContextResponse) -> set[str]:
    return {i.dataset_id for i in resp.involvements}


# --- Leeds: housing only for child protection work ---------------------------------------------------


def test_leeds_withholds_housing_for_s17_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    policy = load("leeds", LEEDS, "Leeds")
    caplog.set_level(logging.INFO, "familyctx.adapter.policy")
    resp = policy.filter_family_context(requester(purpose="s17_assessment"), family_context())
    assert datasets_of(resp) == {"csc", "early_help", "asc"}
    wire = resp.SerializeToString()
    assert b"housing" not in b"".join(i.SerializeToString() for i in resp.involvements)
    assert SUMMARIES["housing"].encode() not in wire and PHONES["housing"].encode() not in wire
    got = outcomes(resp)
    # Found and none-found alike become WITHHELD: the answer must not reveal whether records exist.
    assert got[(MOTHER, "housing")] == (T.DATASET_STATE_WITHHELD, "withheld by Leeds policy")
    assert got[(CHILD, "housing")] == (T.DATASET_STATE_WITHHELD, "withheld by Leeds policy")
    assert got[(CHILD, "csc")] == (T.DATASET_STATE_RECORDS_FOUND, "")
    # People and relationships are untouched for a practitioner.
    assert [p.given_name for p in resp.people] == ["Zoë", "Mary"] and len(resp.relationships) == 1
    decisions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("disclosure decision")]
    assert decisions == [
        "disclosure decision request_id=req-abc role=social_worker org=E08000035 purpose=s17_assessment "
        "break_glass=false dataset=housing decision=withheld policies=default-deny"
    ]


@pytest.mark.parametrize("purpose", ["s47_enquiry", "cp_conference"])
def test_leeds_shares_housing_for_child_protection(purpose: str) -> None:
    resp = load("leeds", LEEDS, "Leeds").filter_family_context(requester(purpose=purpose), family_context())
    assert datasets_of(resp) == set(DATASETS)
    assert outcomes(resp)[(MOTHER, "housing")] == (T.DATASET_STATE_RECORDS_FOUND, "")
    assert PHONES["housing"].encode() in resp.SerializeToString()


def test_leeds_break_glass_does_not_open_housing() -> None:
    resp = load("leeds", LEEDS, "Leeds").filter_family_context(
        requester(purpose="cla_review", break_glass=True, break_glass_reason="child missing tonight"),
        family_context(),
    )
    assert "housing" not in datasets_of(resp)


# --- Manchester: adult social care only for s47 and with break glass ---------------------------------


@pytest.mark.parametrize(
    ("purpose", "glass"), [("s17_assessment", False), ("s47_enquiry", False), ("cla_review", True)]
)
def test_manchester_withholds_asc_keeps_not_in_cohort_and_replaces_stale(purpose: str, glass: bool) -> None:
    resp = load("manchester", MANCHESTER, "Manchester").filter_family_context(
        requester(purpose=purpose, break_glass=glass), family_context()
    )
    assert datasets_of(resp) == {"csc", "early_help", "housing"}
    got = outcomes(resp)
    assert got[(CHILD, "asc")][0] == T.DATASET_STATE_NOT_IN_COHORT
    # STALE said "records found in stale data": replaced, so nothing about the records leaks.
    assert got[(MOTHER, "asc")] == (T.DATASET_STATE_WITHHELD, "withheld by Manchester policy")
    assert PHONES["asc"].encode() not in resp.SerializeToString()


def test_manchester_shares_asc_for_s47_under_break_glass() -> None:
    resp = load("manchester", MANCHESTER, "Manchester").filter_family_context(
        requester(purpose="s47_enquiry", break_glass=True, break_glass_reason="child at risk tonight"),
        family_context(),
    )
    assert "asc" in datasets_of(resp)
    assert outcomes(resp)[(MOTHER, "asc")][0] == T.DATASET_STATE_STALE


# --- Stockport: no practitioner phone numbers outside Stockport ---------------------------------------


def test_stockport_clears_phone_numbers_for_other_councils_and_notes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "familyctx.adapter.policy")
    resp = load("stockport", STOCKPORT, "Stockport").filter_family_context(
        requester(org=LEEDS), family_context()
    )
    assert datasets_of(resp) == set(DATASETS)
    wire = resp.SerializeToString()
    for dataset in DATASETS:
        assert PHONES[dataset].encode() not in wire
        assert EMAILS[dataset].encode() in wire and SUMMARIES[dataset].encode() in wire
    got = outcomes(resp)
    assert got[(CHILD, "csc")] == (
        T.DATASET_STATE_RECORDS_FOUND,
        "practitioner phone numbers withheld by Stockport policy",
    )
    assert got[(MOTHER, "asc")][1].endswith("; practitioner phone numbers withheld by Stockport policy")
    assert got[(CHILD, "housing")] == (T.DATASET_STATE_NONE_FOUND, "searched; no records")
    fields = [r.getMessage() for r in caplog.records if "field=practitioner.phone" in r.getMessage()]
    assert len(fields) == 4 and all("policies=phone-numbers-stockport-only" in m for m in fields)


def test_stockport_workers_see_their_own_phone_numbers() -> None:
    resp = load("stockport", STOCKPORT, "Stockport").filter_family_context(
        requester(org=STOCKPORT), family_context()
    )
    wire = resp.SerializeToString()
    assert all(PHONES[d].encode() in wire for d in DATASETS)
    assert outcomes(resp)[(CHILD, "csc")] == (T.DATASET_STATE_RECORDS_FOUND, "")


# --- roles that read no family data -----------------------------------------------------------------


@pytest.mark.parametrize("council", [("stockport", STOCKPORT), ("leeds", LEEDS), ("manchester", MANCHESTER)])
@pytest.mark.parametrize("role", ["ig_officer", "administrator", "service_client"])
def test_non_practitioners_get_nothing(
    council: tuple[str, str], role: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "familyctx.adapter.policy")
    policy = load(council[0], council[1], council[0].title())
    who = requester(role=role, org="" if role == "service_client" else council[1], purpose="s47_enquiry")
    with pytest.raises(DisclosureRefused) as refused:
        policy.filter_family_context(who, family_context())
    assert grpc_status_for(refused.value)[0].name == "PERMISSION_DENIED"
    with pytest.raises(DisclosureRefused):
        policy.filter_find_people(who, adapter_pb2.FindPeopleResponse(candidates=[person(CHILD, "Zoë")]))
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        f"role={role}" in m and "what=people" in m and "policies=no-family-data-for-non-practitioners" in m
        for m in lines
    )


@pytest.mark.parametrize(
    "who",
    [
        requester(purpose=""),  # Describe's empty purpose is never enough for data
        requester(purpose="curiosity"),
        requester(role="superuser"),
    ],
)
def test_unknown_role_or_purpose_fails_closed(who: Requester) -> None:
    policy = load("stockport", STOCKPORT, "Stockport")
    with pytest.raises(DisclosureRefused):
        policy.filter_family_context(who, family_context())
    disclosure = policy.decide(who)
    assert not any(d.allowed for d in disclosure.datasets.values())
    assert disclosure.people.policies in {("unknown-purpose",), ("unknown-role",)}


# --- mechanics ----------------------------------------------------------------------------------------


def test_one_cedar_batch_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = load("leeds", LEEDS, "Leeds")
    calls: list[int] = []
    real = cedarpy.is_authorized_batch

    def counting(requests, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(requests))
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counting)
    big = family_context()
    big.involvements.extend(involvement(CHILD, "csc") for _ in range(50))
    policy.filter_family_context(requester(), big)
    assert len(calls) == 1
    # people + 4 datasets + person.address + 4 datasets x 3 involvement fields
    assert calls[0] == 1 + 4 + 1 + 12


def test_a_dataset_the_policy_was_not_told_about_is_withheld() -> None:
    policy = SharingPolicy.load(
        POLICIES / "manchester.cedar", council_gss=MANCHESTER, datasets=DATASETS, council_name="Manchester"
    )
    resp = family_context()
    resp.involvements.append(T.Involvement(involvement_id="X1", local_person_id=CHILD, dataset_id="police"))
    resp.dataset_outcomes.append(
        T.DatasetOutcome(local_person_id=CHILD, dataset_id="police", state=T.DATASET_STATE_RECORDS_FOUND)
    )
    out = policy.filter_family_context(requester(purpose="s47_enquiry"), resp)
    assert "police" not in datasets_of(out)
    assert outcomes(out)[(CHILD, "police")] == (T.DATASET_STATE_WITHHELD, "withheld by Manchester policy")


FIELD_POLICY = """
@id("people") permit (principal, action == Action::"disclose_people", resource);
@id("datasets") permit (principal, action == Action::"disclose", resource);
@id("fields") permit (principal, action == Action::"disclose_field", resource);

// Rent arrears only for section 47 enquiries.
@id("housing-summary-s47-only")
forbid (principal, action == Action::"disclose_field", resource == Field::"involvement.summary")
when {
  context has dataset && context.dataset == Dataset::"housing" &&
  context.purpose != Purpose::"s47_enquiry"
};

// No addresses to team managers of other councils.
@id("no-address-to-other-managers")
forbid (principal, action == Action::"disclose_field", resource == Field::"person.address")
when { principal.role == Role::"team_manager" && principal.organisation != "E08000035" };
"""


def test_field_rules_per_dataset_and_person_address(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "familyctx.adapter.policy")
    path = tmp_path / "fields.cedar"
    path.write_text(FIELD_POLICY, encoding="utf-8")
    policy = SharingPolicy.load(path, council_gss=LEEDS, datasets=DATASETS, council_name="Leeds")

    resp = policy.filter_family_context(requester(role="team_manager", org=STOCKPORT), family_context())
    wire = resp.SerializeToString()
    assert SUMMARIES["housing"].encode() not in wire and SUMMARIES["csc"].encode() in wire
    assert PHONES["housing"].encode() in wire
    assert all(not p.HasField("address") for p in resp.people)
    assert b"SK1 3XE" not in wire and b"High Street" not in wire
    assert outcomes(resp)[(MOTHER, "housing")][1] == "involvement summaries withheld by Leeds policy"

    found = policy.filter_find_people(
        requester(role="team_manager", org=STOCKPORT),
        adapter_pb2.FindPeopleResponse(candidates=[person(CHILD, "Zoë")]),
    )
    assert not found.candidates[0].HasField("address") and found.candidates[0].nhs_number == "9434765919"
    kept = policy.filter_find_people(
        requester(role="social_worker", org=STOCKPORT),
        adapter_pb2.FindPeopleResponse(candidates=[person(CHILD, "Zoë")]),
    )
    assert kept.candidates[0].address.postcode == "SK1 3XE"
    s47 = policy.filter_family_context(requester(purpose="s47_enquiry"), family_context())
    assert SUMMARIES["housing"].encode() in s47.SerializeToString()
    assert any(
        "field=person.address" in r.getMessage() and "policies=no-address-to-other-managers" in r.getMessage()
        for r in caplog.records
    )


def test_a_forbid_that_fails_to_evaluate_does_not_disclose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cedar skips a policy whose evaluation errors (here: integer overflow); a skipped forbid would
    otherwise let the permit through, so the adapter withholds and logs instead."""
    path = tmp_path / "overflow.cedar"
    path.write_text(
        FIELD_POLICY + '\n@id("broken-forbid")\n'
        'forbid (principal, action == Action::"disclose", resource == Dataset::"asc")\n'
        "when { 9223372036854775807 + 1 > 0 };\n",
        encoding="utf-8",
    )
    policy = SharingPolicy.load(path, council_gss=LEEDS, datasets=DATASETS, council_name="Leeds")
    resp = policy.filter_family_context(requester(purpose="s47_enquiry"), family_context())
    assert "asc" not in datasets_of(resp) and {"csc", "housing"} <= datasets_of(resp)
    assert any("disclosure evaluation error" in r.getMessage() for r in caplog.records)


def test_logs_carry_no_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "familyctx.adapter.policy")
    policy = load("stockport", STOCKPORT, "Stockport")
    who = requester(
        org=LEEDS, break_glass=True, break_glass_reason="Mother Mary O'Neill threatened the child"
    )
    policy.filter_family_context(who, family_context())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "disclosure decision" in text and "break_glass=true" in text
    for secret in (
        "Zoë",
        "Mary",
        "O'Neill",
        "9434765919",
        "SK1 3XE",
        CASE_REF,
        "Alex Worker",
        *PHONES.values(),
    ):
        assert secret not in text


def test_log_values_from_the_assertion_are_sanitised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "familyctx.adapter.policy")
    policy = load("leeds", LEEDS, "Leeds")
    who = Requester(
        sub="u",
        name="n",
        organisation="E0\nforged=1",
        role="social_worker",
        client="c",
        purpose="s17_assessment",
        case_reference="",
        request_id="r id\r\nx",
    )
    policy.filter_family_context(who, family_context())
    assert all("\n" not in r.getMessage() and "\r" not in r.getMessage() for r in caplog.records)
