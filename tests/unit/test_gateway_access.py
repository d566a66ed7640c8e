"""The gateway access policy (Cedar via cedarpy): the packaged default's role x action x purpose table,
the one role a request is made under, break glass passing purpose restrictions and nothing else, and
policy files that must stop the gateway at start-up with a message naming the file, line and policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from familyctx_gateway.access import (
    ACTIONS,
    DEFAULT_POLICY_FILE,
    AccessPolicy,
    AccessRefused,
    Authorisation,
    _statements,
)
from familyctx_gateway.auth import NoRoles, Principal
from familyctx_gateway.break_glass import BreakGlassGrant, new_grant
from familyctx_gateway.errors import GatewayConfigError

PURPOSES = ("s17_assessment", "s47_enquiry", "cp_conference", "cla_review", "early_help_assessment")
DATA_ACTIONS = ("search", "family_context")


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.load()


def person(*roles: str, organisation: str = "E08000007") -> Principal:
    return Principal(
        sub="user-1",
        name="Sam Walker",
        organisation=organisation,
        roles=roles,
        client="familyctx-cli",
        jti="jti-1",
        issuer="https://idp.example",
    )


def grant_for(principal: Principal, purpose: str = "early_help_assessment") -> BreakGlassGrant:
    return new_grant(
        principal,
        role=principal.roles[0],
        purpose=purpose,
        case_reference="CASE-1",
        reason="Out of hours emergency, duty manager",
        minutes=30,
        request_id="rid-1",
    )


def decide(policy: AccessPolicy, roles: tuple[str, ...], action: str, purpose: str | None) -> str:
    """The role used, or "refused"."""
    try:
        return policy.authorise(person(*roles), action=action, purpose=purpose, break_glass=None).role
    except AccessRefused:
        return "refused"


# --- the packaged default: who may do what -------------------------------------------------------

#: (role, action) -> purposes permitted without break glass (all: every purpose; none: refused).
DEFAULT_TABLE: dict[tuple[str, str], tuple[str, ...]] = {
    **{("social_worker", a): PURPOSES for a in DATA_ACTIONS},
    **{("team_manager", a): PURPOSES[:4] for a in DATA_ACTIONS},
    **{(r, a): () for r in ("ig_officer", "administrator", "service_client") for a in DATA_ACTIONS},
}


@pytest.mark.parametrize(("role", "action"), sorted(DEFAULT_TABLE))
@pytest.mark.parametrize("purpose", PURPOSES)
def test_default_policy_family_data_table(policy: AccessPolicy, role: str, action: str, purpose: str) -> None:
    expected = role if purpose in DEFAULT_TABLE[(role, action)] else "refused"
    assert decide(policy, (role,), action, purpose) == expected


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("list_sources", {"social_worker", "team_manager", "administrator", "service_client", "ig_officer"}),
        ("read_audit", {"ig_officer"}),
        ("review_break_glass", {"ig_officer"}),
        ("list_break_glass_notifications", {"ig_officer"}),
        ("open_break_glass", {"social_worker", "team_manager"}),
    ],
)
def test_default_policy_other_actions(policy: AccessPolicy, action: str, allowed: set[str]) -> None:
    roles = ("social_worker", "team_manager", "administrator", "service_client", "ig_officer")
    purpose = "early_help_assessment" if action == "open_break_glass" else None
    permitted = {role for role in roles if decide(policy, (role,), action, purpose) == role}
    assert permitted == allowed


def test_purpose_restrictions_are_the_annotated_forbids(policy: AccessPolicy) -> None:
    assert policy.purpose_restrictions == ("social-workers-purposes", "team-managers-purposes")


def test_the_first_permitted_role_in_the_fixed_order_is_used(policy: AccessPolicy) -> None:
    assert decide(policy, ("administrator", "team_manager"), "search", "s47_enquiry") == "team_manager"
    assert decide(policy, ("team_manager", "social_worker"), "search", "s47_enquiry") == "social_worker"
    # A team manager who is also a social worker may use early help as a social worker.
    assert decide(policy, ("team_manager", "social_worker"), "search", "early_help_assessment") == (
        "social_worker"
    )
    # Separation of duties: a token holding ig_officer gets no family data under any other role ...
    assert decide(policy, ("ig_officer", "social_worker"), "family_context", "cla_review") == "refused"
    # ... but its other roles still serve where they may: an IG officer reads the audit.
    assert decide(policy, ("social_worker", "ig_officer"), "read_audit", None) == "ig_officer"
    # Roles the gateway does not know are never tried.
    assert decide(policy, ("superuser", "social_worker"), "search", "s47_enquiry") == "social_worker"
    assert decide(policy, ("superuser",), "list_sources", None) == "refused"


def test_authorisation_names_the_permit_that_allowed_it(policy: AccessPolicy) -> None:
    found = policy.authorise(person("team_manager"), action="search", purpose="cla_review", break_glass=None)
    assert found == Authorisation(
        "team_manager", "search", "cla_review", None, ("team-managers-request-family-data",)
    )
    assert found.break_glass is False


def test_no_roles_is_no_roles(policy: AccessPolicy) -> None:
    with pytest.raises(NoRoles):
        policy.authorise(person(), action="list_sources", purpose=None, break_glass=None)


def test_unknown_action_is_a_programming_error(policy: AccessPolicy) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        policy.authorise(person("social_worker"), action="delete", purpose=None, break_glass=None)
    assert set(ACTIONS) == {
        "search",
        "family_context",
        "list_sources",
        "read_audit",
        "review_break_glass",
        "open_break_glass",
        "list_break_glass_notifications",
    }


# --- refusals say what and why ----------------------------------------------------------------------


def test_purpose_refusal_says_which_purpose_and_offers_break_glass(policy: AccessPolicy) -> None:
    with pytest.raises(AccessRefused) as refused:
        policy.authorise(
            person("team_manager"), action="family_context", purpose="early_help_assessment", break_glass=None
        )
    detail = refused.value.detail
    assert "Your role (team_manager) may not read a family context for the purpose early_help_assessment" in (
        detail
    )
    assert "break glass" in detail and "POST /v1/break-glass" in detail
    assert refused.value.status == 403


def test_role_refusal_says_break_glass_cannot_help(policy: AccessPolicy) -> None:
    with pytest.raises(AccessRefused) as refused:
        policy.authorise(person("administrator"), action="search", purpose="s47_enquiry", break_glass=None)
    assert refused.value.detail.startswith(
        "Your role (administrator) may not search for people for any purpose"
    )
    assert "never past their role" in refused.value.detail
    with pytest.raises(AccessRefused, match=r"Your role \(social_worker\) may not read the audit trail"):
        policy.authorise(person("social_worker"), action="read_audit", purpose=None, break_glass=None)


# --- break glass --------------------------------------------------------------------------------------


def test_break_glass_passes_a_purpose_restriction(policy: AccessPolicy) -> None:
    manager = person("team_manager")
    grant = grant_for(manager)
    found = policy.authorise(manager, action="search", purpose="early_help_assessment", break_glass=grant)
    assert (found.role, found.break_glass, found.grant) == ("team_manager", True, grant)


def test_a_grant_marks_the_request_break_glass_even_when_the_purpose_is_allowed(policy: AccessPolicy) -> None:
    worker = person("social_worker")
    found = policy.authorise(
        worker, action="family_context", purpose="s47_enquiry", break_glass=grant_for(worker, "s47_enquiry")
    )
    assert found.role == "social_worker" and found.break_glass


@pytest.mark.parametrize("role", ["ig_officer", "administrator", "service_client"])
def test_break_glass_never_passes_a_role_refusal(policy: AccessPolicy, role: str) -> None:
    principal = person(role)
    expected = "Separation of duties" if role == "ig_officer" else "never past their role"
    for action in DATA_ACTIONS:
        with pytest.raises(AccessRefused, match=expected):
            policy.authorise(
                principal,
                action=action,
                purpose="s47_enquiry",
                break_glass=grant_for(principal, "s47_enquiry"),
            )


SCHEMA_OK_BASE = """
@id("social-workers")
permit (principal, action in Action::"request_family_data", resource)
when { context.role == "social_worker" };
"""


def test_break_glass_never_creates_a_permission_even_if_a_policy_says_so() -> None:
    # A permit that depends on break glass is not a role's permission: break glass may only lift
    # purpose restrictions, so an administrator is still refused.
    policy = AccessPolicy(
        SCHEMA_OK_BASE
        + """
@id("administrators-with-break-glass")
permit (principal, action in Action::"request_family_data", resource)
when { context.role == "administrator" && context.break_glass };
"""
    )
    admin = person("administrator")
    with pytest.raises(AccessRefused, match="never past their role"):
        policy.authorise(admin, action="search", purpose="s47_enquiry", break_glass=grant_for(admin))


def test_a_policy_may_forbid_break_glass_for_a_role() -> None:
    policy = AccessPolicy(
        SCHEMA_OK_BASE
        + """
@id("social-workers-purposes")
@break_glass("may_override")
forbid (principal, action in Action::"request_family_data", resource)
when { context.role == "social_worker" }
unless { context.purpose == "s47_enquiry" };

@id("no-break-glass-for-searches")
forbid (principal, action == Action::"search", resource)
when { context.break_glass };
"""
    )
    worker = person("social_worker")
    grant = grant_for(worker, "cla_review")
    found = policy.authorise(worker, action="family_context", purpose="cla_review", break_glass=grant)
    assert found.break_glass
    with pytest.raises(AccessRefused, match="does not let break glass override"):
        policy.authorise(worker, action="search", purpose="cla_review", break_glass=grant)
    with pytest.raises(AccessRefused, match="does not let break glass override"):
        policy.authorise(worker, action="search", purpose="cla_review", break_glass=None)


def test_the_role_decided_under_is_always_one_the_token_carries() -> None:
    # Even a policy that permits everything is only ever asked about roles the worker holds.
    policy = AccessPolicy('@id("everything")\npermit (principal, action, resource);')
    assert decide(policy, ("team_manager",), "read_audit", None) == "team_manager"
    with pytest.raises(NoRoles):
        policy.authorise(person(), action="read_audit", purpose=None, break_glass=None)


def test_grant_expiry() -> None:
    grant = grant_for(person("social_worker"))
    assert not grant.expired()
    assert grant.expired(grant.expires_at)
    assert grant.expired(grant.expires_at + dt.timedelta(seconds=1))
    assert grant.expires_at - grant.opened_at == dt.timedelta(minutes=30)


# --- policy files that must stop the gateway ---------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "access.cedar"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_default_loads_from_its_file() -> None:
    assert AccessPolicy.load(DEFAULT_POLICY_FILE).source == f"access policy {DEFAULT_POLICY_FILE}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError) as error:
        AccessPolicy.load(tmp_path / "nope.cedar")
    assert str(error.value) == (
        f"access policy {tmp_path / 'nope.cedar'} is invalid: (file): does not exist or is not a readable "
        "UTF-8 file"
    )


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    broken = text.replace(
        'when { context.role == "team_manager" };', 'when { context.role == "team_manager" ;', 1
    )
    line = text[: text.index('@id("team-managers-request-family-data")')].count("\n") + 1
    with pytest.raises(GatewayConfigError) as error:
        AccessPolicy.load(_write(tmp_path, broken))
    assert str(tmp_path / "access.cedar") in str(error.value)
    assert error.value.problems == [f"policy at line {line}: Cedar syntax error: unexpected token `;`"]


def test_schema_error_names_the_line_and_policy(tmp_path: Path) -> None:
    text = (
        SCHEMA_OK_BASE
        + '\n// purposes\n@id("typo")\nforbid (principal, action, resource)\nwhen { context.purpos == "" };\n'
    )
    with pytest.raises(GatewayConfigError) as error:
        AccessPolicy.load(_write(tmp_path, text))
    problems = error.value.problems
    assert problems and all(p.startswith("policy typo (line 7): ") for p in problems)
    assert any("attribute `purpos` in context" in p for p in problems)


def test_unknown_action_in_a_policy_is_refused() -> None:
    with pytest.raises(GatewayConfigError, match=r'unrecognized action `Action::"serch"`'):
        AccessPolicy('@id("a")\npermit (principal, action == Action::"serch", resource);')


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '@id("p")\n@break_glass("may_override")\npermit (principal, action, resource);',
            "policy p (line 1): @break_glass may only mark a forbid policy (a purpose restriction)",
        ),
        (
            SCHEMA_OK_BASE + '@id("f")\n@break_glass("yes")\nforbid (principal, action, resource);',
            'policy f (line 5): @break_glass must be "may_override"',
        ),
    ],
)
def test_break_glass_annotation_misuse(text: str, problem: str) -> None:
    with pytest.raises(GatewayConfigError) as error:
        AccessPolicy(text, source="access policy x.cedar")
    assert error.value.problems == [problem]
    assert str(error.value).startswith("access policy x.cedar is invalid: ")


def test_a_file_without_policies_is_refused() -> None:
    with pytest.raises(GatewayConfigError, match="holds no policies"):
        AccessPolicy("// nothing here yet\n")


def test_statements_report_first_lines_ignoring_comments_and_strings() -> None:
    text = (
        '// a;\n\n@id("x;y")\npermit (principal, action, resource)\n// c;\n'
        'when { "};" == "};" };\n\npermit(principal, action, resource);'
    )
    assert [line for line, _ in _statements(text)] == [3, 8]


# --- separation of duties, organisation, @id and @reason (issue 3 fixes) -----------------------------


@pytest.mark.parametrize("worker_role", ["social_worker", "team_manager"])
@pytest.mark.parametrize("order", ["ig_first", "ig_last"])
def test_a_token_holding_ig_officer_never_gets_family_data_or_break_glass(
    policy: AccessPolicy, worker_role: str, order: str
) -> None:
    roles = ("ig_officer", worker_role) if order == "ig_first" else (worker_role, "ig_officer")
    principal = person(*roles)
    for action, purpose in [
        *((a, p) for a in DATA_ACTIONS for p in PURPOSES),
        ("open_break_glass", "s47_enquiry"),
    ]:
        with pytest.raises(AccessRefused) as refused:
            policy.authorise(principal, action=action, purpose=purpose, break_glass=None)
        assert refused.value.detail.startswith("Separation of duties: an account holding the ig_officer role")
        assert "(gateway policy ig-officers-never-request-family-data)" in refused.value.detail
    # Not even with a break-glass grant (say one opened before the role was added).
    grant = grant_for(person(worker_role), "s47_enquiry")
    with pytest.raises(AccessRefused, match="Separation of duties"):
        policy.authorise(principal, action="family_context", purpose="s47_enquiry", break_glass=grant)
    # The same token still lists sources and reads the audit.
    assert (
        policy.authorise(principal, action="read_audit", purpose=None, break_glass=None).role == "ig_officer"
    )


@pytest.mark.parametrize("action", ["search", "family_context", "open_break_glass"])
def test_family_data_and_break_glass_need_the_workers_council(policy: AccessPolicy, action: str) -> None:
    with pytest.raises(AccessRefused) as refused:
        policy.authorise(
            person("social_worker", organisation=""), action=action, purpose="s47_enquiry", break_glass=None
        )
    assert refused.value.detail.startswith("Your access token names no council (organisation)")
    assert refused.value.headers() == {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    # Actions that return no family data do not need it.
    found = policy.authorise(
        person("ig_officer", organisation=""), action="read_audit", purpose=None, break_glass=None
    )
    assert found.role == "ig_officer"


def test_role_and_purpose_refusals_carry_insufficient_scope(policy: AccessPolicy) -> None:
    for roles, purpose in ((("administrator",), "s47_enquiry"), (("team_manager",), "early_help_assessment")):
        with pytest.raises(AccessRefused) as refused:
            policy.authorise(person(*roles), action="search", purpose=purpose, break_glass=None)
        assert refused.value.headers() == {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'permit (principal, action == Action::"list_sources", resource);',
            'policy at line 1: has no @id("...")',
        ),
        (
            SCHEMA_OK_BASE
            + '\n@id("social-workers")\nforbid (principal, action == Action::"search", resource);',
            'policy at line 6: @id("social-workers") is used twice (first at line 2)',
        ),
        ('@id("two words")\npermit (principal, action, resource);', "policy at line 1: @id must be 1-80"),
        ('@id("")\npermit (principal, action, resource);', 'policy at line 1: has no @id("...")'),
    ],
)
def test_every_policy_needs_a_unique_id(text: str, problem: str) -> None:
    with pytest.raises(GatewayConfigError) as error:
        AccessPolicy(text, source="access policy x.cedar")
    assert len(error.value.problems) == 1 and error.value.problems[0].startswith(problem)


def test_reason_annotation_only_on_a_forbid_and_a_sentence() -> None:
    with pytest.raises(GatewayConfigError, match="@reason may only explain a forbid"):
        AccessPolicy(
            '@id("p")\n@reason("Because the council says so.")\npermit (principal, action, resource);'
        )
    with pytest.raises(GatewayConfigError, match="@reason must be a sentence of 10-500 characters"):
        AccessPolicy(SCHEMA_OK_BASE + '@id("f")\n@reason("no")\nforbid (principal, action, resource);')


def test_a_forbid_with_a_reason_is_what_the_worker_is_told() -> None:
    policy = AccessPolicy(
        SCHEMA_OK_BASE
        + """
@id("no-searches-on-sundays")
@reason("Searches are switched off for maintenance")
forbid (principal, action == Action::"search", resource);
"""
    )
    with pytest.raises(AccessRefused) as refused:
        policy.authorise(person("social_worker"), action="search", purpose="s47_enquiry", break_glass=None)
    assert refused.value.detail == (
        "Searches are switched off for maintenance (gateway policy no-searches-on-sundays)"
    )


def test_templates_are_refused_not_ignored() -> None:
    with pytest.raises(GatewayConfigError, match="templates .* are not allowed"):
        AccessPolicy('@id("t")\npermit (principal == ?principal, action, resource);')
