"""Alembic revisions of the gateway's audit database, oldest first (``0001_initial`` ...)."""
