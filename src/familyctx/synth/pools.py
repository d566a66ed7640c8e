"""Pools of names and streets, drawn once from Faker (en_GB) and then sampled with a seeded Random.

Calling Faker per row is too slow for a million people; drawing a few hundred values once per run
keeps the output realistic and the run fast. Pools are deterministic for a seed: Faker is seeded
with ``seed_instance`` and duplicates are removed in first-seen order (never by set iteration).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

#: Names whose spelling carries a diacritic or apostrophe: the hard cases for linkage (domain.md).
DIACRITIC_GIVEN_FEMALE = ("Zoë", "Chloë", "Renée", "Siân", "Siobhán", "Róisín", "Niamh", "Aoife", "Anaïs")
DIACRITIC_GIVEN_MALE = ("Seán", "José", "Rónán", "Eóin", "François", "Zoltán", "Andrés")
APOSTROPHE_SURNAMES = ("O'Neill", "O'Brien", "O'Connor", "D'Souza", "O'Reilly", "O'Hara", "Di'Marco")
DOUBLE_SURNAMES = ("Smith-Jones", "Ali-Khan", "Taylor-Brown", "Hughes-Wright")

#: Spellings of one given name seen between systems for the same person (each cluster read both ways):
#: the names of Faker's en_GB pools and the planted rare spellings. Short forms (Bob for Robert) are
#: not here: they come from the ``nicknames`` package (:func:`short_forms`).
_VARIANT_CLUSTERS: tuple[tuple[str, ...], ...] = (
    ("John", "Jon"),
    ("Jonathan", "Jonathon"),
    ("Zoë", "Zoe"),
    ("Chloë", "Chloe"),
    ("Renée", "Renee"),
    ("Siobhán", "Siobhan", "Shevaun"),
    ("Seán", "Sean", "Shaun", "Shawn"),
    ("Róisín", "Roisin"),
    ("Anaïs", "Anais"),
    ("Eóin", "Eoin", "Owen"),
    ("Stephen", "Steven"),
    ("Philip", "Phillip"),
    ("Catherine", "Katherine", "Kathryn", "Catharine"),
    ("Mohammed", "Mohammad", "Muhammad", "Mohamed"),
    ("Claire", "Clare", "Clair"),
    ("Tracey", "Tracy"),
    ("Ann", "Anne"),
    ("Lesley", "Leslie"),
    ("Hayley", "Haley", "Hailey"),
    ("Leanne", "Lianne", "Leann"),
    ("Geoffrey", "Jeffrey"),
    ("Matthew", "Mathew"),
    ("Alan", "Allan", "Allen"),
    ("Neil", "Neal"),
    ("Carl", "Karl"),
    ("Lewis", "Louis"),
    ("Connor", "Conor"),
    ("Callum", "Calum"),
    ("Rebecca", "Rebekah"),
    ("Sarah", "Sara"),
    ("Natalie", "Nathalie"),
    ("Alison", "Allison"),
    ("Gillian", "Jillian"),
    ("Michelle", "Michele"),
    ("Stuart", "Stewart"),
    ("Graham", "Graeme"),
    ("Terence", "Terrence"),
    ("Isabel", "Isobel", "Isabelle"),
    ("Megan", "Meghan"),
    ("Elliot", "Elliott"),
    ("Ashley", "Ashleigh"),
    ("Kieran", "Kieron", "Ciaran"),
    ("Brian", "Bryan"),
    ("Lee", "Leigh"),
    ("Amy", "Aimee"),
    ("Lucy", "Lucie"),
    ("Emily", "Emilie"),
    ("Holly", "Hollie"),
    ("Deborah", "Debra"),
    ("Stacey", "Stacy"),
    ("Kerry", "Kerri"),
    ("Kimberley", "Kimberly"),
    ("Glenn", "Glen"),
    ("Rachel", "Rachael"),
    ("Jacqueline", "Jaqueline"),
    ("Joanne", "Joann"),
    ("Marian", "Marion"),
    ("Lindsay", "Lindsey"),
    ("Caroline", "Carolyn"),
    ("Kelly", "Kelley"),
    ("Nicola", "Nichola"),
    ("Hannah", "Hanna"),
    ("Jade", "Jayde"),
    ("Teresa", "Theresa"),
    ("Eleanor", "Elinor"),
    ("Mark", "Marc"),
    ("Frederick", "Frederic"),
    ("Nicholas", "Nicolas"),
    ("Darren", "Darran"),
    ("Dominic", "Dominick"),
    ("Russell", "Russel"),
    ("Aaron", "Aron"),
    ("Ian", "Iain"),
    ("Sheila", "Shelagh"),
    ("Cheryl", "Sheryl"),
    ("Carol", "Carole"),
    ("Diane", "Dianne"),
    ("Joanna", "Johanna"),
    ("Suzanne", "Susanne"),
    ("Lorraine", "Loraine"),
    ("Katie", "Katy", "Katey"),
    ("Sophie", "Sophia"),
    ("Jamie", "Jaime"),
    ("Bethany", "Bethanie"),
    ("Abigail", "Abigale"),
)

#: Spelling variants seen between systems for the same person (either direction), from the clusters.
NAME_VARIANTS: dict[str, tuple[str, ...]] = {
    name: tuple(other for other in cluster if other != name)
    for cluster in _VARIANT_CLUSTERS
    for name in cluster
}

#: Forms the ``nicknames`` list gives as nicknames that are distinct given names or rare clippings, not
#: the short form a council would record (Mary for Maureen, Peter for Patrick, Gare for Gareth).
_NOT_SHORT_FORMS = frozenset(
    {
        "anna",
        "annie",
        "carol",
        "carole",
        "casey",
        "cassie",
        "char",
        "clara",
        "cole",
        "elaine",
        "ellen",
        "emma",
        "gare",
        "gary",
        "helen",
        "jamie",
        "jos",
        "kara",
        "kari",
        "lynn",
        "marie",
        "mary",
        "micah",
        "nathan",
        "nora",
        "peter",
        "randy",
        "rian",
        "roge",
        "ry",
        "sandra",
        "sha",
        "shay",
        "stephani",
        "wil",
    }
)

#: Short forms common in the UK that Faker's forename lists lack (they do hold Bob, Bill, Kate, Sue).
_ALSO_IN_USE = frozenset(
    (
        "andy becca bernie bert chrissy dot freddie freddy gerry jacqui jez jonny josie kenny len lenny "
        "liz lizzie lizzy lottie maggie marty matty mick micky mikey ned nick nicky ollie paddy pip "
        "richie ronny sammy stevie ted teddy timmy trish vinny"
    ).split()
)

#: Faker locales whose forenames define which short forms are in real use today.
_FORENAME_LOCALES = ("en_GB", "en_US", "en_IE", "en_NZ")


@functools.cache
def _forenames_in_use() -> frozenset[str]:
    import importlib

    names: set[str] = set()
    for locale in _FORENAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in ("first_names", "first_names_female", "first_names_male"):
            names.update(n.lower() for n in getattr(provider, attr, ()))
    return frozenset(names)


@functools.cache
def _nicknamer() -> Any:
    from nicknames import NickNamer  # the package's own hand-curated English name/nickname list

    return NickNamer()


@functools.cache
def short_forms(name: str) -> tuple[str, ...]:
    """Common short forms of the given name ``name`` ("Robert" -> ("Bob", "Bobby", "Rob")), sorted.

    Drawn from the ``nicknames`` package (``NickNamer().nicknames_of``), keeping only forms in use
    today: shorter than ``name``; either a prefix of it ("Rob"), a forename in Faker's English
    locales ("Bob") or a common British short form Faker lacks ("Liz", "Ted"); and built from the
    name's own letters (the same initial, or its second and third letters found in ``name``: "Bob"
    from rOBert, "Liz" from elIZabeth). That drops
    archaic forms (Dob, Hob, Hobkin for Robert) and cognates the list also holds (Ian for John,
    Peter for Patrick, kept out by a short list), and spellings that are :data:`NAME_VARIANTS` (Sara
    for Sarah). Names the list does not know give ``()``; the result is title-cased.
    """
    full = name.strip().lower()
    if not full:
        return ()
    in_use = _forenames_in_use() | _ALSO_IN_USE
    spellings = NAME_VARIANTS.get(name.strip().capitalize(), ())
    kept = []
    for short in _nicknamer().nicknames_of(full):
        if not 2 <= len(short) < len(full) or not short.isalpha():
            continue
        if not (full.startswith(short) or short in in_use):
            continue
        if short[0] != full[0] and short[1:3] not in full:
            continue
        if short in _NOT_SHORT_FORMS or short.capitalize() in spellings:
            continue
        kept.append(short.capitalize())
    return tuple(sorted(kept))


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
