"""Content digests of generated data, for checking that a seed reproduces the same data."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa


def database_digest(url: str) -> str:
    """SHA-256 (hex) over every row of every table at ``url``, tables by name, rows sorted.

    Independent of file layout, page order and backend: the same rows give the same digest on
    SQLite and PostgreSQL (values compared as Python objects: datetimes, ints, floats, strings).
    """
    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        digest = hashlib.sha256()
        with engine.connect() as conn:
            for name in sorted(md.tables):
                table = md.tables[name]
                digest.update(f"\x00table {name} {[c.name for c in table.columns]}\n".encode())
                rows = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
                for row in rows:
                    digest.update(row.encode())
                    digest.update(b"\n")
        return digest.hexdigest()
    finally:
        engine.dispose()
