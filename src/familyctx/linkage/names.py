"""Name vocabularies for linkage: titles, surname particles, placeholder given names, short forms.

Everything here works on names already folded by :func:`familyctx.linkage.normalise.fold_name`
(lower case, no diacritics, no punctuation). Nothing here is for display.

Short forms come from the PyPI package ``nicknames`` (carltonnorthern/nicknames, a curated
"name has_nickname name" list, mostly US usage), filtered and supplemented for UK usage; see
:func:`canonical_forms`.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nicknames import NickNamer

__all__ = [
    "FAMILY_PARTICLES",
    "FAMILY_PREFIXES",
    "NAME_ONLY_TITLES",
    "NAME_SUFFIXES",
    "PLACEHOLDER_FILLERS",
    "PLACEHOLDER_GIVEN_NAMES",
    "TITLES",
    "UK_SHORT_FORMS",
    "canonical_forms",
]

#: Titles removed when they lead a given or family name field ("Mrs Siobhán", "Dr. Smith") or stand
#: in brackets after it ("Smith (Mrs)"). Folded, without the dot.
TITLES = frozenset(
    {"mr", "mrs", "miss", "ms", "mx", "master", "dr", "rev", "revd", "prof", "sir", "dame", "lady", "lord"}
)

#: Titles that are also real names (the surname Lord, the given name Lady): removed only when another
#: name token follows, never when they are the whole field.
NAME_ONLY_TITLES = frozenset({"master", "dame", "lady", "lord"})

#: Generational suffixes dropped when they end a field and something precedes them.
NAME_SUFFIXES = frozenset({"jr", "jnr", "sr", "snr"})

#: Given names that mean "not named yet" or "not known": the given name is treated as missing.
#: ('notknown' is "Not Known" with the space folded away.)
PLACEHOLDER_GIVEN_NAMES = frozenset(
    {"unborn", "baby", "infant", "unknown", "nk", "notknown", "null", "none", "unnamed", "tbc", "tba"}
)

#: Words that may follow a placeholder ("Baby Girl", "Baby 2", "Unborn Twin A") and are part of it.
#: "of" ("Baby of Jane Smith") makes everything after it the parent's name, so also part of it.
PLACEHOLDER_FILLERS = frozenset(
    {"of", "boy", "girl", "male", "female", "twin", "triplet", "child", "a", "b", "c", "one", "two", "three"}
)

#: Surname particles dropped from family-name *parts* (never from the whole key): "van der Berg-Smith"
#: has parts ("berg", "smith"). Kept when nothing else would remain (the surnames Le, Du, Da).
FAMILY_PARTICLES = frozenset(
    {
        "van",
        "von",
        "der",
        "den",
        "de",
        "del",
        "della",
        "la",
        "le",
        "du",
        "di",
        "da",
        "dos",
        "das",
        "ten",
        "ter",
    }
)

#: Surname prefixes glued to the next part rather than dropped: "Mc Donald" and "O Neill" are one
#: part ("mcdonald", "oneill"), the same as "McDonald" and "O'Neill"; dropping them would make
#: McDonald agree with Donald.
FAMILY_PREFIXES = frozenset({"mc", "mac", "o", "st", "fitz", "d", "l"})

#: UK short forms and spelling variants the ``nicknames`` list lacks or files the wrong way round:
#: folded name -> folded canonical forms. Used by :func:`canonical_forms`.
UK_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "alfie": ("alfred",),
    "archie": ("archibald",),
    "evie": ("eve", "evelyn"),
    "millie": ("amelia", "mildred"),
    "tilly": ("matilda",),
    "tillie": ("matilda",),
    "maisie": ("margaret",),
    "rosie": ("rose", "rosemary"),
    "gracie": ("grace",),
    "lexi": ("alexandra", "alexa"),
    "lexie": ("alexandra", "alexa"),
    "izzy": ("isabel", "isabella", "isobel"),
    "issy": ("isabel", "isabella", "isobel"),
    "isobel": ("isabel",),
    "isabelle": ("isabel",),
    "isabella": ("isabel",),
    "abi": ("abigail",),
    "abby": ("abigail",),
    "becca": ("rebecca",),
    "kirsty": ("kirsten", "christine"),
    "kirstie": ("kirsten", "christine"),
    "katie": ("katherine", "catherine"),
    "katherine": ("catherine",),
    "kathryn": ("catherine", "katherine"),
    "catharine": ("catherine",),
    "steven": ("stephen",),
    "stevie": ("stephen", "steven"),
    "jack": ("john",),
    "johnny": ("john",),
    "jonny": ("john", "jonathan"),
    "jimmy": ("james",),
    "jamie": ("james",),
    "harry": ("henry", "harold"),
    "charlie": ("charles", "charlotte"),
    "ollie": ("oliver", "olivia"),
    "olly": ("oliver",),
    "freddie": ("frederick", "alfred"),
    "freddy": ("frederick",),
    "davey": ("david",),
    "davy": ("david",),
    "mick": ("michael",),
    "mickey": ("michael",),
    "mikey": ("michael",),
    "liam": ("william",),
    "zac": ("zachary",),
    "zak": ("zachary",),
    "zack": ("zachary",),
    "sally": ("sarah",),
    "sophie": ("sophia",),
    "mohammed": ("muhammad",),
    "mohammad": ("muhammad",),
    "mohamed": ("muhammad",),
    "mohamad": ("muhammad",),
    "muhammed": ("muhammad",),
    "shaun": ("sean",),
    "shawn": ("sean",),
    "shevaun": ("siobhan",),
    "shivaun": ("siobhan",),
    "zoey": ("zoe",),
    # Spelling variants that Jaro-Winkler scores below "strong" and the nicknames list lacks.
    "aimee": ("amy",),
    "eoin": ("owen",),
    "ciaran": ("kieran",),
    "leigh": ("lee",),
    "karl": ("carl",),
    "graeme": ("graham",),
    "neal": ("neil",),
    "jeffrey": ("geoffrey",),
    "jeffery": ("geoffrey",),
    "leanne": ("lianne",),
    "leann": ("lianne",),
    "lucie": ("lucy",),
    "stewart": ("stuart",),
    "elinor": ("eleanor",),
}

#: Relations in the ``nicknames`` list that are wrong for UK usage and would link different people.
_BLOCKED = frozenset(
    {
        ("bill", "robert"),
        ("billy", "robert"),
        ("fred", "bill"),
        ("fred", "billy"),
        ("fred", "will"),
        ("fred", "willie"),
        ("hannah", "susan"),
        ("hannah", "susannah"),
        ("william", "wilma"),
        ("bobby", "roger"),
    }
)

_namer: NickNamer | None = None
_namer_lock = threading.Lock()


def _nicknamer() -> NickNamer:
    """The ``nicknames`` lookup, loaded once (about 30 ms) on first use."""
    global _namer  # noqa: PLW0603 - a lazy module-level singleton
    if _namer is None:
        with _namer_lock:
            if _namer is None:
                from nicknames import NickNamer  # noqa: PLC0415 - deferred: the load is slow

                _namer = NickNamer()
    return _namer


@functools.lru_cache(maxsize=20_000)
def _library_canonicals(name: str) -> frozenset[str]:
    """Canonical forms of ``name`` in the ``nicknames`` list, without its reversed relations.

    The list files some relations both ways ("robert has_nickname bob" and "bob has_nickname
    robert"), so ``canonicals_of('robert')`` holds bob, bill and billy, and Robert would agree with
    William through "bill". A canonical form shorter than the name that is also its nickname is
    such a reversal and is dropped; equal-length pairs filed both ways are spelling variants
    (allan/allen, shaun/shawn) and are kept.
    """
    namer = _nicknamer()
    out = set()
    for canon in namer.canonicals_of(name):
        if (name, canon) in _BLOCKED:
            continue
        if len(canon) < len(name) and name in namer.canonicals_of(canon):
            continue
        out.add(canon)
    return frozenset(out)


@functools.lru_cache(maxsize=50_000)
def canonical_forms(name: str) -> tuple[str, ...]:
    """Sorted canonical forms of a folded given name, always including ``name`` itself.

    ``'bob'`` -> ``('bert', 'bob', 'bobby', 'robert')``; ``'robert'`` -> ``('robert',)``;
    ``'steven'`` -> ``('stephen', 'steven')``; ``''`` -> ``()``. Two given names are short forms of one
    another when their canonical forms intersect. Sources: the ``nicknames`` package (filtered, see
    :func:`_library_canonicals`) and :data:`UK_SHORT_FORMS`, applied to the name and to each of its
    library canonical forms (so 'kate' -> 'katherine' -> 'catherine'). Cached; never raises.
    """
    if not name:
        return ()
    forms = {name}
    forms.update(UK_SHORT_FORMS.get(name, ()))
    try:
        library = _library_canonicals(name)
    except Exception:  # noqa: BLE001 - a broken name list must not fail linkage; exact names still work
        library = frozenset()
    forms.update(library)
    for canon in library:
        forms.update(UK_SHORT_FORMS.get(canon, ()))
    return tuple(sorted(forms))
