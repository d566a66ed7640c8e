"""Does the warehouse look like the CMS flavour the config names? (a wrong ``cms`` must not serve).

The SSD extracts of the three flavours differ in a few places (src/familyctx/warehouse/ssd/
ssd_ddl_reference_<cms>.csv): Mosaic has no ``ssd_family`` table, no ``ssd_involvements.invo_person_id``
and no ``ssd_professionals.prof_professional_name``; System C (Liquidlogic) and Eclipse have all three.
A Mosaic mapping on a System C warehouse would otherwise pass the column check (it reads a subset) and
serve involvements joined the Mosaic way; this check refuses it at start-up and in ``adapter prepare``.
System C and Eclipse extracts are the same shape in these features, so the check tells Mosaic from
"System C or Eclipse", not System C from Eclipse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from familyctx_adapter.errors import WarehouseMappingError
from familyctx_adapter.mapping import FlavourMapping

__all__ = ["FLAVOUR_MARKERS", "FlavourMarker", "check_flavour"]

#: Column names by lower-cased physical table name (as the inspector reports the warehouse).
Schema = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class FlavourMarker:
    """One distinguishing feature: ``table`` (default physical name, or ``column`` of it) exists in
    the flavours listed in ``present_in`` and not in the others."""

    logical: str
    table: str
    column: str | None
    present_in: frozenset[str]

    def describe(self) -> str:
        return f"column {self.table}.{self.column}" if self.column else f"table {self.table}"

    def found(self, schema: Schema, physical: Callable[[str, str], str]) -> bool:
        columns = schema.get(physical(self.logical, self.table).lower())
        if columns is None:
            return False
        return self.column is None or self.column.lower() in columns


_NOT_MOSAIC = frozenset({"systemc", "eclipse"})
FLAVOUR_MARKERS: tuple[FlavourMarker, ...] = (
    FlavourMarker("family", "ssd_family", None, _NOT_MOSAIC),
    FlavourMarker("involvement", "ssd_involvements", "invo_person_id", _NOT_MOSAIC),
    FlavourMarker("professional", "ssd_professionals", "prof_professional_name", _NOT_MOSAIC),
)
_FLAVOURS = ("systemc", "mosaic", "eclipse")


def check_flavour(mapping: FlavourMapping, schema: Schema) -> None:
    """Raise :class:`WarehouseMappingError` when a distinguishing feature of the warehouse (``schema``:
    {lower-case table name: lower-case column names}) contradicts ``mapping.cms``; the message names
    the features and the flavour(s) the warehouse looks like. Table renames in the mapping are honoured.
    Says nothing when ssd_involvements or ssd_professionals is missing (the mapping check reports that).
    """

    def physical(logical: str, default: str) -> str:
        return mapping.table(logical).table if mapping.has(logical) else default

    if any(physical(m.logical, m.table).lower() not in schema for m in FLAVOUR_MARKERS if m.column):
        return  # a table every flavour has is missing: the mapping check names it
    found = {marker: marker.found(schema, physical) for marker in FLAVOUR_MARKERS}
    wrong = [m for m, present in found.items() if present != (mapping.cms in m.present_in)]
    if not wrong:
        return
    fits = [f for f in _FLAVOURS if all(present == (f in m.present_in) for m, present in found.items())]
    likely = " or ".join(fits) if fits else "none of systemc, mosaic, eclipse"
    details = "; ".join(
        f"{m.describe()} {'present' if found[m] else 'absent'} "
        f"(expected {'absent' if found[m] else 'present'})"
        for m in wrong
    )
    raise WarehouseMappingError(
        f"the warehouse does not look like a {mapping.cms} SSD warehouse: {details}. It looks like "
        f"{likely}; set `cms:` in the adapter config to the council's case management system."
    )
