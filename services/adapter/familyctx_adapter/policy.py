"""The council's sharing policy, enforced by the data owner on every answer before it leaves the adapter.

A council's information governance team writes the policy in Cedar (https://www.cedarpolicy.com/),
against the packaged schema (``policy_schema.cedarschema``): who (``Requester`` with ``role`` and
``organisation``) may see what (``disclose_people`` on this ``Council``, ``disclose`` on a ``Dataset``,
``disclose_field`` on a ``Field``) for which purpose (``context.purpose``, ``context.break_glass``).
Nothing is disclosed unless a ``permit`` allows it; a ``forbid`` always wins (Cedar semantics).

:class:`SharingPolicy` is loaded once at start-up (:meth:`SharingPolicy.load`, raising
:class:`~familyctx_adapter.policy_check.PolicyError`) and applied to every response:

* :meth:`SharingPolicy.filter_find_people`: demographics only; ``person.address`` cleared when withheld;
* :meth:`SharingPolicy.filter_family_context`: involvements of withheld datasets removed, their
  (person, dataset) outcomes set to ``DATASET_STATE_WITHHELD`` with reason "withheld by <Council> policy"
  (``NOT_IN_COHORT`` stays: it says nothing the demographics do not; ``STALE`` and every found/none-found
  state becomes ``WITHHELD``, since "records found in stale data" would reveal that records exist);
  withheld fields of disclosed involvements cleared, and the outcome's reason says which;
* both raise :class:`~familyctx_adapter.errors.DisclosureRefused` (gRPC PERMISSION_DENIED) when the
  policy discloses no people at all to the requester (e.g. an IG officer: they read audit, not family data).
  :meth:`SharingPolicy.require_people` makes that one decision on its own: the adapter asks it before it
  looks anything up, so a refused requester learns nothing about which ids exist here.

Decisions for one request are made in one Cedar batch call. Each withholding decision is logged once per
request: ``disclosure decision request_id=... role=... org=... purpose=... break_glass=... dataset=...
decision=withheld policies=<@id,...>`` (``policies=default-deny`` when no policy permitted it). Logs carry
no personal data and no case reference or break-glass reason (free text typed by workers).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy
from familycontext.v1 import adapter_pb2, types_pb2

from familyctx.trust.assertion import Requester
from familyctx_adapter.errors import DisclosureRefused
from familyctx_adapter.policy_check import CheckedPolicy, PolicyError, read_policy
from familyctx_adapter.sql_source import DATASET_INFO

__all__ = [
    "FIELDS",
    "INVOLVEMENT_FIELDS",
    "PERSON_FIELDS",
    "PURPOSES",
    "ROLES",
    "Decision",
    "Disclosure",
    "PolicyError",
    "SharingPolicy",
    "log_safe",
]

log = logging.getLogger("familyctx.adapter.policy")
T = types_pb2

#: Roles and purposes (docs/access-control.md, "Roles and purposes"; the schema's ``Role`` and ``Purpose``
#: enumerations).
ROLES = ("social_worker", "team_manager", "ig_officer", "administrator", "service_client")
PURPOSES = ("s17_assessment", "s47_enquiry", "cp_conference", "cla_review", "early_help_assessment")
#: Fields a policy may withhold (the schema's ``Field`` enumeration). The NHS number is deliberately not
#: one: it is the key the gateway links people on; without it matches get weaker, not safer.
PERSON_FIELDS = ("person.address",)
INVOLVEMENT_FIELDS = ("practitioner.phone", "practitioner.email", "involvement.summary")
FIELDS = PERSON_FIELDS + INVOLVEMENT_FIELDS
#: How a withheld field is named in an outcome's reason.
_FIELD_WORDS = {
    "practitioner.phone": "practitioner phone numbers",
    "practitioner.email": "practitioner email addresses",
    "involvement.summary": "involvement summaries",
}
#: Outcomes a withheld dataset replaces (NOT_IN_COHORT stays as it is).
_REPLACED = frozenset(
    (
        T.DATASET_STATE_UNSPECIFIED,
        T.DATASET_STATE_RECORDS_FOUND,
        T.DATASET_STATE_NONE_FOUND,
        T.DATASET_STATE_STALE,
    )
)


@dataclass(frozen=True, slots=True)
class Decision:
    """One disclosure decision: ``allowed``, and ``policies``: the ``@id`` of each policy that decided it
    (the permits that allowed it, or the forbids that refused it; empty when nothing permitted it), or a
    fixed code when the request could not be evaluated (``unknown-role``, ``unknown-purpose``,
    ``unknown-dataset``, ``evaluation-error``)."""

    allowed: bool
    policies: tuple[str, ...] = ()

    @property
    def policy_text(self) -> str:
        """Comma-separated policy ids for a log line; ``default-deny`` when none decided."""
        return ",".join(self.policies) or "default-deny"


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Every decision for one requester and request: ``people`` (may see this council's people at all),
    ``datasets`` (dataset id -> Decision), ``fields`` ((dataset id, field) -> Decision; dataset id "" for
    person fields). A dataset or field not decided is withheld."""

    people: Decision
    datasets: Mapping[str, Decision]
    fields: Mapping[tuple[str, str], Decision]

    def dataset(self, dataset_id: str) -> Decision:
        """The decision for ``dataset_id`` (withheld, ``unknown-dataset``, when the policy was not asked)."""
        return self.datasets.get(dataset_id) or Decision(False, ("unknown-dataset",))

    def field(self, dataset_id: str, field: str) -> Decision:
        """The decision for ``field`` of ``dataset_id`` ("" for person fields); withheld when not asked."""
        return self.fields.get((dataset_id, field)) or Decision(False, ("unknown-dataset",))

    def withheld_fields(self, dataset_id: str) -> list[str]:
        """Involvement fields withheld from records of a disclosed ``dataset_id``, in :data:`FIELDS` order."""
        return [f for f in INVOLVEMENT_FIELDS if not self.field(dataset_id, f).allowed]


def _entity(kind: str, eid: str) -> dict[str, Any]:
    return {"__entity": {"type": kind, "id": eid}}


_LOGGABLE = re.compile(r"[^A-Za-z0-9_.:-]")


def log_safe(value: str) -> str:
    """A claim value fit for a log line: letters, digits and ``_.:-`` only (anything else becomes ``?``),
    at most 64 characters, ``-`` when empty. Used for every requester value the adapter logs."""
    return _LOGGABLE.sub("?", value[:64]) or "-"


_safe = log_safe


def _category(dataset_id: str) -> str:
    info = DATASET_INFO.get(dataset_id)
    name = T.DatasetCategory.Name(info[1]) if info else "DATASET_CATEGORY_UNSPECIFIED"
    return name.removeprefix("DATASET_CATEGORY_").lower()


class SharingPolicy:
    """A council's validated sharing policy. Build with :meth:`load`; thread-safe (immutable)."""

    def __init__(
        self,
        checked: CheckedPolicy,
        *,
        source: Path,
        council_gss: str,
        council_name: str,
        datasets: Iterable[str],
    ) -> None:
        self.checked = checked
        self.source = source
        self.council_gss = council_gss
        self.council_name = council_name or council_gss
        self.datasets = tuple(dict.fromkeys(datasets))
        base = [
            {
                "uid": {"type": "Council", "id": council_gss},
                "attrs": {"name": self.council_name},
                "parents": [],
            }
        ] + [
            {"uid": {"type": "Dataset", "id": d}, "attrs": {"category": _category(d)}, "parents": []}
            for d in self.datasets
        ]
        self._entities = cedarpy.Entities.from_json_str(json.dumps(base), checked.schema)

    @classmethod
    def load(
        cls, path: Path, *, council_gss: str, datasets: Iterable[str], council_name: str = ""
    ) -> SharingPolicy:
        """Read, validate and compile the policy at ``path`` for the council ``council_gss`` (GSS code),
        named ``council_name`` in withheld reasons (e.g. "Stockport"; the GSS code when empty), offering
        ``datasets`` (ids, e.g. ``csc``, ``housing``).

        Raises :class:`PolicyError` naming the file, line and problem (see :mod:`.policy_check`).
        """
        datasets = tuple(datasets)
        checked = read_policy(Path(path), council_gss=council_gss, datasets=datasets)
        return cls(
            checked, source=Path(path), council_gss=council_gss, council_name=council_name, datasets=datasets
        )

    @property
    def withheld_reason(self) -> str:
        """The reason given for a withheld dataset: ``withheld by <Council> policy``."""
        return f"withheld by {self.council_name} policy"

    # --- decisions -------------------------------------------------------------------------------
    def decide(self, requester: Requester, datasets: Iterable[str] | None = None) -> Disclosure:
        """All decisions for ``requester`` about ``datasets`` (default: every dataset this council offers)
        and their fields, in one Cedar batch evaluation. Never raises: an unknown role or purpose, or an
        evaluation error, withholds everything (fail closed) and is logged."""
        wanted = (
            self.datasets
            if datasets is None
            else tuple(d for d in dict.fromkeys(datasets) if d in self.datasets)
        )
        keys: list[tuple[str, str, str]] = [("people", "", "")]
        keys += [("dataset", d, "") for d in wanted]
        keys += [("field", "", f) for f in PERSON_FIELDS]
        keys += [("field", d, f) for d in wanted for f in INVOLVEMENT_FIELDS]
        problem = self._unusable(requester)
        if problem:
            decisions = [Decision(False, (problem,))] * len(keys)
        else:
            decisions = self._evaluate(requester, keys)
        by_key = dict(zip(keys, decisions, strict=True))
        return Disclosure(
            people=by_key[("people", "", "")],
            datasets={d: by_key[("dataset", d, "")] for d in wanted},
            fields={(d, f): v for (kind, d, f), v in by_key.items() if kind == "field"},
        )

    @staticmethod
    def _unusable(requester: Requester) -> str:
        if requester.role not in ROLES:
            return "unknown-role"
        if requester.purpose not in PURPOSES:
            return "unknown-purpose"
        return ""

    def _evaluate(self, requester: Requester, keys: list[tuple[str, str, str]]) -> list[Decision]:
        principal = {"type": "Requester", "id": requester.sub or "-"}
        entities = self._entities.with_added_json_str(
            json.dumps(
                [
                    {
                        "uid": principal,
                        "attrs": {
                            "role": _entity("Role", requester.role),
                            "organisation": requester.organisation,
                        },
                        "parents": [],
                    }
                ]
            )
        )
        context = {
            "purpose": _entity("Purpose", requester.purpose),
            "break_glass": bool(requester.break_glass),
            "case_reference": requester.case_reference,
        }
        requests = []
        for kind, dataset, field in keys:
            if kind == "people":
                action, resource, ctx = (
                    "disclose_people",
                    {"type": "Council", "id": self.council_gss},
                    context,
                )
            elif kind == "dataset":
                action, resource, ctx = "disclose", {"type": "Dataset", "id": dataset}, context
            else:
                action, resource = "disclose_field", {"type": "Field", "id": field}
                ctx = {**context, "dataset": _entity("Dataset", dataset)} if dataset else context
            requests.append(
                {
                    "principal": principal,
                    "action": {"type": "Action", "id": action},
                    "resource": resource,
                    "context": ctx,
                }
            )
        try:
            results = cedarpy.is_authorized_batch(
                requests, self.checked.policies, entities, self.checked.schema
            )
        except (ValueError, TypeError) as exc:
            log.error(
                "disclosure evaluation failed request_id=%s error=%s",
                _safe(requester.request_id),
                type(exc).__name__,
            )
            return [Decision(False, ("evaluation-error",))] * len(keys)
        out = []
        for (kind, dataset, field), result in zip(keys, results, strict=True):
            ids = tuple(self.checked.ids.get(r, r) for r in result.diagnostics.reasons)
            if result.diagnostics.errors:
                # A policy that failed to evaluate is skipped by Cedar; a skipped forbid must not disclose.
                log.error(
                    "disclosure evaluation error request_id=%s action=%s dataset=%s field=%s errors=%d",
                    _safe(requester.request_id),
                    kind,
                    dataset or "-",
                    field or "-",
                    len(result.diagnostics.errors),
                )
                out.append(Decision(False, ("evaluation-error",)))
            else:
                out.append(Decision(result.allowed, ids))
        return out

    # --- filtering -------------------------------------------------------------------------------
    def filter_find_people(
        self,
        requester: Requester,
        response: adapter_pb2.FindPeopleResponse,
        *,
        disclosure: Disclosure | None = None,
    ) -> adapter_pb2.FindPeopleResponse:
        """Apply the policy to a FindPeople answer, in place; returns ``response``.

        Raises :class:`DisclosureRefused` when no people may be disclosed to ``requester``; clears each
        candidate's address when ``person.address`` is withheld. ``disclosure``: the decisions already
        made for this request (``decide(requester, datasets=())``, e.g. to record them); made here if None.
        """
        if disclosure is None:
            disclosure = self.decide(requester, datasets=())
        self.require_people(requester, disclosure)
        if not disclosure.field("", "person.address").allowed:
            self._log(requester, "-", disclosure.field("", "person.address"), field="person.address")
            for person in response.candidates:
                person.ClearField("address")
        return response

    def filter_family_context(
        self,
        requester: Requester,
        response: adapter_pb2.GetFamilyContextResponse,
        *,
        disclosure: Disclosure | None = None,
    ) -> adapter_pb2.GetFamilyContextResponse:
        """Apply the policy to a GetFamilyContext answer, in place; returns ``response``.

        Raises :class:`DisclosureRefused` when no people may be disclosed. Otherwise: involvements of
        withheld datasets are removed and their outcomes set to WITHHELD ("withheld by <Council> policy";
        NOT_IN_COHORT kept); withheld fields are cleared from disclosed involvements and named in the
        outcome's reason; addresses are cleared when ``person.address`` is withheld. ``disclosure``: the
        decisions already made for this request about every dataset the answer mentions (e.g. to record
        them); made here if None (a dataset it does not decide is withheld).
        """
        present = [i.dataset_id for i in response.involvements] + [
            o.dataset_id for o in response.dataset_outcomes
        ]
        if disclosure is None:
            disclosure = self.decide(requester, datasets=present)
        self.require_people(requester, disclosure)
        withheld = {d for d in dict.fromkeys(present) if not disclosure.dataset(d).allowed}
        for dataset_id in sorted(withheld):
            self._log(requester, dataset_id, disclosure.dataset(dataset_id))
        kept = [i for i in response.involvements if i.dataset_id not in withheld]
        hidden_fields = {d: disclosure.withheld_fields(d) for d in {i.dataset_id for i in kept}}
        for dataset_id, fields in sorted(hidden_fields.items()):
            for field in fields:
                self._log(requester, dataset_id, disclosure.field(dataset_id, field), field=field)
        for involvement in kept:
            for field in hidden_fields[involvement.dataset_id]:
                _clear(involvement, field)
        del response.involvements[:]
        response.involvements.extend(kept)
        for outcome in response.dataset_outcomes:
            if outcome.dataset_id in withheld:
                if outcome.state in _REPLACED:
                    outcome.state = T.DATASET_STATE_WITHHELD
                    outcome.reason = self.withheld_reason
            elif outcome.state in (T.DATASET_STATE_RECORDS_FOUND, T.DATASET_STATE_STALE):
                fields = hidden_fields.get(outcome.dataset_id) or disclosure.withheld_fields(
                    outcome.dataset_id
                )
                if fields:
                    words = ", ".join(_FIELD_WORDS[f] for f in fields)
                    note = f"{words} withheld by {self.council_name} policy"
                    outcome.reason = f"{outcome.reason}; {note}" if outcome.reason else note
        address = disclosure.field("", "person.address")
        if not address.allowed:
            self._log(requester, "-", address, field="person.address")
            for person in response.people:
                person.ClearField("address")
        kept_ids = sorted({i.dataset_id for i in kept})
        log.info(
            "disclosure request_id=%s role=%s org=%s purpose=%s break_glass=%s people=%d involvements=%d "
            "datasets_disclosed=%s datasets_withheld=%s",
            _safe(requester.request_id),
            _safe(requester.role),
            _safe(requester.organisation),
            _safe(requester.purpose),
            str(requester.break_glass).lower(),
            len(response.people),
            len(kept),
            ",".join(kept_ids) or "-",
            ",".join(sorted(withheld)) or "-",
        )
        return response

    def require_people(self, requester: Requester, disclosure: Disclosure | None = None) -> Disclosure:
        """Whether this council's people may be disclosed to ``requester`` at all (``disclose_people``):
        returns the decisions (``disclosure``, or ``decide(requester, datasets=())`` when None), or logs the
        decision and raises :class:`DisclosureRefused` (gRPC PERMISSION_DENIED).

        The adapter asks this BEFORE it looks anything up, so a refused requester is told the same whatever
        it asks for (never NOT_FOUND: the answer reveals nothing about who is held here)."""
        if disclosure is None:
            disclosure = self.decide(requester, datasets=())
        if not disclosure.people.allowed:
            self._log(requester, "-", disclosure.people, what="people")
            raise DisclosureRefused(
                f"{self.council_name}'s sharing policy discloses no records to this requester"
            )
        return disclosure

    def _log(
        self, requester: Requester, dataset: str, decision: Decision, *, field: str = "", what: str = ""
    ) -> None:
        extra = f" field={field}" if field else (f" what={what}" if what else "")
        log.info(
            "disclosure decision request_id=%s role=%s org=%s purpose=%s break_glass=%s dataset=%s%s "
            "decision=withheld policies=%s",
            _safe(requester.request_id),
            _safe(requester.role),
            _safe(requester.organisation),
            _safe(requester.purpose),
            str(requester.break_glass).lower(),
            dataset,
            extra,
            decision.policy_text,
        )


def _clear(involvement: types_pb2.Involvement, field: str) -> None:
    if field == "practitioner.phone":
        involvement.practitioner.phone = ""
    elif field == "practitioner.email":
        involvement.practitioner.email = ""
    elif field == "involvement.summary":
        involvement.summary = ""
