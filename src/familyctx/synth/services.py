"""Service histories: children's social care, early help, adult social care and housing tenancies.

Code sets follow the SSD object definitions: CIN primary need codes N1-N9 (DfE CIN census), CP
categories of abuse (Neglect, Physical abuse, Sexual abuse, Emotional abuse, Multiple).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

from familyctx.synth.identity import random_date
from familyctx.synth.model import AscEpisode, CscEpisode, Tenancy

CSC_LEVELS = ("none", "contact", "early_help", "cin", "cp", "cla")
_LEVEL_WEIGHTS = (45, 10, 17, 16, 8, 4)
CP_CATEGORIES = ("Neglect", "Physical abuse", "Sexual abuse", "Emotional abuse", "Multiple")
_CP_WEIGHTS = (48, 8, 4, 36, 4)
NEED_CODES = ("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9")
_NEED_WEIGHTS = (50, 10, 3, 20, 2, 5, 1, 2, 7)
REFERRAL_SOURCES = (
    "Police",
    "Schools",
    "Health services - GP",
    "Health services - Health visitor",
    "Local authority services",
    "Individual",
    "Anonymous",
    "Housing",
)
ASC_SERVICES = (
    "Home care",
    "Day opportunities",
    "Direct payment",
    "Reablement",
    "Carer support",
    "Residential care",
    "Supported living",
)
ASC_REASONS = (
    "Physical support: personal care",
    "Physical support: access and mobility",
    "Memory and cognition support",
    "Mental health support",
    "Learning disability support",
    "Social support: substance misuse",
    "Sensory support: visual impairment",
)
TENANCY_TYPES = ("Secure", "Introductory", "Flexible (fixed term)", "Temporary accommodation")
EVICTION_STAGES = (
    "Possession claim issued",
    "Possession order granted",
    "Warrant applied for",
    "Eviction date set",
)


def csc_level(rng: random.Random) -> str:
    """The deepest children's-services involvement a family has: one of :data:`CSC_LEVELS`."""
    return rng.choices(CSC_LEVELS, weights=_LEVEL_WEIGHTS)[0]


def _span(
    rng: random.Random,
    as_of: dt.date,
    earliest: dt.date,
    *,
    close_by: dt.date | None,
    open_p: float,
    max_days: int,
) -> tuple[dt.date, dt.date | None]:
    """A (start, end) in the five years before ``as_of``; ``end`` None = still open on ``as_of``."""
    earliest = max(earliest, as_of - dt.timedelta(days=5 * 365))
    start = random_date(rng, earliest, as_of - dt.timedelta(days=7))
    if close_by is None and rng.random() < open_p:
        return start, None
    end = start + dt.timedelta(days=rng.randrange(14, max_days))
    if close_by is not None:
        return start, max(start, min(end, close_by))
    return (start, None) if end >= as_of else (start, end)


def csc_episodes(
    rng: random.Random,
    as_of: dt.date,
    level: str,
    dob: dt.date,
    *,
    close_by: dt.date | None = None,
    not_before: dt.date | None = None,
) -> list[CscEpisode]:
    """Episodes for one child at ``level``, measured against ``as_of``.

    ``close_by``: every episode ends by this date (history kept by a council the family left);
    ``not_before``: episodes start on or after it (a council the family moved to). Unborn children
    (``dob`` in the future) get a pre-birth contact at most.
    """
    if level == "none":
        return []
    earliest = max(dob, not_before or dob)
    if dob > as_of:
        earliest = as_of - dt.timedelta(days=60)  # pre-birth contact about an unborn child
    elif earliest >= as_of - dt.timedelta(days=7):
        return []  # born days ago: nothing recorded yet
    source = rng.choice(REFERRAL_SOURCES)
    contact_day, _ = _span(rng, as_of, earliest, close_by=close_by, open_p=0, max_days=30)
    episodes = [CscEpisode("contact", contact_day, contact_day, source=source)]
    if level == "contact" or dob > as_of:
        return episodes
    if level == "early_help":
        start, end = _span(rng, as_of, contact_day, close_by=close_by, open_p=0.5, max_days=400)
        return [*episodes, CscEpisode("early_help", start, end, source=source)]
    need = rng.choices(NEED_CODES, weights=_NEED_WEIGHTS)[0]
    start, end = _span(rng, as_of, contact_day, close_by=close_by, open_p=0.6, max_days=700)
    episodes.append(CscEpisode("cin", start, end, need_code=need, source=source))
    # a CP plan follows the ICPC some weeks into the referral; a CLA episode may start at once
    later = start + dt.timedelta(days=rng.randrange(10, 45) if level == "cp" else rng.randrange(0, 60))
    later = min(later, end or as_of - dt.timedelta(days=1), as_of - dt.timedelta(days=1))
    later = max(later, start)
    if level == "cp":
        category = rng.choices(CP_CATEGORIES, weights=_CP_WEIGHTS)[0]
        episodes.append(
            CscEpisode(
                "cp",
                later,
                end,
                need_code=need,
                category=category,
                source=source,
            )
        )
    elif level == "cla":
        episodes.append(CscEpisode("cla", later, end, need_code=need, source=source))
    # an episode never ends before it starts, even when the referral closed quickly
    return [e if e.end is None or e.end >= e.start else replace(e, end=e.start) for e in episodes]


def asc_episodes(rng: random.Random, as_of: dt.date, *, older: bool) -> list[AscEpisode]:
    """One or two adult social care involvements; older people get more and longer support."""
    reason = rng.choice(ASC_REASONS[:3] if older else ASC_REASONS[3:])
    out = []
    for _ in range(rng.choice((1, 1, 2))):
        start = random_date(rng, as_of - dt.timedelta(days=6 * 365), as_of - dt.timedelta(days=14))
        end: dt.date | None = start + dt.timedelta(days=rng.randrange(30, 900))
        if rng.random() < 0.6 or (end is not None and end >= as_of):
            end = None
        out.append(AscEpisode(rng.choice(ASC_SERVICES), reason, start, end))
    return out


def tenancy(
    rng: random.Random,
    as_of: dt.date,
    since: dt.date,
    role: str,
    *,
    close_by: dt.date | None = None,
) -> Tenancy:
    """A social housing tenancy starting on or after ``since``; arrears, NOSP and ASB drawn together
    (a notice seeking possession follows arrears; eviction stages follow a notice)."""
    start = random_date(rng, since, max(since, as_of - dt.timedelta(days=30)))
    arrears = rng.randrange(5_000, 450_000) if rng.random() < 0.4 else 0
    nosp = arrears > 100_000 and rng.random() < 0.6
    stage = rng.choice(EVICTION_STAGES) if nosp and rng.random() < 0.4 else None
    asb = rng.choices((0, 1, 2, 3), weights=(80, 12, 5, 3))[0]
    return Tenancy(role, rng.choice(TENANCY_TYPES), start, close_by, arrears, nosp, stage, asb)


def joint(t: Tenancy) -> Tenancy:
    """The same tenancy seen from a joint tenant."""
    return replace(t, role="Joint tenant")
