"""Identifiers for synthetic people and places: NHS numbers, postcodes, UPRNs, addresses.

NHS numbers come from the synthetic range 999xxxxxxx (``nhs_number.REGION_SYNTHETIC`` covers
9000000000-9999999999; 999 is the range NHS England reserves for test data), with the modulus-11
check digit from ``nhs_number.calculate_checksum``. They are allocated by an affine bijection over
the 10^6 nine-digit stems, so they are unique without remembering what was handed out.
"""

from __future__ import annotations

import datetime as dt
import random

import nhs_number

from familyctx.councils import DemoCouncil
from familyctx.synth.model import Address
from familyctx.synth.pools import NamePools

_STEMS = 1_000_000
_STEP = 611_953  # coprime with 10^6: k -> (k * STEP + offset) % 10^6 is a bijection
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # Royal Mail never uses C I K M O V in the inward code


class NhsNumberAllocator:
    """Hands out unique, valid synthetic NHS numbers ("999" + 6 digits + check digit).

    About 909,000 exist; once they are exhausted :meth:`next` returns ``None`` (the person then has
    no NHS number, as many real records do).
    """

    def __init__(self, seed: int) -> None:
        self._offset = random.Random(f"{seed}:nhs").randrange(_STEMS)
        self._k = 0

    def next(self) -> str | None:
        """The next unused valid NHS number, or ``None`` when the synthetic range is used up."""
        while self._k < _STEMS:
            stem = f"999{(self._k * _STEP + self._offset) % _STEMS:06d}"
            self._k += 1
            check = nhs_number.calculate_checksum(stem)
            if check is not None and check < 10:
                return f"{stem}{check}"
        return None


def random_postcode(rng: random.Random, council: DemoCouncil) -> str:
    """A canonical postcode in one of the council's districts, e.g. "SK1 3XE"."""
    district = rng.choice(council.postcode_areas)
    return f"{district} {rng.randrange(1, 10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"


# Rough OS grid centres of the demo councils, so easting/northing look local.
_GRID = {"E08000007": (389_000, 390_000), "E08000035": (430_000, 434_000), "E08000003": (384_000, 398_000)}


def random_address(rng: random.Random, council: DemoCouncil, pools: NamePools) -> Address:
    """A plausible address in the council's area with a 12-digit synthetic UPRN."""
    east, north = _GRID.get(council.gss_code, (400_000, 400_000))
    flat = f"Flat {rng.randrange(1, 40)}" if rng.random() < 0.2 else ""
    return Address(
        house=str(rng.randrange(1, 250)),
        flat=flat,
        street=rng.choice(pools.streets),
        town=council.name,
        postcode=random_postcode(rng, council),
        uprn=f"{council.dfe_la_number}{rng.randrange(10**8, 10**9)}",
        easting=east + rng.randrange(-4000, 4000),
        northing=north + rng.randrange(-4000, 4000),
        gss_code=council.gss_code,
    )


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniformly random date in [start, end] (``end`` before ``start`` gives ``start``)."""
    span = (end - start).days
    return start + dt.timedelta(days=rng.randrange(span + 1)) if span > 0 else start


def birth_date(rng: random.Random, as_of: dt.date, min_age: int, max_age: int) -> dt.date:
    """A date of birth for someone aged about ``min_age``..``max_age`` whole years on ``as_of``."""
    latest = as_of - dt.timedelta(days=int(min_age * 365.25) + 1)
    earliest = as_of - dt.timedelta(days=int((max_age + 1) * 365.25) - 1)
    return random_date(rng, earliest, latest)
