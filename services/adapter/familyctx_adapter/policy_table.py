"""A sharing policy as a table an IG team can read: who gets which dataset for which purpose.

:func:`sharing_rows` asks the policy itself (the same Cedar evaluation the adapter runs on every answer)
for each role x requesting council x purpose, without and with break glass; :func:`render_table` prints
the rows. Roles that get nothing at all are shown on one line each with the policies that refuse them.
Used by ``familyctx adapter check-policy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from familyctx.trust.assertion import Requester
from familyctx_adapter.policy import PURPOSES, ROLES, Disclosure, SharingPolicy

__all__ = ["SharingRow", "render_table", "sharing_rows"]

#: Cell values: shared; shared only with break glass; not shared.
YES, BREAK_GLASS, NO = "yes", "break glass", "no"


@dataclass(frozen=True, slots=True)
class SharingRow:
    """One line of the table: ``role``, ``organisation`` (label of the requester's council), ``purpose``
    ("any" for a collapsed role), ``people`` and ``datasets`` (dataset id -> cell value: ``yes``,
    ``break glass``, ``no``), ``withheld_fields`` (fields withheld from what is shared, e.g.
    ``practitioner.phone`` or ``housing:involvement.summary``) and ``policies`` (ids refusing a collapsed
    role)."""

    role: str
    organisation: str
    purpose: str
    people: str
    datasets: dict[str, str]
    withheld_fields: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()


def _ask(policy: SharingPolicy, role: str, organisation: str, purpose: str, break_glass: bool) -> Disclosure:
    requester = Requester(
        sub="check-policy",
        name="",
        organisation=organisation,
        role=role,
        client="check-policy",
        purpose=purpose,
        case_reference="",
        break_glass=break_glass,
    )
    return policy.decide(requester)


def _cell(normal: bool, glass: bool) -> str:
    return YES if normal else (BREAK_GLASS if glass else NO)


def _fields(policy: SharingPolicy, d: Disclosure) -> tuple[str, ...]:
    out = [] if d.field("", "person.address").allowed else ["person.address"]
    shared = [ds for ds in policy.datasets if d.dataset(ds).allowed]
    per = {ds: d.withheld_fields(ds) for ds in shared}
    if len({tuple(v) for v in per.values()}) == 1:
        out += next(iter(per.values()))
    else:
        out += [f"{ds}:{f}" for ds, fields in per.items() for f in fields]
    return tuple(out)


def sharing_rows(policy: SharingPolicy, organisations: Sequence[tuple[str, str]]) -> list[SharingRow]:
    """Rows for every role, each of ``organisations`` (``(label, GSS code)``, e.g. ``("Stockport (own)",
    "E08000007")``; a service client is asked with organisation "") and every purpose."""
    rows: list[SharingRow] = []
    for role in ROLES:
        orgs = [("none", "")] if role == "service_client" else list(organisations)
        role_rows = []
        refusing: set[str] = set()
        for label, gss in orgs:
            for purpose in PURPOSES:
                normal = _ask(policy, role, gss, purpose, False)
                glass = _ask(policy, role, gss, purpose, True)
                refusing.update(normal.people.policies)
                role_rows.append(
                    SharingRow(
                        role=role,
                        organisation=label,
                        purpose=purpose,
                        people=_cell(normal.people.allowed, glass.people.allowed),
                        datasets={
                            ds: _cell(normal.dataset(ds).allowed, glass.dataset(ds).allowed)
                            for ds in policy.datasets
                        },
                        withheld_fields=_fields(policy, normal),
                    )
                )
        if all(r.people == NO and set(r.datasets.values()) <= {NO} for r in role_rows):
            rows.append(
                SharingRow(
                    role=role,
                    organisation="any",
                    purpose="any",
                    people=NO,
                    datasets=dict.fromkeys(policy.datasets, NO),
                    policies=tuple(sorted(refusing)) or ("default-deny",),
                )
            )
        else:
            rows.extend(_merge_councils(role_rows, len(orgs)))
    return rows


def _merge_councils(rows: list[SharingRow], councils: int) -> list[SharingRow]:
    """One row per purpose ("any council") when every requesting council gets the same."""
    per = len(rows) // councils
    firsts = rows[:per]
    same = all(
        (r.people, r.datasets, r.withheld_fields)
        == (firsts[k % per].people, firsts[k % per].datasets, firsts[k % per].withheld_fields)
        for k, r in enumerate(rows)
    )
    if not same or councils == 1:
        return rows
    return [
        SharingRow(r.role, "any council", r.purpose, r.people, r.datasets, r.withheld_fields) for r in firsts
    ]


def render_table(policy: SharingPolicy, rows: Sequence[SharingRow]) -> str:
    """The rows as a fixed-width text table with a legend."""
    head = ["role", "requester's council", "purpose", "people", *policy.datasets, "withheld fields"]
    body = []
    for r in rows:
        last = ", ".join(r.withheld_fields) or "-"
        if r.policies:
            last = f"nothing (refused by {', '.join(r.policies)})"
        body.append(
            [r.role, r.organisation, r.purpose, r.people, *(r.datasets[d] for d in policy.datasets), last]
        )
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        "people: may find people held here and see who they are; yes = shared for that purpose; "
        "break glass = shared only when the worker uses break glass; no = withheld.",
    ]
    return "\n".join(lines)
