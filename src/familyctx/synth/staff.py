"""A council's practitioners: the staff directory, SSD professionals and departments (teams).

Contact details are obviously synthetic: phone numbers from Ofcom's ranges reserved for drama
(0161 496 0000-0999, 0113 496 0000-0999) and e-mail under ``<slug>.example.gov.uk``.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from familyctx.councils import DemoCouncil
from familyctx.synth.pools import NamePools

#: (service, job title, team) pattern; staff are assigned round the pattern so every service has staff.
_ROLES: tuple[tuple[str, str, str], ...] = (
    ("csc", "Social Worker", "Children's Assessment Team"),
    ("csc", "Senior Social Worker", "Child Protection Team"),
    ("csc", "Social Worker", "Children in Care Team"),
    ("eh", "Early Help Practitioner", "Early Help Hub"),
    ("asc", "Adult Social Worker", "Adult Social Care Locality Team"),
    ("housing", "Housing Officer", "Tenancy Services"),
    ("csc", "Advanced Practitioner", "Child Protection Team"),
    ("csc", "Social Worker", "Family Support Team"),
    ("eh", "Family Support Worker", "Early Help Hub"),
    ("asc", "Occupational Therapist", "Adult Social Care Locality Team"),
    ("housing", "Tenancy Sustainment Officer", "Tenancy Services"),
    ("asc", "Care Coordinator", "Adult Social Care Hospital Team"),
)
_PARENT = {
    "csc": "Children's Social Care",
    "eh": "Early Help",
    "asc": "Adult Social Care",
    "housing": "Housing",
}
_DIALLING = {"E08000035": "0113 496"}  # Leeds; Stockport and Manchester share 0161


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A member of staff. ``service``: csc | eh | asc | housing; ``professional_id`` is the SSD
    ``prof_professional_id`` (children's and early help staff only, else ``None``)."""

    staff_id: str
    professional_id: str | None
    display_name: str
    job_title: str
    team_id: str
    team_name: str
    service: str
    phone: str
    email: str


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum() or ch in ".-")


class StaffRoster:
    """Every practitioner of one council, and a seeded way to allocate one to a case."""

    def __init__(self, council: DemoCouncil, pools: NamePools, rng: random.Random, size: int) -> None:
        self.council = council
        self.practitioners: list[Practitioner] = []
        self.by_service: dict[str, list[Practitioner]] = {"csc": [], "eh": [], "asc": [], "housing": []}
        self._rng = rng
        prefix = council.slug[:3].upper()
        teams = {team: f"{prefix}-T{i + 1:02d}" for i, team in enumerate(dict.fromkeys(r[2] for r in _ROLES))}
        used_emails: set[str] = set()
        dialling = _DIALLING.get(council.gss_code, "0161 496")
        for n in range(max(size, len(_ROLES))):
            service, title, team = _ROLES[n % len(_ROLES)]
            given = rng.choice(pools.given_female + pools.given_male)
            family = rng.choice(pools.surnames)
            local = f"{_ascii(given)}.{_ascii(family)}"
            email = f"{local}@{council.slug}.example.gov.uk"
            if email in used_emails:
                email = f"{local}{n + 1}@{council.slug}.example.gov.uk"
            used_emails.add(email)
            phone = f"{dialling} {n % 1000:04d}" + (f" ext {n // 1000}" if n >= 1000 else "")
            p = Practitioner(
                staff_id=f"{prefix}{n + 1:05d}",
                professional_id=f"{n + 1}" if service in ("csc", "eh") else None,
                display_name=f"{given} {family}",
                job_title=title,
                team_id=teams[team],
                team_name=team,
                service=service,
                phone=phone,
                email=email,
            )
            self.practitioners.append(p)
            self.by_service[service].append(p)
        self.teams = [
            (tid, name, _PARENT[next(r[0] for r in _ROLES if r[2] == name)]) for name, tid in teams.items()
        ]

    def allocate(self, service: str) -> Practitioner:
        """A practitioner of ``service`` (csc | eh | asc | housing), drawn with the roster's Random."""
        return self._rng.choice(self.by_service[service])
