"""The gateway access policy: which roles may do what, for which purposes (Cedar, via cedarpy).

The policy is a Cedar file an IG team can read (packaged default: ``policies/access.cedar``; setting
``access_policy_file``), validated at start-up against ``policies/access.cedarschema``. Requests are
decided as in that file's header: principal ``User::"<sub>"`` (``roles``, ``organisation``), one of
:data:`ACTIONS`, resource ``Federation::"familyctx"``, context ``{role, purpose, break_glass}``. The
principal's roles are tried one at a time in :data:`ROLE_ORDER`; the first the policy permits is the
one role the request is made under (:attr:`Authorisation.role`).

Break glass: with a valid grant, the forbid policies annotated ``@break_glass("may_override")``
(purpose restrictions) are lifted, and nothing else: the request must still be permitted by the rest
of the policy both with and without ``context.break_glass``, so break glass never creates a permission
a role does not have, and never lifts another forbid. Docs: docs/access-control.md, "Roles and purposes".

Every policy needs a unique ``@id`` (1-80 letters, digits and ``_.:-``, as in a council's sharing
policy): it names the policy in refusals and logs. A forbid may carry ``@reason("...")``: the sentence a
worker refused by it is shown (e.g. separation of duties). Requests for family data and opening break
glass also need the worker's council (``organisation``, a GSS code) in the token, whatever the policy.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from familyctx.config_types import relative_path_note
from familyctx_gateway.auth import NoRoles, Principal
from familyctx_gateway.break_glass import BreakGlassGrant
from familyctx_gateway.errors import Forbidden, GatewayConfigError
from familyctx_gateway.observability import current_request_id

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICY_FILE",
    "ROLE_ORDER",
    "SCHEMA_FILE",
    "AccessPolicy",
    "AccessRefused",
    "Authorisation",
]

log = logging.getLogger("familyctx_gateway.access_policy")

_PACKAGE = Path(__file__).resolve().parent / "policies"
DEFAULT_POLICY_FILE = _PACKAGE / "access.cedar"
SCHEMA_FILE = _PACKAGE / "access.cedarschema"

#: The order in which a principal's roles are tried (docs/access-control.md, "Roles"); the first permitted
#: one is used.
ROLE_ORDER = ("social_worker", "team_manager", "administrator", "service_client", "ig_officer")

#: Every action, with what it means in a refusal ("Your role may not <...>").
ACTIONS: dict[str, str] = {
    "search": "search for people",
    "family_context": "read a family context",
    "list_sources": "list the federation's sources",
    "read_audit": "read the audit trail",
    "review_break_glass": "review break-glass access",
    "open_break_glass": "open break glass",
    "list_break_glass_notifications": "list break-glass notifications",
}

#: Actions that need the worker's council (``organisation``) in the token: the family-data requests
#: (each council is told which council asks) and opening break glass (its owning council is notified).
NEEDS_ORGANISATION = ("search", "family_context", "open_break_glass")

#: Value of the ``@break_glass`` annotation that marks a forbid policy break glass may lift.
MAY_OVERRIDE = "may_override"
#: What an ``@id`` may be (it is written to logs): as in a council's sharing policy.
_ID_TEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
_RESOURCE = {"type": "Federation", "id": "familyctx"}


class AccessRefused(Forbidden):
    """403: the gateway policy refuses this request; ``detail`` says what was refused and why.

    Carries the RFC 6750 section 3.1 ``insufficient_scope`` challenge: the token is valid, but its roles
    (or claims) do not allow this request.
    """

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


@dataclass(frozen=True, slots=True)
class Authorisation:
    """A permitted request: ``role`` (the one role used), ``action``, ``purpose`` ("" when none),
    ``grant`` (the break-glass grant used, or None) and ``policies`` (the ``@id`` of each permit
    policy that allowed it)."""

    role: str
    action: str
    purpose: str
    grant: BreakGlassGrant | None = None
    policies: tuple[str, ...] = ()

    @property
    def break_glass(self) -> bool:
        """True when the request is made under a break-glass grant."""
        return self.grant is not None


def _statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar policy text into ``(first line, text)`` per policy statement (ends at a top-level
    ``;``), skipping ``//`` comments and strings, so a problem can be reported with its line number."""
    out: list[tuple[int, str]] = []
    start, line, start_line, depth, i = 0, 1, 0, 0, 0
    in_string = False
    while i < len(text):
        ch = text[i]
        if not in_string and text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if start_line == 0 and not ch.isspace():
            start_line = line
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ";" and depth <= 0:
            out.append((start_line, text[start : i + 1]))
            start, start_line = i + 1, 0
        if ch == "\n":
            line += 1
        i += 1
    if text[start:].strip() and start_line:
        out.append((start_line, text[start:]))
    return out


def _config_error(source: str, problems: list[str]) -> GatewayConfigError:
    return GatewayConfigError(source, problems)


class AccessPolicy:
    """A validated gateway access policy. Build with :meth:`load`; decide with :meth:`authorise`."""

    def __init__(self, text: str, *, source: str = "access policy") -> None:
        """Parse and validate ``text`` (Cedar policies) against the packaged schema.

        Raises :class:`GatewayConfigError` naming ``source`` and, per problem, the line and policy
        ``@id`` (a parse error, a policy that does not fit the schema, a misused ``@break_glass``
        annotation, or a file with no policies).
        """
        self.source = source
        schema_text = SCHEMA_FILE.read_text(encoding="utf-8")
        self._schema = cedarpy.Schema.from_str(schema_text)
        statements = _statements(text)
        if not statements:
            raise _config_error(source, ["(file): holds no policies; the gateway would refuse everything"])
        try:
            self._full = cedarpy.PolicySet.from_str(text)
        except ValueError:
            raise _config_error(source, _parse_problems(statements)) from None
        result = cedarpy.validate_policies(text, self._schema)
        lines = {f"policy{n}": line for n, (line, _) in enumerate(statements)}
        if not result.validation_passed:
            ids = result.id_annotations_by_policy_id
            raise _config_error(source, [_problem(e.policy_id, e.error, lines, ids) for e in result.errors])
        est = json.loads(cedarpy.policies_to_json_str(text))
        if est.get("templates"):
            where = ", ".join(f"line {lines.get(t, '?')}" for t in est["templates"])
            raise _config_error(
                source,
                [
                    f"policy at {where}: templates (?principal / ?resource) are not allowed in the access "
                    "policy; write the policy itself"
                ],
            )
        policies: dict[str, Any] = est.get("staticPolicies", {})
        _check_ids(source, policies, lines)
        self._ids = {pid: p["annotations"]["id"] for pid, p in policies.items()}
        #: The sentence shown to a worker refused by a forbid policy (its ``@reason``), by policy.
        self._reasons: dict[str, str] = {}
        problems: list[str] = []
        lifted = {}
        for pid, policy in policies.items():
            annotations = policy.get("annotations", {})
            marker = annotations.get("break_glass")
            where = f"policy {self._ids[pid]} (line {lines.get(pid, '?')})"
            if "reason" in annotations:
                if policy.get("effect") != "forbid":
                    problems.append(f"{where}: @reason may only explain a forbid policy (a refusal)")
                elif not 10 <= len(annotations["reason"].strip()) <= 500:
                    problems.append(f"{where}: @reason must be a sentence of 10-500 characters")
                else:
                    self._reasons[pid] = annotations["reason"].strip()
            if marker is None:
                lifted[pid] = policy
            elif marker != MAY_OVERRIDE:
                problems.append(f'{where}: @break_glass must be "{MAY_OVERRIDE}"')
            elif policy.get("effect") != "forbid":
                problems.append(
                    f"{where}: @break_glass may only mark a forbid policy (a purpose restriction)"
                )
        if problems:
            raise _config_error(source, problems)
        self.purpose_restrictions = tuple(self._ids[p] for p in policies if p not in lifted)
        self._lifted = cedarpy.PolicySet.from_json_str(json.dumps({**est, "staticPolicies": lifted}))

    @property
    def policy_ids(self) -> tuple[str, ...]:
        """The ``@id`` of every policy, in file order."""
        return tuple(self._ids[pid] for pid in sorted(self._ids, key=lambda p: int(p.removeprefix("policy"))))

    @classmethod
    def load(cls, path: Path | str | None = None) -> AccessPolicy:
        """Read and validate the policy file at ``path`` (None: the packaged default).

        Raises :class:`GatewayConfigError` when the file cannot be read or is invalid.
        """
        file = Path(path) if path is not None else DEFAULT_POLICY_FILE
        source = f"access policy {file}"
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise _config_error(
                source, [f"(file): does not exist or is not a readable UTF-8 file{relative_path_note(file)}"]
            ) from None
        return cls(text, source=source)

    # -- deciding ---------------------------------------------------------------------------------

    def _decide(
        self, policies: Any, principal: Principal, action: str, role: str, purpose: str, break_glass: bool
    ) -> Any:
        request = {
            "principal": {"type": "User", "id": principal.sub},
            "action": {"type": "Action", "id": action},
            "resource": _RESOURCE,
            "context": {"role": role, "purpose": purpose, "break_glass": break_glass},
        }
        entities: list[dict[str, Any]] = [
            {
                "uid": {"type": "User", "id": principal.sub},
                "attrs": {"roles": list(principal.roles), "organisation": principal.organisation},
                "parents": [],
            },
            {"uid": _RESOURCE, "attrs": {}, "parents": []},
        ]
        result = cedarpy.is_authorized(request, policies, entities, schema=self._schema)
        if result.diagnostics.errors:
            log.warning(
                "access policy evaluation errors request_id=%s action=%s role=%s count=%d",
                current_request_id(),
                action,
                role,
                len(result.diagnostics.errors),
            )
        return result

    def _names(self, result: Any) -> tuple[str, ...]:
        return tuple(self._ids.get(pid, pid) for pid in result.diagnostics.reasons)

    def authorise(
        self,
        principal: Principal,
        *,
        action: str,
        purpose: str | None,
        break_glass: BreakGlassGrant | None,
    ) -> Authorisation:
        """Decide whether ``principal`` may perform ``action`` (one of :data:`ACTIONS`) for ``purpose``.

        ``break_glass``: a grant already checked as usable for this request (see
        :meth:`~familyctx_gateway.break_glass.BreakGlassStore.grant_for_use`), or None. Returns the
        :class:`Authorisation` (first permitted role in :data:`ROLE_ORDER`). Raises :class:`NoRoles`
        (403) when the token carries no role, :class:`AccessRefused` (403) with a message saying what
        was refused and why, or ValueError for an unknown action (a programming error).
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if not principal.roles:
            raise NoRoles()
        purpose = purpose or ""
        if action in NEEDS_ORGANISATION and not principal.organisation:
            _log_refusal(principal, action, purpose, break_glass is not None, "no_organisation")
            raise AccessRefused(
                f"Your access token names no council (organisation), so you may not {ACTIONS[action]}: "
                "councils are told which council asks for their data, and break glass is notified to your "
                "council. Ask your identity provider's administrators to add your council's GSS code "
                "(e.g. E08000007) to your account"
            )
        roles = [role for role in ROLE_ORDER if role in principal.roles]
        for role in roles:
            if break_glass is None:
                result = self._decide(self._full, principal, action, role, purpose, False)
                if result.allowed:
                    return Authorisation(role, action, purpose, None, self._names(result))
            else:
                with_grant = self._decide(self._lifted, principal, action, role, purpose, True)
                without = self._decide(self._lifted, principal, action, role, purpose, False)
                if with_grant.allowed and without.allowed:
                    return Authorisation(role, action, purpose, break_glass, self._names(with_grant))
        raise self._refusal(principal, roles, action, purpose, break_glass is not None)

    def _refusal(
        self, principal: Principal, roles: list[str], action: str, purpose: str, with_grant: bool
    ) -> AccessRefused:
        """Why a request was refused, in words the worker can act on (and a log line without data)."""
        lifted = [
            r for r in roles if self._decide(self._lifted, principal, action, r, purpose, False).allowed
        ]
        glass = [r for r in lifted if self._decide(self._lifted, principal, action, r, purpose, True).allowed]
        verb = ACTIONS[action]
        held = ", ".join(principal.roles)
        explained = self._explained(principal, roles, action, purpose, with_grant)
        if explained is not None:
            reason = "policy"
            message = explained
        elif glass and not with_grant:
            reason = "purpose"
            message = (
                f"Your role ({glass[0]}) may not {verb} for the purpose {purpose}. If this case needs it, "
                "open break glass with a written reason (POST /v1/break-glass, or `familyctx break-glass "
                "open`) and send its break_glass_id with the request"
            )
        elif lifted:
            reason = "break_glass_not_allowed"
            message = (
                f"Your role ({lifted[0]}) may not {verb} for the purpose {purpose}, and the gateway policy "
                "does not let break glass override that for your role"
            )
        else:
            reason = "role"
            message = f"Your role ({held}) may not {verb}"
            if action in ("search", "family_context"):
                message += (
                    " for any purpose; break glass lets a worker past a purpose restriction, never past "
                    "their role"
                )
        _log_refusal(principal, action, purpose, with_grant, reason)
        return AccessRefused(message)

    def _explained(
        self, principal: Principal, roles: list[str], action: str, purpose: str, with_grant: bool
    ) -> str | None:
        """The ``@reason`` of a forbid policy that refused every role tried (the first found), with its
        ``@id``; None when no such policy decided the refusal."""
        for role in roles:
            result = self._decide(self._full, principal, action, role, purpose, with_grant)
            for pid in result.diagnostics.reasons:
                if pid in self._reasons:
                    return f"{self._reasons[pid]} (gateway policy {self._ids[pid]})"
        return None


def _log_refusal(principal: Principal, action: str, purpose: str, with_grant: bool, reason: str) -> None:
    """One log line per refusal: the action, the token's known roles (never other role text), codes."""
    log.info(
        "access refused request_id=%s action=%s roles=%s purpose=%s break_glass=%s reason=%s",
        current_request_id(),
        action,
        ",".join(principal.roles) or "-",
        purpose or "-",
        with_grant,
        reason,
    )


def _check_ids(source: str, policies: dict[str, Any], lines: dict[str, int]) -> None:
    """Every policy has an ``@id`` of :data:`_ID_TEXT`, used once; GatewayConfigError otherwise (one
    problem per bad policy, naming its line)."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for pid in sorted(policies, key=lambda p: int(p.removeprefix("policy"))):
        where = f"policy at line {lines.get(pid, '?')}"
        name = policies[pid].get("annotations", {}).get("id")
        if not name:
            problems.append(
                f'{where}: has no @id("..."); give every policy a short unique id, e.g. '
                '@id("social-workers-request-family-data"), so that refusals and logs can name it'
            )
        elif not _ID_TEXT.fullmatch(name):
            problems.append(f"{where}: @id must be 1-80 letters, digits, '-', '_', '.' or ':' (it is logged)")
        elif name in first:
            problems.append(
                f'{where}: @id("{name}") is used twice (first at line {lines.get(first[name], "?")})'
            )
        else:
            first[name] = pid
    if problems:
        raise _config_error(source, problems)


def _parse_problems(statements: list[tuple[int, str]]) -> list[str]:
    """One problem per policy statement that does not parse on its own (Cedar reports no line)."""
    problems = []
    for line, statement in statements:
        try:
            cedarpy.PolicySet.from_str(statement)
        except ValueError as exc:
            problems.append(f"policy at line {line}: Cedar syntax error: {exc}")
    return problems or ["(file): is not valid Cedar policy text"]


def _problem(policy_id: str, error: str, lines: dict[str, int], ids: dict[str, str]) -> str:
    """A schema validation error as ``policy <@id> (line N): <problem>``, N: where the policy starts."""
    name = ids.get(policy_id) or policy_id
    error = error.replace(f"for policy `{policy_id}`, ", "")
    return f"policy {name} (line {lines.get(policy_id, '?')}): {error}"
