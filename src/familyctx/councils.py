"""The demonstration federation: three local authorities, identified as domain.md describes."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEMO_COUNCILS", "GSS_CODE_PATTERN", "GSS_CODE_RULE", "DemoCouncil", "check_gss_code"]

#: An English local authority's ONS/GSS code (the SSD is English): E followed by 8 digits.
GSS_CODE_PATTERN = r"^E[0-9]{8}$"
#: The rule in words, shared by the adapter's and the gateway's settings and the gateway's 422 messages.
GSS_CODE_RULE = "must be E followed by 8 digits (a council's ONS/GSS code), for example E08000007"

_GSS_CODE = re.compile(GSS_CODE_PATTERN)


def check_gss_code(value: str) -> str:
    """Return ``value`` when it is a GSS code (``E`` + 8 digits, e.g. ``E08000007``).

    Raises ``ValueError`` with :data:`GSS_CODE_RULE` (which never repeats the value) otherwise.
    """
    if not isinstance(value, str) or not _GSS_CODE.fullmatch(value):
        raise ValueError(GSS_CODE_RULE)
    return value


@dataclass(frozen=True, slots=True)
class DemoCouncil:
    """A council of the demo federation.

    ``gss_code``: ONS/GSS code; ``dfe_la_number``: DfE three-digit LA number; ``slug``: short name used
    for file names and configuration keys; ``cms``: the SSD extract flavour its warehouse follows;
    ``port``: the adapter's default gRPC port on 127.0.0.1 in ``make demo``.
    """

    gss_code: str
    name: str
    slug: str
    dfe_la_number: int
    cms: str
    port: int
    postcode_areas: tuple[str, ...]


DEMO_COUNCILS: tuple[DemoCouncil, ...] = (
    DemoCouncil("E08000007", "Stockport", "stockport", 356, "systemc", 50061, ("SK1", "SK2", "SK3", "SK4")),
    DemoCouncil("E08000035", "Leeds", "leeds", 383, "mosaic", 50062, ("LS6", "LS7", "LS8", "LS9")),
    DemoCouncil("E08000003", "Manchester", "manchester", 352, "eclipse", 50063, ("M11", "M12", "M13", "M14")),
)
