"""Alembic revisions of the adapter's disclosure log, oldest first."""
