"""Involvements: each service's work with each person, with the named practitioner.

* CSC (dataset ``csc``): CIN episodes ("Child in need"), CP plans ("Child protection plan", with the
  plan's category), CLA episodes ("Looked after"). The allocated worker comes from
  ssd_involvements (by referral id, or by person where the flavour records it) -> ssd_professionals
  -> staff_directory.
* Early help (``early_help``): ssd_early_help_episodes, worker by earl_episode_worker_id.
* Adult social care (``asc``): asc_clients -> asc_involvements (text dd/mm/yyyy dates).
* Housing (``housing``): housing_tenancies; summary is arrears (pounds), notice seeking possession,
  eviction stage and anti-social behaviour case count; no free-text notes.

Status is OPEN when the end date is missing, 'NULL', the SSD 1900-01-01 sentinel, or in the future.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from familycontext.v1 import types_pb2

from familyctx.identifiers import parse_date
from familyctx_adapter.normalise import clean_text, date_message, display_name, is_open
from familyctx_adapter.warehouse import Warehouse

__all__ = ["InvolvementReader"]

T = types_pb2
Row = Mapping[Any, Any]
ProvenanceFor = Callable[[str, str], types_pb2.Provenance]  # (logical table, record id) -> Provenance

_CATEGORY = {
    "csc": T.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE,
    "early_help": T.DATASET_CATEGORY_EARLY_HELP,
    "asc": T.DATASET_CATEGORY_ADULT_SOCIAL_CARE,
    "housing": T.DATASET_CATEGORY_HOUSING,
}

#: CIN primary need codes (DfE CIN census, N0-N9).
_NEED = {
    "N0": "Not stated",
    "N1": "Abuse or neglect",
    "N2": "Child's disability",
    "N3": "Parental illness or disability",
    "N4": "Family in acute stress",
    "N5": "Family dysfunction",
    "N6": "Socially unacceptable behaviour",
    "N7": "Low income",
    "N8": "Absent parenting",
    "N9": "Cases other than children in need",
}


def _ids(values: Iterable[object]) -> list[str]:
    out = {clean_text(v) for v in values}
    out.discard("")
    return sorted(out)


def _key(value: object) -> str:
    """A join key as text: integer-typed ids (mosaic cine_referral_id) compare with text ones."""
    text = clean_text(value)
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


@dataclass
class _Staff:
    professionals: dict[str, Row] = field(default_factory=dict)
    staff: dict[str, Row] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)


class InvolvementReader:
    """Reads involvements for a set of person ids, per dataset."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.w = warehouse

    def _rows(self, conn: sa.Connection, logical: str, column: str, keys: Sequence[str]) -> list[Row]:
        if not keys or not self.w.has(logical):
            return []
        out: list[Row] = []
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            stmt = sa.select(*self.w.cols(logical)).where(self.w.c(logical, column).in_(chunk))
            out.extend(conn.execute(stmt).mappings())
        return out

    def read(
        self, conn: sa.Connection, person_ids: Sequence[str], datasets: set[str], provenance: ProvenanceFor
    ) -> list[types_pb2.Involvement]:
        """Involvements of ``person_ids`` in ``datasets`` (ids of :data:`.warehouse.DATASET_TABLES`)."""
        today = dt.date.today()
        ids = list(person_ids)
        raw: list[tuple[str, str, Row]] = []  # (kind, person id, row)
        if "csc" in datasets:
            raw += [("cin", clean_text(r["person_id"]), r) for r in self._rows(conn, "cin", "person_id", ids)]
            raw += [("cp", clean_text(r["person_id"]), r) for r in self._rows(conn, "cp", "person_id", ids)]
            raw += [("cla", clean_text(r["person_id"]), r) for r in self._rows(conn, "cla", "person_id", ids)]
        if "early_help" in datasets:
            raw += [
                ("early_help", clean_text(r["person_id"]), r)
                for r in self._rows(conn, "early_help", "person_id", ids)
            ]
        asc_rows: list[tuple[str, Row]] = []
        if "asc" in datasets:
            clients = {
                clean_text(r["id"]): clean_text(r["person_id"])
                for r in self._rows(conn, "asc_client", "person_id", ids)
            }
            for r in self._rows(conn, "asc_involvement", "client_id", sorted(clients)):
                asc_rows.append((clients.get(clean_text(r["client_id"]), ""), r))
        tenancies = self._rows(conn, "tenancy", "person_id", ids) if "housing" in datasets else []

        allocations = self._allocations(conn, raw, ids) if "csc" in datasets else {}
        worker_ids = [clean_text(r.get("worker_id")) for _, _, r in raw]
        worker_ids += [clean_text(r["worker_id"]) for _, r in asc_rows]
        worker_ids += [clean_text(r["officer_id"]) for r in tenancies]
        worker_ids += [clean_text(inv["professional_id"]) for inv in allocations.values()]
        staff = self._staff(conn, _ids(worker_ids))

        out: list[types_pb2.Involvement] = []
        for kind, pid, row in raw:
            out.append(self._ssd_involvement(kind, pid, row, allocations, staff, provenance, today))
        for pid, row in asc_rows:
            out.append(self._asc(pid, row, staff, provenance, today))
        for row in tenancies:
            out.append(self._tenancy(row, staff, provenance, today))
        out.sort(key=lambda i: (i.local_person_id, i.dataset_id, i.status, i.involvement_id))
        return out

    # --- practitioners -------------------------------------------------------------------------------
    def _allocations(
        self, conn: sa.Connection, raw: list[tuple[str, str, Row]], ids: list[str]
    ) -> dict[str, Row]:
        """Allocated-worker involvement per referral id (``ref:<id>``) and per person (``person:<id>``):
        the open one if any, else the latest started."""
        refs = _ids(
            r["id"] if kind == "cin" else r.get("referral_id")
            for kind, _, r in raw
            if kind in ("cin", "cp", "cla")
        )
        rows = self._rows(conn, "involvement", "referral_id", refs)
        if self.w.mapping.involvements_by_person and self.w.has_column("involvement", "person_id"):
            rows += self._rows(conn, "involvement", "person_id", ids)
        today = dt.date.today()

        def rank(r: Row) -> tuple[bool, dt.date]:
            return (is_open(r["end_date"], today=today), parse_date(r["start_date"]) or dt.date.min)

        best: dict[str, Row] = {}
        for r in rows:
            keys = [f"ref:{_key(r['referral_id'])}"] if _key(r["referral_id"]) else []
            if "person_id" in r and clean_text(r["person_id"]):
                keys.append(f"person:{clean_text(r['person_id'])}")
            for k in keys:
                if k not in best or rank(r) > rank(best[k]):
                    best[k] = r
        return best

    def _staff(self, conn: sa.Connection, worker_ids: list[str]) -> _Staff:
        s = _Staff()
        s.professionals = {clean_text(r["id"]): r for r in self._rows(conn, "professional", "id", worker_ids)}
        staff_ids = _ids(worker_ids + [clean_text(p["staff_id"]) for p in s.professionals.values()])
        s.staff = {clean_text(r["id"]): r for r in self._rows(conn, "staff", "id", staff_ids)}
        if self.w.has("department"):
            teams = _ids(p["department"] for p in s.professionals.values())
            s.departments = {
                clean_text(r["id"]): display_name(r["name"])
                for r in self._rows(conn, "department", "id", teams)
            }
        return s

    def _practitioner(
        self, worker_id: str, staff: _Staff, *, role: str = "", team: str = ""
    ) -> types_pb2.Practitioner | None:
        """A worker id is an SSD professional id or a staff_directory id; names follow the flavour."""
        worker_id = clean_text(worker_id)
        if not worker_id:
            return None
        prof = staff.professionals.get(worker_id)
        person = staff.staff.get(clean_text(prof["staff_id"])) if prof else None
        if person is None and prof is None:
            person = staff.staff.get(worker_id)
        if person is None and prof is None:
            return None
        name = ""
        if prof is not None and self.w.mapping.practitioner_name_from_ssd and "name" in prof:
            name = display_name(prof["name"])
        if not name and person is not None:
            name = display_name(person["name"])
        prof_team = ""
        if prof is not None:
            dept = clean_text(prof["department"])
            prof_team = staff.departments.get(dept, dept)
        return T.Practitioner(
            name=name,
            role=(clean_text(person["job_title"]) if person else "")
            or (clean_text(prof["job_title"]) if prof else "")
            or role,
            team=(clean_text(person["team"]) if person else "") or prof_team or team,
            phone=clean_text(person["phone"]) if person else "",
            email=clean_text(person["email"]) if person else "",
        )

    # --- one message per row -------------------------------------------------------------------------
    def _base(
        self,
        dataset: str,
        kind: str,
        pid: str,
        row: Row,
        service: str,
        today: dt.date,
        provenance: ProvenanceFor,
        logical: str,
        end: object | None = None,
    ) -> types_pb2.Involvement:
        record = clean_text(row["id"])
        end_value = row["end_date"] if end is None else end
        inv = T.Involvement(
            involvement_id=f"{kind}:{record}",
            local_person_id=pid,
            dataset_id=dataset,
            category=_CATEGORY[dataset],  # type: ignore[arg-type]
            service=service,
            status=T.INVOLVEMENT_STATUS_OPEN
            if is_open(end_value, today=today)
            else T.INVOLVEMENT_STATUS_CLOSED,
            provenance=provenance(logical, record),
        )
        for fld, value in (("start_date", row["start_date"]), ("end_date", end_value)):
            msg = date_message(value)
            if msg is not None:
                getattr(inv, fld).CopyFrom(msg)
        return inv

    def _ssd_involvement(
        self,
        kind: str,
        pid: str,
        row: Row,
        allocations: dict[str, Row],
        staff: _Staff,
        provenance: ProvenanceFor,
        today: dt.date,
    ) -> types_pb2.Involvement:
        if kind == "early_help":
            inv = self._base("early_help", "eh", pid, row, "Early help", today, provenance, "early_help")
            org = display_name(row["organisation"])
            if org and len(org) <= 100:
                inv.summary = f"Organisation: {org}"
            practitioner = self._practitioner(row["worker_id"], staff)
        else:
            service = {"cin": "Child in need", "cp": "Child protection plan", "cla": "Looked after"}[kind]
            inv = self._base("csc", kind, pid, row, service, today, provenance, kind)
            ref = _key(row["id"]) if kind == "cin" else _key(row["referral_id"])
            alloc = allocations.get(f"ref:{ref}") or allocations.get(f"person:{pid}")
            practitioner = None
            if alloc is not None:
                practitioner = self._practitioner(
                    alloc["professional_id"],
                    staff,
                    role=clean_text(alloc["role"]),
                    team=clean_text(alloc["team"]),
                )
            if practitioner is None and kind == "cin":
                practitioner = self._practitioner(row["worker_id"], staff)
            if kind == "cp":
                category = display_name(row["latest_category"]) or display_name(row["initial_category"])
                if category:
                    inv.summary = f"Category: {category}"
            elif kind == "cin":
                need = clean_text(row["primary_need"]).upper()
                if need in _NEED:
                    inv.summary = f"Primary need: {_NEED[need]}"
        if practitioner is not None:
            inv.practitioner.CopyFrom(practitioner)
        return inv

    def _asc(
        self, pid: str, row: Row, staff: _Staff, provenance: ProvenanceFor, today: dt.date
    ) -> types_pb2.Involvement:
        service = display_name(row["service_type"]) or "Adult social care"
        inv = self._base("asc", "asc", pid, row, service, today, provenance, "asc_involvement")
        if parse_date(row["end_date"]) is None and clean_text(row["status"]).lower() == "closed":
            inv.status = T.INVOLVEMENT_STATUS_CLOSED
        practitioner = self._practitioner(row["worker_id"], staff)
        if practitioner is not None:
            inv.practitioner.CopyFrom(practitioner)
        return inv

    def _tenancy(
        self, row: Row, staff: _Staff, provenance: ProvenanceFor, today: dt.date
    ) -> types_pb2.Involvement:
        pid = clean_text(row["person_id"])
        inv = self._base("housing", "tenancy", pid, row, "Tenancy", today, provenance, "tenancy")
        parts = []
        kind = display_name(row["tenancy_type"])
        if kind:
            parts.append(kind)
        try:
            arrears = int(row["arrears_pence"] or 0)
        except (TypeError, ValueError):
            arrears = 0
        parts.append(f"Arrears £{arrears / 100:,.2f}" if arrears > 0 else "No arrears")
        if clean_text(row["nosp_served"]).upper() == "Y":
            parts.append("Notice seeking possession served")
        stage = display_name(row["eviction_stage"])
        if stage:
            parts.append(f"Eviction stage: {stage}")
        try:
            asb = int(row["asb_cases"] or 0)
        except (TypeError, ValueError):
            asb = 0
        if asb:
            parts.append(f"{asb} ASB case{'s' if asb != 1 else ''}")
        inv.summary = "; ".join(parts)
        practitioner = self._practitioner(row["officer_id"], staff)
        if practitioner is not None:
            inv.practitioner.CopyFrom(practitioner)
        return inv
