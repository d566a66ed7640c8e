"""Alembic migrations of the adapter's disclosure log (run by :mod:`familyctx_adapter.disclosure_schema`)."""
