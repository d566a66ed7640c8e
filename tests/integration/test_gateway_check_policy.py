"""``familyctx gateway check-policy``: the gateway access policy validated as start-up validates it, and
printed as role x action x purpose -> allowed / break glass / refused, asked of the policy itself
(the packaged one, the config's ``access_policy_file``, or ``--policy``). A broken policy or config is
one line on stderr and exit status 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from familyctx_gateway.access import DEFAULT_POLICY_FILE, AccessPolicy
from familyctx_gateway.access_table import ALLOWED, BREAK_GLASS, REFUSED, access_rows
from familyctx_gateway.errors import GatewayConfigError

ROW = re.compile(r"^(\w+)\s+(\w+)\s+(\w+|-)\s+(allowed|break glass|refused)$")
PURPOSES = ("s17_assessment", "s47_enquiry", "cp_conference", "cla_review", "early_help_assessment")

#: A small policy: social workers only; family context for s47 enquiries only (break glass cannot lift
#: that); searches for s17 assessments, others with break glass.
SMALL = """
@id("social-workers-request-family-data")
permit (principal, action in Action::"request_family_data", resource)
when { context.role == "social_worker" };

@id("family-context-for-s47-only")
forbid (principal, action == Action::"family_context", resource)
unless { context.purpose == "s47_enquiry" };

@id("searches-for-s17")
@break_glass("may_override")
forbid (principal, action == Action::"search", resource)
unless { context.purpose == "s17_assessment" };
"""


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "familyctx.cli", "gateway", "check-policy", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _table(out: str) -> dict[tuple[str, str, str], str]:
    rows = [ROW.match(line.rstrip()) for line in out.splitlines()]
    return {(m[1], m[2], m[3]): m[4] for m in rows if m}


def test_the_packaged_policy_by_default() -> None:
    result = _check()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{DEFAULT_POLICY_FILE}: valid gateway access policy, 9 policies:")
    assert "purpose restrictions break glass may lift: social-workers-purposes, team-managers-purposes" in (
        result.stdout
    )
    table = _table(result.stdout)
    assert table[("social_worker", "family_context", "any")] == ALLOWED
    assert table[("team_manager", "family_context", "cla_review")] == ALLOWED
    assert table[("team_manager", "family_context", "early_help_assessment")] == BREAK_GLASS
    assert table[("team_manager", "search", "early_help_assessment")] == BREAK_GLASS
    assert table[("ig_officer", "family_context", "any")] == REFUSED
    assert table[("ig_officer", "read_audit", "-")] == ALLOWED
    assert table[("administrator", "read_audit", "-")] == REFUSED
    assert table[("service_client", "list_sources", "-")] == ALLOWED
    # Every role x action is there (one row, or one per purpose).
    assert {(r, a) for r, a, _ in table} == {
        (r, a)
        for r in ("social_worker", "team_manager", "administrator", "service_client", "ig_officer")
        for a in (
            "search",
            "family_context",
            "list_sources",
            "read_audit",
            "review_break_glass",
            "open_break_glass",
            "list_break_glass_notifications",
        )
    }


def test_the_configs_policy_and_an_explicit_one(tmp_path: Path) -> None:
    # The config's access_policy_file: team managers may use early help without break glass.
    shipped = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    purposes = '["s17_assessment", "s47_enquiry", "cp_conference", "cla_review"]'
    assert shipped.count(purposes) == 1
    relaxed = tmp_path / "relaxed.cedar"
    relaxed.write_text(shipped.replace(purposes, purposes[:-1] + ', "early_help_assessment"]'))
    config = tmp_path / "gateway.yaml"
    config.write_text(f"access_policy_file: {relaxed}\n")
    result = _check("--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{relaxed}: valid gateway access policy")
    assert _table(result.stdout)[("team_manager", "family_context", "any")] == ALLOWED

    # --policy wins over the config.
    small = tmp_path / "small.cedar"
    small.write_text(SMALL)
    result = _check("--config", str(config), "--policy", str(small))
    assert result.returncode == 0, result.stderr
    assert "purpose restrictions break glass may lift: searches-for-s17" in result.stdout
    table = _table(result.stdout)
    assert table[("social_worker", "family_context", "s47_enquiry")] == ALLOWED
    for purpose in PURPOSES:
        if purpose != "s47_enquiry":  # a forbid break glass may not lift
            assert table[("social_worker", "family_context", purpose)] == REFUSED
        expected = ALLOWED if purpose == "s17_assessment" else BREAK_GLASS
        assert table[("social_worker", "search", purpose)] == expected
    assert table[("social_worker", "list_sources", "-")] == REFUSED  # nothing permits it here
    assert table[("team_manager", "search", "any")] == REFUSED


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SMALL.replace('Action::"search"', 'Action::"serch"'), "policy searches-for-s17 (line 10): "),
        (SMALL.replace('@id("family-context-for-s47-only")\n', ""), "policy at line 6: has no @id"),
        (SMALL.replace("unless { context.purpose", "unless { context.purpose =="), "Cedar syntax error"),
        ("// nothing but a comment\n", "holds no policies"),
    ],
)
def test_a_broken_policy_is_one_line_and_exit_2(tmp_path: Path, text: str, problem: str) -> None:
    broken = tmp_path / "broken.cedar"
    broken.write_text(text)
    result = _check("--policy", str(broken))
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: access policy {broken} is invalid: ") and problem in line
    # The same problem stops the gateway at start-up (the same loader).
    with pytest.raises(GatewayConfigError, match=re.escape(problem)):
        AccessPolicy.load(broken)


def test_a_missing_policy_or_unusable_config_is_exit_2(tmp_path: Path) -> None:
    result = _check("--policy", str(tmp_path / "missing.cedar"))
    assert result.returncode == 2 and "does not exist or is not a readable UTF-8 file" in result.stderr
    config = tmp_path / "gateway.yaml"
    config.write_text("access_policy_file: [not, a, path]\n")
    result = _check("--config", str(config))
    assert result.returncode == 2 and result.stderr.startswith(f"error: gateway config {config}: ")


def test_rows_are_the_decisions_requests_get() -> None:
    """The table is asked through ``AccessPolicy.authorise``: a row per purpose only where they differ."""
    rows = access_rows(AccessPolicy.load())
    assert [r.purpose for r in rows if (r.role, r.action) == ("team_manager", "search")] == list(PURPOSES)
    assert [r.purpose for r in rows if (r.role, r.action) == ("social_worker", "search")] == ["any"]
