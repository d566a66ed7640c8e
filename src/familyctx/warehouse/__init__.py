"""A council's warehouse: SSD-shaped tables plus the council's own service tables."""

from familyctx.warehouse.schema import CMS_FLAVOURS, COUNCIL_TABLES, SSD_TABLES, build_metadata

__all__ = ["CMS_FLAVOURS", "COUNCIL_TABLES", "SSD_TABLES", "build_metadata"]
