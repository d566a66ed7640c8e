"""Real-data quirks, applied to a share of council records (``--noise``) with a seeded Random.

Each record is hit with probability ``rate``; a hit record gets one or two quirks from :data:`QUIRKS`.
At rate 0 nothing is altered: names as born, ISO dates, ten-digit NHS numbers, canonical postcodes,
NULL for open ends. Quirks that could not apply (a day/month swap on the 20th) are not recorded.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

from familyctx.synth.model import Presence
from familyctx.synth.pools import NAME_VARIANTS

#: Every quirk the generator can plant (recorded per record in ground_truth.sqlite, truth_quirks).
QUIRKS: tuple[str, ...] = (
    "name_typo",  # one letter dropped, doubled or two swapped
    "name_variant",  # Jon/John, Zoe/Zoë, Steve/Stephen
    "name_plain",  # diacritics and apostrophes lost: Zoë -> Zoe, O'Neill -> ONeill
    "name_upper",  # SURNAME AND FORENAME IN CAPITALS
    "dob_day_month_swap",  # 05/03 recorded as 03/05
    "nhs_missing",  # NULL or the string 'NULL'
    "nhs_invalid",  # bad check digit
    "nhs_placeholder",  # 9999999999
    "nhs_formatted",  # "999 123 4567" or "999-123-4567"
    "postcode_nospace",  # "SK13XE"
    "postcode_lower",  # "sk1 3xe"
    "open_end_sentinel",  # open end recorded as 1900-01-01 ('01/01/1900' in text dates)
    "null_string",  # the string 'NULL' in text columns that have no value
)
SENTINEL = dt.datetime(1900, 1, 1)


@dataclass(slots=True)
class RecordIdentity:
    """The identifiers as one council recorded them, plus the quirks that were applied."""

    given_name: str
    family_name: str
    dob: dt.date | None
    nhs_number: str | None
    quirks: list[str] = field(default_factory=list)

    def has(self, quirk: str) -> bool:
        """Whether ``quirk`` was applied to this record."""
        return quirk in self.quirks

    def postcode(self, canonical: str) -> str:
        """``canonical`` ("SK1 3XE") as this record stores it."""
        if self.has("postcode_nospace"):
            canonical = canonical.replace(" ", "")
        if self.has("postcode_lower"):
            canonical = canonical.lower()
        return canonical

    def open_end(self) -> dt.datetime | None:
        """How this record stores an open end date in a DateTime column."""
        return SENTINEL if self.has("open_end_sentinel") else None

    def open_end_text(self) -> str:
        """How this record stores an open end date in a dd/mm/yyyy text column."""
        if self.has("open_end_sentinel"):
            return "01/01/1900"
        return "NULL" if self.has("null_string") else ""

    def missing_text(self) -> str | None:
        """How this record stores a missing text value."""
        return "NULL" if self.has("null_string") else None


def strip_marks(name: str) -> str:
    """Zoë -> Zoe, O'Neill -> ONeill: what systems without Unicode or apostrophes keep."""
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return plain.replace("'", "").replace("\u2019", "")


def typo(name: str, rng: random.Random) -> str:
    """A one-keystroke error: drop, double or swap letters (names shorter than four are left alone)."""
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return name[:i] + name[i + 1 :]
    if kind == 1:
        return name[:i] + name[i] + name[i:]
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


class Noise:
    """Decides and applies quirks for council records; ``rate`` in [0, 1]."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self.rng = rng
        self.rate = rate

    def identity(self, presence: Presence) -> RecordIdentity:
        """The person's identifiers as ``presence``'s council recorded them.

        Protected presences (planted scenarios) get only their ``forced_quirks``. A drawn quirk that
        cannot apply to this record (no variant of the name, no NHS number) is replaced by another,
        so that ``rate`` really is the share of records with a quirk.
        """
        person = presence.person
        given, family = presence.name_override or (person.given_name, person.family_name)
        rec = RecordIdentity(given, family, person.dob, person.nhs_number)
        for quirk in presence.forced_quirks:
            if self._apply(rec, quirk):
                rec.quirks.append(quirk)
        if presence.protected or self.rate <= 0 or self.rng.random() >= self.rate:
            return rec
        for quirk in self.rng.sample(QUIRKS, 2 if self.rng.random() < 0.3 else 1):
            for candidate in (quirk, *self.rng.sample(QUIRKS, 3)):
                if candidate not in rec.quirks and self._apply(rec, candidate):
                    rec.quirks.append(candidate)
                    break
        return rec

    def _apply(self, rec: RecordIdentity, quirk: str) -> bool:  # noqa: C901 - a flat table of quirks
        rng = self.rng
        if quirk == "name_typo":
            if rng.random() < 0.5:
                new = typo(rec.given_name, rng)
                changed, rec.given_name = new != rec.given_name, new
            else:
                new = typo(rec.family_name, rng)
                changed, rec.family_name = new != rec.family_name, new
            return changed
        if quirk == "name_variant":
            options = NAME_VARIANTS.get(rec.given_name)
            if not options:
                return False
            rec.given_name = rng.choice(options)
            return True
        if quirk == "name_plain":
            g, f = strip_marks(rec.given_name), strip_marks(rec.family_name)
            changed = (g, f) != (rec.given_name, rec.family_name)
            rec.given_name, rec.family_name = g, f
            return changed
        if quirk == "name_upper":
            rec.given_name, rec.family_name = rec.given_name.upper(), rec.family_name.upper()
            return True
        if quirk == "dob_day_month_swap":
            d = rec.dob
            if d is None or d.day > 12 or d.day == d.month:
                return False
            rec.dob = d.replace(month=d.day, day=d.month)
            return True
        if quirk in ("nhs_missing", "nhs_invalid", "nhs_placeholder", "nhs_formatted"):
            return self._nhs(rec, quirk)
        return quirk in QUIRKS  # postcode, sentinel and NULL quirks are applied by the writer

    def _nhs(self, rec: RecordIdentity, quirk: str) -> bool:
        nhs = rec.nhs_number
        if quirk == "nhs_placeholder":
            rec.nhs_number = "9999999999"
            return True
        if nhs is None or len(nhs) != 10 or not nhs.isdigit():
            return False  # already missing or already altered by another quirk
        if quirk == "nhs_missing":
            rec.nhs_number = "NULL" if self.rng.random() < 0.3 else None
        elif quirk == "nhs_invalid":
            wrong = (int(nhs[9]) + self.rng.randrange(1, 10)) % 10
            rec.nhs_number = nhs[:9] + str(wrong)
        else:
            sep = self.rng.choice((" ", "-"))
            rec.nhs_number = sep.join((nhs[:3], nhs[3:6], nhs[6:]))
        return True
