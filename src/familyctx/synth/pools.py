"""Pools of names and streets, drawn once from Faker (en_GB) and then sampled with a seeded Random.

Calling Faker per row is too slow for a million people; drawing a few hundred values once per run
keeps the output realistic and the run fast. Pools are deterministic for a seed: Faker is seeded
with ``seed_instance`` and duplicates are removed in first-seen order (never by set iteration).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Names whose spelling carries a diacritic or apostrophe: the hard cases for linkage (domain.md).
DIACRITIC_GIVEN_FEMALE = ("Zoë", "Chloë", "Renée", "Siân", "Siobhán", "Róisín", "Niamh", "Aoife", "Anaïs")
DIACRITIC_GIVEN_MALE = ("Seán", "José", "Rónán", "Eóin", "François", "Zoltán", "Andrés")
APOSTROPHE_SURNAMES = ("O'Neill", "O'Brien", "O'Connor", "D'Souza", "O'Reilly", "O'Hara", "Di'Marco")
DOUBLE_SURNAMES = ("Smith-Jones", "Ali-Khan", "Taylor-Brown", "Hughes-Wright")

#: Spelling variants seen between systems for the same person (either direction).
NAME_VARIANTS: dict[str, tuple[str, ...]] = {
    "John": ("Jon", "Johnny"),
    "Jon": ("John",),
    "Zoë": ("Zoe",),
    "Zoe": ("Zoë",),
    "Stephen": ("Steven", "Steve"),
    "Steven": ("Stephen",),
    "Catherine": ("Katherine", "Cathy"),
    "Katherine": ("Catherine", "Kate"),
    "Mohammed": ("Mohammad", "Muhammad"),
    "Muhammad": ("Mohammed",),
    "Sophie": ("Sophia",),
    "Elizabeth": ("Liz", "Beth"),
    "William": ("Bill", "Will"),
    "Thomas": ("Tom",),
    "James": ("Jim", "Jamie"),
    "Rebecca": ("Becky",),
    "Jacob": ("Jake",),
    "Alexander": ("Alex",),
    "Samantha": ("Sam",),
    "Daniel": ("Dan", "Danny"),
    "Michael": ("Mike",),
    "Siobhán": ("Siobhan", "Shevaun"),
    "Seán": ("Sean", "Shaun"),
}


@dataclass(frozen=True, slots=True)
class NamePools:
    """Value pools sampled when building people and addresses.

    ``given_female``/``given_male``: forenames (also used for council staff); ``surnames``: family
    names; ``streets``: street names without a number ("Bradley Street").
    """

    given_female: tuple[str, ...]
    given_male: tuple[str, ...]
    surnames: tuple[str, ...]
    streets: tuple[str, ...]


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def build_pools(seed: int, *, size: int = 400) -> NamePools:
    """Draw name and street pools from Faker ``en_GB`` seeded with ``seed``.

    ``size`` is the number of draws per pool before duplicates are removed. The rare-spelling names
    above are added to every pool so that diacritics and apostrophes occur at every scale.
    """
    from faker import Faker  # heavy import: only when generating

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    female = _unique([fake.first_name_female() for _ in range(size)]) + DIACRITIC_GIVEN_FEMALE + ("Zoe",)
    male = _unique([fake.first_name_male() for _ in range(size)]) + DIACRITIC_GIVEN_MALE + ("John", "Jon")
    surnames = _unique([fake.last_name() for _ in range(size)]) + APOSTROPHE_SURNAMES + DOUBLE_SURNAMES
    streets = _unique([fake.street_name() for _ in range(size)])
    return NamePools(
        given_female=_unique(list(female)),
        given_male=_unique(list(male)),
        surnames=_unique(list(surnames)),
        streets=streets,
    )
