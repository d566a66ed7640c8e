"""The true world the generator draws from: people, addresses, relationships, and where each is known.

A :class:`Household` is built first, free of any council's quirks; each :class:`Presence` then says
that one council holds a record of one person (current resident, past resident, or a relative whose
address is elsewhere) and which services it has for them. Council writers turn presences into rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

#: Relationship codes (interfaces.md): "related person is <code> of person".
RELATIONSHIP_DESCRIPTIONS: dict[str, str] = {
    "MOTHER": "Mother",
    "FATHER": "Father",
    "STEPMOTHER": "Step-mother",
    "STEPFATHER": "Step-father",
    "SIBLING": "Sibling",
    "HALFSIBLING": "Half-sibling",
    "PARTNER": "Partner",
    "GRANDMOTHER": "Grandmother",
    "GRANDFATHER": "Grandfather",
    "SON": "Son",
    "DAUGHTER": "Daughter",
}

#: Codes only the ground truth holds (truth_relationships): councils record twins as SIBLING.
TRUTH_ONLY_RELATIONSHIPS: dict[str, str] = {"TWIN": "Twin (same birth; also SIBLING)"}


@dataclass(slots=True)
class TruePerson:
    """One real (synthetic) human. ``sex`` is "F" or "M"; ``dob`` is ``None`` for an unborn child,
    who has ``expected_dob`` instead; ``nhs_number`` is ten valid digits (synthetic range) or ``None``."""

    truth_id: str
    given_name: str
    family_name: str
    sex: str
    dob: dt.date | None
    nhs_number: str | None
    ethnicity: str
    expected_dob: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address in one council's area (``gss_code``); ``postcode`` canonical ("SK1 3XE")."""

    house: str
    street: str
    town: str
    postcode: str
    uprn: str
    easting: int
    northing: int
    gss_code: str
    flat: str = ""

    @property
    def line1(self) -> str:
        """First address line as housing systems hold it ("Flat 3, 12 Mill Lane")."""
        street = f"{self.house} {self.street}"
        return f"{self.flat}, {street}" if self.flat else street


@dataclass(frozen=True, slots=True)
class AddressSpell:
    """A person lived at ``address`` from ``start``; ``end`` is ``None`` while current."""

    address: Address
    start: dt.date
    end: dt.date | None


@dataclass(frozen=True, slots=True)
class CscEpisode:
    """A children's social care or early help episode.

    ``kind``: contact | early_help | cin | cp | cla. ``end`` ``None`` = open. ``category``: CP
    category of abuse (cp only); ``need_code``: CIN primary need N1..N9 (cin, cp, cla);
    ``source``: referral/contact source description.
    """

    kind: str
    start: dt.date
    end: dt.date | None
    need_code: str = "N1"
    category: str | None = None
    source: str = "Police"


@dataclass(frozen=True, slots=True)
class AscEpisode:
    """An adult social care involvement (``service_type``) for ``reason``; ``end`` ``None`` = open."""

    service_type: str
    reason: str
    start: dt.date
    end: dt.date | None


@dataclass(frozen=True, slots=True)
class Tenancy:
    """A council/social housing tenancy at the presence's address; money in pence."""

    role: str
    tenancy_type: str
    start: dt.date
    end: dt.date | None
    arrears_pence: int
    nosp_served: bool
    eviction_stage: str | None
    asb_cases: int


@dataclass(slots=True)
class Presence:
    """A council's record of one person: what that council knows and does for them.

    ``gss_code``: the council; ``addresses``: spells known to that council, oldest first;
    ``protected``: no random quirks may touch the identifiers (planted scenarios that promise a
    certain link); ``name_override``: (given, family) recorded instead of the true name;
    ``expected_dob``: an unborn child's expected date of delivery as this council holds it, when it
    differs from the true (latest) one (EDDs get revised and the earlier council keeps the old one).
    """

    person: TruePerson
    gss_code: str
    addresses: list[AddressSpell]
    csc: list[CscEpisode] = field(default_factory=list)
    asc: list[AscEpisode] = field(default_factory=list)
    tenancy: Tenancy | None = None
    protected: bool = False
    name_override: tuple[str, str] | None = None
    forced_quirks: tuple[str, ...] = ()
    expected_dob: dt.date | None = None

    @property
    def recorded_expected_dob(self) -> dt.date | None:
        """The expected date of delivery this council records (``None`` for a born person)."""
        return self.expected_dob or self.person.expected_dob


@dataclass(slots=True)
class Household:
    """People who belong together, their true relationships and every council's presences.

    ``relationships``: (person, related person, code) meaning "related is <code> of person"; codes
    are RELATIONSHIP_DESCRIPTIONS keys, or TRUTH_ONLY_RELATIONSHIPS keys that no council writes.
    """

    members: list[TruePerson]
    relationships: list[tuple[TruePerson, TruePerson, str]]
    presences: list[Presence]
