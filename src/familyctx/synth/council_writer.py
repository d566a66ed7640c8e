"""Turns presences into one council's warehouse rows, in that council's CMS flavour, in batches.

Rows are buffered per table and written with one ``executemany`` per ``batch_size`` rows inside the
caller's transaction, so memory stays flat at any size. Columns a flavour lacks are dropped (mosaic
has no ``ssd_family``, no ``invo_person_id``, no ``prof_professional_name``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import sqlalchemy as sa

from familyctx.councils import DemoCouncil
from familyctx.synth.bulk import BulkInserter
from familyctx.synth.model import (
    RELATIONSHIP_DESCRIPTIONS,
    TRUTH_ONLY_RELATIONSHIPS,
    AscEpisode,
    CscEpisode,
    Household,
    Presence,
)
from familyctx.synth.noise import Noise, RecordIdentity
from familyctx.synth.staff import Practitioner, StaffRoster

_PERSON_ID_BASE = {"systemc": 100_000, "mosaic": 5_000_000, "eclipse": 0}
_SEX = {"F": ("F", "Female"), "M": ("M", "Male"), "U": ("U", "Unknown")}
_UPN_ISSUERS = (356, 383, 352)  # DfE LA numbers of the demo councils
_EARLY_HELP_REASONS = (
    "Parenting support",
    "School attendance",
    "Domestic abuse",
    "Parental mental health",
    "Child's behaviour",
    "Housing and money worries",
)
_CHANGE_REASONS = ("Worker left the team", "Case transferred between teams", "Caseload review")


def _ts(d: dt.date | None) -> dt.datetime | None:
    return None if d is None else dt.datetime(d.year, d.month, d.day)


def _not_after(at: dt.datetime, moment: dt.datetime) -> dt.datetime:
    """``at``, or the same time a day earlier when ``at`` is after ``moment``, or ``moment`` when that is
    after it too (all naive UTC)."""
    if at <= moment:
        return at
    day_before = at - dt.timedelta(days=1)
    return day_before if day_before <= moment else moment


def _dmy(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


class CouncilWriter:
    """Writes one council's rows through ``conn`` (already inside a transaction)."""

    def __init__(
        self,
        council: DemoCouncil,
        conn: sa.Connection,
        metadata: sa.MetaData,
        *,
        roster: StaffRoster,
        noise: Noise,
        rng: random.Random,
        as_of: dt.date,
        batch_size: int = 5000,
    ) -> None:
        self.council = council
        self.cms = council.cms
        self.conn = conn
        self.roster = roster
        self.noise = noise
        self.rng = rng
        self._as_of = as_of
        self._bulk = {name: BulkInserter(conn, t, batch_size) for name, t in metadata.tables.items()}
        self._seq: dict[str, int] = {}
        self._referral_id: int | str = ""
        self._last_client = ""

    # -- plumbing -----------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        n = self._seq.get(kind, 0) + 1
        self._seq[kind] = n
        return n

    def add(self, table: str, **values: Any) -> None:
        """Buffer one row of ``table``; columns the flavour lacks are dropped, absent ones are NULL."""
        bulk = self._bulk.get(table)
        if bulk is not None:
            bulk.add([values.get(c) for c in bulk.columns])

    def flush(self) -> None:
        """Write every buffered row."""
        for bulk in self._bulk.values():
            bulk.flush()

    @property
    def rows_written(self) -> int:
        """Rows sent to the database so far."""
        return sum(b.written for b in self._bulk.values())

    # -- reference data -----------------------------------------------------------------------
    def write_staff(self) -> None:
        """staff_directory, ssd_professionals (children's and early help staff), ssd_department."""
        for tid, name, parent in self.roster.teams:
            self.add(
                "ssd_department",
                dept_team_id=tid,
                dept_team_name=name,
                dept_team_parent_id=f"{tid[:3]}-{parent[:3].upper()}",
                dept_team_parent_name=parent,
            )
        for p in self.roster.practitioners:
            self.add(
                "staff_directory",
                staff_id=p.staff_id,
                display_name=p.display_name,
                job_title=p.job_title,
                team_name=p.team_name,
                phone=p.phone,
                email=p.email,
            )
            if p.professional_id is not None:
                self.add(
                    "ssd_professionals",
                    prof_professional_id=p.professional_id,
                    prof_staff_id=p.staff_id,
                    prof_professional_name=p.display_name,
                    prof_social_worker_registration_no=f"SW{int(p.professional_id) + 50000}"
                    if p.service == "csc"
                    else None,
                    prof_agency_worker_flag="N",
                    prof_professional_job_title=p.job_title,
                    prof_professional_caseload=self.rng.randrange(5, 25),
                    prof_professional_department=p.team_name,
                    prof_full_time_equivalency=1.0,
                )

    def write_refresh(self, as_of: dt.date, *, now: dt.datetime | None = None) -> None:
        """warehouse_refresh: when each dataset was last loaded (naive UTC), derived from ``as_of``: the
        nightly loads at 01:30, 01:45 and 02:00 on ``as_of``, housing's weekly one at 03:00 two days
        before. Never later than ``now`` (the moment of generation, UTC; default the clock): a load time
        still to come is taken from the day before, or is ``now`` itself when that is still to come too
        (an ``as_of`` in the future). So a past ``as_of`` gives the same rows whenever it is run."""
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
        base = dt.datetime(as_of.year, as_of.month, as_of.day)
        system = {"systemc": "Liquidlogic LCS", "mosaic": "Mosaic", "eclipse": "Eclipse"}[self.cms]
        for dataset, at, every, source in (
            ("csc", base + dt.timedelta(hours=1, minutes=30), 86_400, system),
            ("early_help", base + dt.timedelta(hours=1, minutes=45), 86_400, system),
            ("asc", base + dt.timedelta(hours=2), 86_400, f"{system} Adults"),
            ("housing", base - dt.timedelta(days=2, hours=-3), 604_800, "Northgate Housing"),
        ):
            self.add(
                "warehouse_refresh",
                dataset_id=dataset,
                refreshed_at=_not_after(at, moment),
                refresh_interval_seconds=every,
                coverage_from=dt.datetime(as_of.year - 10, 4, 1),
                source_system=source,
            )

    # -- people ---------------------------------------------------------------------------------
    def person_id(self) -> str:
        """A new local person id in this council's style."""
        n = self._next("person") + _PERSON_ID_BASE[self.cms]
        return f"ECL{n:07d}" if self.cms == "eclipse" else str(n)

    def write_household(
        self, household: Household, presences: list[Presence]
    ) -> list[tuple[str, str, list[str]]]:
        """Write this council's presences of one household.

        Returns (truth_person_id, local_person_id, quirks) per record, for the ground truth.
        """
        local: dict[str, str] = {}
        out: list[tuple[str, str, list[str]]] = []
        family_id = f"F{self._next('family'):07d}"
        mother_ids = {related.truth_id for _, related, code in household.relationships if code == "MOTHER"}
        edd: dict[str, dt.date | None] = {}
        for presence in presences:
            edd[presence.person.truth_id] = presence.recorded_expected_dob
            pid = self.person_id()
            local[presence.person.truth_id] = pid
            ident = self.noise.identity(presence)
            self._person(presence, pid, ident, is_mother=presence.person.truth_id in mother_ids)
            self.add(
                "ssd_family",
                fami_table_id=f"{self._next('fami')}",
                fami_family_id=family_id,
                fami_person_id=pid,
            )
            out.append((presence.person.truth_id, pid, ident.quirks))
        # ssd_mother: the mothers of children (under 18 or unborn) this council holds both of
        for child, mother, code in household.relationships:
            if code != "MOTHER" or child.truth_id not in local or mother.truth_id not in local:
                continue
            if child.dob is not None and (self._as_of - child.dob).days >= 18 * 365:
                continue
            self.add(
                "ssd_mother",
                moth_table_id=f"{self._next('moth')}",
                moth_person_id=local[mother.truth_id],
                moth_childs_person_id=local[child.truth_id],
                moth_childs_dob=_ts(child.dob or edd.get(child.truth_id)),
            )
        self._relationships(household, local)
        return out

    def _person(self, presence: Presence, pid: str, ident: RecordIdentity, *, is_mother: bool) -> None:
        person = presence.person
        sex, gender = _SEX[ident.sex]
        missing = ident.missing_text()
        upn = None
        if person.dob is not None and 4 <= (self._as_of - person.dob).days // 365 < 19:
            # a UPN is issued once and follows the pupil: the same in every council that records it
            number = int(person.truth_id[1:])
            issuer = _UPN_ISSUERS[number % len(_UPN_ISSUERS)]
            upn = f"H{issuer}{number % 10**9:09d}"
        self.add(
            "ssd_person",
            pers_person_id=pid,
            pers_legacy_id=missing,
            pers_forename=ident.given_name,
            pers_surname=ident.family_name,
            pers_sex=sex,
            pers_gender=gender,
            pers_ethnicity=person.ethnicity,
            pers_dob=_ts(ident.dob),
            pers_single_unique_id=ident.nhs_number,
            pers_upn=upn or missing,
            pers_upn_unknown=None,
            pers_send_flag="N",
            pers_expected_dob=_ts(presence.recorded_expected_dob),
            pers_death_date=None,
            pers_is_mother="Y" if is_mother else None,
            pers_nationality="British" if self.rng.random() < 0.9 else missing,
        )
        if upn:
            self.add(
                "ssd_linked_identifiers",
                link_table_id=f"{self._next('link')}",
                link_person_id=pid,
                link_identifier_type="Unique Pupil Number",
                link_identifier_value=upn,
                link_valid_from_date=_ts(presence.addresses[0].start),
                link_valid_to_date=None,
            )
        for spell in presence.addresses:
            a = spell.address
            address = {
                "ROOM": "",
                "FLOOR": "",
                "FLAT": a.flat,
                "BUILDING": "",
                "HOUSE": a.house,
                "STREET": a.street,
                "TOWN": a.town,
                "UPRN": a.uprn,
                "EASTING": str(a.easting),
                "NORTHING": str(a.northing),
            }
            self.add(
                "ssd_address",
                addr_table_id=f"{self._next('addr')}",
                addr_person_id=pid,
                addr_address_type="Home" if spell.end is None else missing or "Previous",
                addr_address_start_date=_ts(spell.start),
                addr_address_end_date=_ts(spell.end) if spell.end else ident.open_end(),
                addr_address_postcode=ident.postcode(a.postcode),
                addr_address_json=json.dumps(address, ensure_ascii=False),
            )
        for ep in presence.csc:
            self._csc(pid, ep, ident)
        for asc in presence.asc:
            self._asc(pid, asc, ident)
        if presence.tenancy is not None:
            self._tenancy(pid, presence, ident)

    def _end(self, end: dt.date | None, ident: RecordIdentity) -> dt.datetime | None:
        return _ts(end) if end is not None else ident.open_end()

    def _csc(self, pid: str, ep: CscEpisode, ident: RecordIdentity) -> None:
        if ep.kind == "contact":
            self.add(
                "ssd_contacts",
                cont_contact_id=f"C{self._next('contact')}",
                cont_person_id=pid,
                cont_contact_date=_ts(ep.start),
                cont_contact_source_code=ep.source[:2].upper(),
                cont_contact_source_desc=ep.source,
                cont_contact_outcome_json=json.dumps({"OUTCOME": "Progress to referral"}),
            )
            return
        if ep.kind == "early_help":
            worker = self.roster.allocate("eh")
            self.add(
                "ssd_early_help_episodes",
                earl_episode_id=f"EH{self._next('eh')}",
                earl_person_id=pid,
                earl_episode_start_date=_ts(ep.start),
                earl_episode_end_date=self._end(ep.end, ident),
                earl_episode_reason=self.rng.choice(_EARLY_HELP_REASONS),
                earl_episode_end_reason=None if ep.end is None else "Outcomes met",
                earl_episode_organisation=f"{self.council.name} Early Help Hub",
                earl_episode_worker_id=worker.professional_id,
            )
            return
        if ep.kind == "cin":
            worker = self.roster.allocate("csc")
            n = self._next("referral")
            self._referral_id = n if self.cms == "mosaic" else f"R{n}"
            self.add(
                "ssd_cin_episodes",
                cine_referral_id=self._referral_id,
                cine_person_id=pid,
                cine_referral_date=_ts(ep.start),
                cine_cin_primary_need_code=ep.need_code,
                cine_referral_source_code=ep.source[:2].upper(),
                cine_referral_source_desc=ep.source,
                cine_referral_outcome_json=json.dumps({"OUTCOME": "Assessment"}),
                cine_referral_nfa="N",
                cine_close_reason=ident.missing_text() if ep.end is None else "RC1",
                cine_close_date=self._end(ep.end, ident),
                cine_referral_team=worker.team_id,
                cine_referral_worker_id=worker.professional_id,
            )
            self._involvements(pid, ep, worker, ident)
        elif ep.kind == "cp":
            self.add(
                "ssd_cp_plans",
                cppl_cp_plan_id=f"CP{self._next('cp')}",
                cppl_referral_id=str(self._referral_id),
                cppl_icpc_id=f"ICPC{self._next('icpc')}",
                cppl_person_id=pid,
                cppl_cp_plan_start_date=_ts(ep.start),
                cppl_cp_plan_end_date=self._end(ep.end, ident),
                cppl_cp_plan_ola="N",
                cppl_cp_plan_initial_category=ep.category,
                cppl_cp_plan_latest_category=ep.category,
            )
        elif ep.kind == "cla":
            self.add(
                "ssd_cla_episodes",
                clae_cla_episode_id=f"CLA{self._next('cla')}",
                clae_person_id=pid,
                clae_cla_placement_id=f"PL{self._next('placement')}",
                clae_cla_episode_start_date=_ts(ep.start),
                clae_cla_episode_start_reason="S",
                clae_cla_primary_need_code=ep.need_code,
                clae_cla_episode_ceased_date=self._end(ep.end, ident),
                clae_cla_episode_ceased_reason=None if ep.end is None else "E4A",
                clae_cla_id=f"LAC{self._next('lac')}",
                clae_referral_id=str(self._referral_id),
                clae_cla_last_iro_contact_date=None,
                clae_entered_care_date=_ts(ep.start),
            )

    def _involvements(self, pid: str, ep: CscEpisode, worker: Practitioner, ident: RecordIdentity) -> None:
        """The allocated social worker(s) for the referral (SSD ssd_involvements); a long open case
        sometimes had an earlier worker, ended with the reason for the change."""
        start = ep.start
        long_open = ep.end is None and (self._as_of - ep.start).days > 90
        if long_open and self.rng.random() < 0.3:
            earlier = self.roster.allocate("csc")
            change = ep.start + dt.timedelta(days=self.rng.randrange(30, (self._as_of - ep.start).days - 14))
            self._involvement(pid, earlier, ep.start, _ts(change), self.rng.choice(_CHANGE_REASONS))
            start = change
        self._involvement(pid, worker, start, self._end(ep.end, ident), None)

    def _involvement(
        self, pid: str, worker: Practitioner, start: dt.date, end: dt.datetime | None, reason: str | None
    ) -> None:
        self.add(
            "ssd_involvements",
            invo_involvements_id=f"I{self._next('invo')}",
            invo_professional_id=worker.professional_id,
            invo_professional_role_id="Allocated Social Worker",
            invo_professional_team=worker.team_id,
            invo_person_id=pid,
            invo_involvement_start_date=_ts(start),
            invo_involvement_end_date=end,
            invo_worker_change_reason=reason,
            invo_referral_id=str(self._referral_id),
        )

    def _asc(self, pid: str, ep: AscEpisode, ident: RecordIdentity) -> None:
        client = f"AC{pid}"
        if self._last_client != client:  # a person's ASC episodes are written one after another
            self._last_client = client
            self.add("asc_clients", client_id=client, person_id=pid, primary_support_reason=ep.reason)
        worker = self.roster.allocate("asc")
        self.add(
            "asc_involvements",
            involvement_id=f"AI{self._next('asc')}",
            client_id=client,
            service_type=ep.service_type,
            status="Open" if ep.end is None else "Closed",
            start_date_text=_dmy(ep.start),
            end_date_text=_dmy(ep.end) if ep.end else ident.open_end_text(),
            worker_staff_id=worker.staff_id,
        )

    def _tenancy(self, pid: str, presence: Presence, ident: RecordIdentity) -> None:
        t = presence.tenancy
        assert t is not None
        a = presence.addresses[-1].address
        officer = self.roster.allocate("housing")
        self.add(
            "housing_tenancies",
            tenancy_ref=f"HT{self._next('tenancy'):07d}",
            person_id=pid,
            tenant_role=t.role,
            tenancy_type=t.tenancy_type,
            start_date_text=_dmy(t.start),
            end_date_text=_dmy(t.end) if t.end else ident.open_end_text(),
            address_line1=a.line1,
            town=a.town,
            postcode=ident.postcode(a.postcode),
            arrears_pence=t.arrears_pence,
            nosp_served="Y" if t.nosp_served else "N",
            eviction_stage=t.eviction_stage,
            asb_cases=t.asb_cases,
            officer_staff_id=officer.staff_id,
        )

    def _relationships(self, household: Household, local: dict[str, str]) -> None:
        for person, related, code in household.relationships:
            a, b = local.get(person.truth_id), local.get(related.truth_id)
            if a is None or b is None or code in TRUTH_ONLY_RELATIONSHIPS:
                continue
            if code in ("SON", "DAUGHTER") and self.rng.random() < 0.5:
                continue  # child rows often recorded one way only; the adapter infers the inverse
            start = person.dob if code in ("MOTHER", "FATHER") else None
            self.add(
                "person_relationships",
                relationship_id=f"REL{self._next('rel')}",
                person_id=a,
                related_person_id=b,
                relationship_code=code,
                relationship_desc=RELATIONSHIP_DESCRIPTIONS[code],
                start_date=_ts(start),
                end_date=None,
            )
