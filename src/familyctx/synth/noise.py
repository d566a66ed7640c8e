"""Real-data quirks, applied to a share of council records (``--noise``) with a seeded Random.

Each record is hit with probability ``rate``; a hit record gets one or two quirks from :data:`QUIRKS`.
At rate 0 nothing is altered: names as born, ISO dates, ten-digit NHS numbers, canonical postcodes,
NULL for open ends. Quirks that could not apply (a day/month swap on the 20th) are not recorded.

Two quirks show in at most one council per person (``name_middle``, ``surname_double_barrelled``):
that council is drawn from the person's truth id (:func:`single_council`), so other councils holding
the same person record the name as born.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import zlib
from dataclasses import dataclass, field

from familyctx.councils import DEMO_COUNCILS
from familyctx.synth.model import Presence, TruePerson
from familyctx.synth.pools import NAME_VARIANTS, short_forms

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
    "name_title",  # a title in the forename field: "Mrs Siobhán", "Mr Dean" (children rarely: Master, Miss)
    "names_swapped",  # forename and surname the wrong way round
    "name_middle",  # a middle name after the forename, "Zoë Marie" (one council per person)
    "name_short_form",  # a common short form: Robert -> Bob, Elizabeth -> Liz (nicknames package)
    "surname_double_barrelled",  # "Smith-Jones" as "Smith", "Jones", "Smith Jones", "Jones-Smith"
    "dob_estimated",  # day of birth unknown: recorded as the 15th of the true month (SSD guidance)
    "dob_typo",  # one digit of the day or month keyed wrongly: 2016-03-05 -> 2016-03-08 or 2016-08-05
    "sex_unknown",  # sex recorded as U (unknown)
)
SENTINEL = dt.datetime(1900, 1, 1)

#: Common British middle names (the middle name a person has is drawn from their truth id).
MIDDLE_NAMES = {
    "F": ("Marie", "Louise", "Jane", "Elizabeth", "Anne", "Rose", "Grace", "May", "Victoria", "Jayne"),
    "M": ("James", "John", "David", "Michael", "Lee", "Paul", "Thomas", "Edward", "Anthony", "William"),
}
_NAME_QUIRKS_BY_POSITION = ("name_title", "name_middle")  # change the forename field's shape
#: Quirks that fit few records (a double-barrelled surname, in its one council): a hit record that can
#: take one gets it with this probability, before the uniform draw; otherwise they would almost never
#: occur. The record still gets one or two quirks in all.
_TARGETED = (("surname_double_barrelled", 0.8),)
_DOB_QUIRKS = ("dob_day_month_swap", "dob_estimated", "dob_typo")


def _stable(truth_id: str, salt: str) -> int:
    """A number fixed by ``truth_id`` (not by any Random), so every council sees the same value."""
    return zlib.crc32(f"{salt}:{truth_id}".encode())


def single_council(truth_id: str) -> str:
    """The one demo council (gss_code) allowed to record a person's middle name or one part of their
    double-barrelled surname; fixed by the truth id."""
    return DEMO_COUNCILS[_stable(truth_id, "council") % len(DEMO_COUNCILS)].gss_code


def middle_name(person: TruePerson) -> str:
    """The middle name ``person`` has (a man's or woman's name by sex; the same in every council)."""
    names = MIDDLE_NAMES["M" if person.sex == "M" else "F"]
    return names[_stable(person.truth_id, "middle") % len(names)]


def title_for(person: TruePerson, on: dt.date, rng: random.Random) -> str | None:
    """A title as councils put it in the forename field, or None when none fits (unborn, babies).

    Adults: Mr; Mrs, Miss or Ms; Dr now and then. Children 5-17: Master or Miss, and rarely (one draw
    in five; otherwise None, so the quirk goes to another field).
    """
    if person.dob is None or person.sex not in ("F", "M"):
        return None
    age = (on - person.dob).days // 365
    if age >= 18:
        if rng.random() < 0.03:
            return "Dr"
        if person.sex == "M":
            return "Mr"
        return rng.choices(("Mrs", "Miss", "Ms"), weights=(5, 3, 2) if age >= 25 else (1, 6, 2))[0]
    if age < 5 or rng.random() >= 0.2:
        return None
    return "Master" if person.sex == "M" else "Miss"


def dob_typo(d: dt.date, rng: random.Random) -> dt.date | None:
    """``d`` with one digit of its day or month (as dd/mm) keyed wrongly: a real date, not ``d`` and
    not its day/month swap, drawn among all such dates; None when there is none."""
    text = f"{d.day:02d}{d.month:02d}"
    options: list[dt.date] = []
    for pos in range(4):
        for digit in "0123456789":
            if digit == text[pos]:
                continue
            new = text[:pos] + digit + text[pos + 1 :]
            try:
                out = d.replace(day=int(new[:2]), month=int(new[2:]))
            except ValueError:
                continue
            if (out.day, out.month) != (d.month, d.day):
                options.append(out)
    return rng.choice(options) if options else None


def _double_barrel_part(family: str, rng: random.Random) -> str | None:
    """How one council records a double-barrelled surname: one part, the parts with a space, or the
    parts reversed. None when ``family`` is not double-barrelled ("A-B" with two non-empty parts)."""
    parts = family.split("-")
    if len(parts) != 2 or not all(parts):
        return None
    first, second = parts
    return rng.choice((first, second, f"{first} {second}", f"{second}-{first}"))


@dataclass(slots=True)
class RecordIdentity:
    """The identifiers as one council recorded them, plus the quirks that were applied."""

    given_name: str
    family_name: str
    dob: dt.date | None
    nhs_number: str | None
    quirks: list[str] = field(default_factory=list)
    sex: str = "U"

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
    """Decides and applies quirks for council records; ``rate`` in [0, 1].

    ``gss_code``: the council whose records this instance alters (the single-council quirks apply only
    where :func:`single_council` names it; ``None`` = no such restriction, for tests); ``as_of``: the
    date ages (for titles) are measured on.
    """

    def __init__(
        self,
        rng: random.Random,
        rate: float,
        *,
        gss_code: str | None = None,
        as_of: dt.date = dt.date(2026, 11, 1),
    ) -> None:
        self.rng = rng
        self.rate = rate
        self.gss_code = gss_code
        self.as_of = as_of

    def identity(self, presence: Presence) -> RecordIdentity:
        """The person's identifiers as ``presence``'s council recorded them.

        Protected presences (planted scenarios) get only their ``forced_quirks``. A drawn quirk that
        cannot apply to this record (no variant of the name, no NHS number) is replaced by another,
        so that ``rate`` really is the share of records with a quirk. Quirks that fit few records
        (``_TARGETED``) are tried first on a hit record that can take them.
        """
        person = presence.person
        given, family = presence.name_override or (person.given_name, person.family_name)
        rec = RecordIdentity(given, family, person.dob, person.nhs_number, sex=person.sex)
        for quirk in presence.forced_quirks:
            if self._apply(rec, quirk, person):
                rec.quirks.append(quirk)
        if presence.protected or self.rate <= 0 or self.rng.random() >= self.rate:
            return rec
        wanted = 2 if self.rng.random() < 0.3 else 1
        for quirk, share in _TARGETED:
            if self.rng.random() < share and self._apply(rec, quirk, person):
                rec.quirks.append(quirk)
        for quirk in self.rng.sample(QUIRKS, max(0, wanted - len(rec.quirks))):
            for candidate in (quirk, *self.rng.sample(QUIRKS, len(QUIRKS))):
                if candidate not in rec.quirks and self._apply(rec, candidate, person):
                    rec.quirks.append(candidate)
                    break
        return rec

    def _here(self, person: TruePerson | None) -> bool:
        """Whether a single-council quirk may touch ``person``'s record in this council."""
        return person is None or self.gss_code is None or single_council(person.truth_id) == self.gss_code

    def _apply(  # noqa: C901 - a flat table of quirks
        self, rec: RecordIdentity, quirk: str, person: TruePerson | None = None
    ) -> bool:
        """Apply ``quirk`` to ``rec``; False (``rec`` unchanged) when it cannot apply to this record.

        ``person`` (the true person) is needed by the quirks that depend on who the person is (title,
        middle name, single-council quirks); without it those use ``rec`` alone.
        """
        rng = self.rng
        unborn = rec.dob is None
        if quirk in ("name_title", "names_swapped", "name_middle", "name_short_form") and unborn:
            return False  # "Unborn" is a placeholder forename, not a name
        swapped = "names_swapped" in rec.quirks
        if quirk == "name_title":
            who = person or TruePerson("", rec.given_name, rec.family_name, rec.sex, rec.dob, None, "")
            title = None if swapped else title_for(who, self.as_of, rng)
            if title is None:
                return False
            rec.given_name = f"{title.upper() if rec.given_name.isupper() else title} {rec.given_name}"
            return True
        if quirk == "names_swapped":
            if any(q in rec.quirks for q in _NAME_QUIRKS_BY_POSITION) or not rec.family_name:
                return False
            rec.given_name, rec.family_name = rec.family_name, rec.given_name
            return True
        if quirk == "name_middle":
            if swapped or person is None or not self._here(person) or " " in rec.given_name:
                return False
            middle = middle_name(person)
            rec.given_name = f"{rec.given_name} {middle.upper() if rec.given_name.isupper() else middle}"
            return True
        if quirk == "name_short_form":
            if swapped or "name_variant" in rec.quirks:
                return False
            forms = short_forms(rec.given_name)
            if not forms:
                return False
            short = rng.choice(forms)
            rec.given_name = short.upper() if rec.given_name.isupper() else short
            return True
        if quirk == "surname_double_barrelled":
            if swapped or not self._here(person):
                return False
            part = _double_barrel_part(rec.family_name, rng)
            if part is None:
                return False
            rec.family_name = part
            return True
        if quirk in _DOB_QUIRKS and any(q in rec.quirks for q in _DOB_QUIRKS):
            return False  # one wrong date of birth per record
        if quirk == "dob_estimated":
            if rec.dob is None or rec.dob.day == 15:
                return False
            rec.dob = rec.dob.replace(day=15)
            return True
        if quirk == "dob_typo":
            keyed = dob_typo(rec.dob, rng) if rec.dob is not None else None
            if keyed is None:
                return False
            rec.dob = keyed
            return True
        if quirk == "sex_unknown":
            if rec.sex == "U":
                return False
            rec.sex = "U"
            return True
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
            if not options or swapped or "name_short_form" in rec.quirks:
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
