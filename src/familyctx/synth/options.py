"""What a synth run is asked to do, checked before anything is written."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from familyctx.councils import DEMO_COUNCILS, DemoCouncil

#: Reference date for ages, open episodes and warehouse_refresh when --as-of is not given.
DEFAULT_AS_OF = dt.date(2026, 11, 1)
#: Fewest people a run can hold: the planted mother_moved family.
MIN_PEOPLE = 5
MAX_PEOPLE = 5_000_000


class SynthInputError(ValueError):
    """Bad options for a synth run (the command exits with code 2). Messages hold no personal data."""


@dataclass(frozen=True, slots=True)
class SynthOptions:
    """A validated synth run.

    ``out``: directory for <slug>.sqlite files, ground_truth.sqlite and scenarios.json;
    ``people``: true people across all councils; ``councils``: councils generated;
    ``database_urls``: gss_code -> SQLAlchemy URL for councils written to a server instead of a file;
    ``noise``: share of council records given a quirk, 0..1; ``as_of``: reference date.
    """

    out: Path
    people: int = 300
    seed: int = 42
    councils: tuple[DemoCouncil, ...] = DEMO_COUNCILS
    database_urls: dict[str, str] = field(default_factory=dict)
    noise: float = 0.1
    force: bool = False
    as_of: dt.date = DEFAULT_AS_OF
    batch_size: int = 5000


def build_options(
    *,
    out: Path,
    people: int,
    seed: int,
    council_slugs: list[str],
    database_urls: list[str],
    noise: float,
    force: bool,
    as_of: dt.date = DEFAULT_AS_OF,
    batch_size: int = 5000,
) -> SynthOptions:
    """Check command-line values and build :class:`SynthOptions`.

    ``council_slugs``: slugs from DEMO_COUNCILS (empty = all); ``database_urls``: "SLUG=URL" items.
    Raises :class:`SynthInputError` with an actionable message for anything wrong.
    """
    import sqlalchemy as sa

    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise SynthInputError(f"--people must be between {MIN_PEOPLE} and {MAX_PEOPLE:,}; got {people}")
    if not 0.0 <= noise <= 1.0:
        raise SynthInputError(f"--noise must be between 0.0 and 1.0; got {noise}")
    if batch_size < 1:
        raise SynthInputError("batch size must be at least 1")
    by_slug = {c.slug: c for c in DEMO_COUNCILS}
    unknown = [s for s in council_slugs if s not in by_slug]
    if unknown:
        raise SynthInputError(f"unknown council {unknown[0]!r}; choose from: {', '.join(by_slug)}")
    chosen = tuple(c for c in DEMO_COUNCILS if not council_slugs or c.slug in council_slugs)
    urls: dict[str, str] = {}
    for item in database_urls:
        slug, sep, url = item.partition("=")
        if not sep or not url:
            raise SynthInputError(
                f"--database-url must look like SLUG=URL (e.g. leeds=postgresql+psycopg://"
                f"user@host/db); got {item.split('=')[0]!r}..."
            )
        if slug not in by_slug:
            raise SynthInputError(
                f"--database-url names unknown council {slug!r}; choose from: {', '.join(by_slug)}"
            )
        if by_slug[slug] not in chosen:
            raise SynthInputError(f"--database-url given for {slug!r}, which is not being generated")
        try:
            parsed = sa.engine.make_url(url)
            parsed.get_dialect()
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
            raise SynthInputError(
                f"--database-url for {slug!r} is not a usable SQLAlchemy URL ({type(exc).__name__})"
            ) from None
        urls[by_slug[slug].gss_code] = url
    return SynthOptions(
        out=out,
        people=people,
        seed=seed,
        councils=chosen,
        database_urls=urls,
        noise=noise,
        force=force,
        as_of=as_of,
        batch_size=batch_size,
    )
