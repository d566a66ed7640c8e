"""What a FindPeople by NHS number sends to PostgreSQL, read from libpq's own protocol trace.

Pins the reason the PostgreSQL lookup is fast (docs/benchmarks.md, Adapter): the warehouse is read in
autocommit, so a lookup is one round trip (no BEGIN, no ROLLBACK when the pool takes the connection
back), and psycopg's prepared statement survives between requests, so the server does not parse and
plan the statement again. Counts protocol messages, not time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.sql_source import SqlWarehouseSource
from unit.test_adapter_fixture_warehouse import CHILD, CHILD_NHS, build_warehouse, settings_for


def _frontend_messages(trace: Path) -> list[tuple[str, str]]:
    """(message type, rest of line) for every message the client sent, from a libpq trace file."""
    out = []
    for line in trace.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] == "F":
            out.append((parts[2], "\t".join(parts[3:])))
    return out


def test_nhs_lookup_is_one_prepared_round_trip(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    source = SqlWarehouseSource.from_settings(settings_for("systemc", postgres_url, worker_threads=1))
    try:
        prepare_indexes(source.w)
        search = PersonSearch(nhs_number=CHILD_NHS)
        for _ in range(6):  # past psycopg's prepare_threshold (5 uses of the same SQL on a connection)
            source.find_people(search, 25)

        trace = tmp_path / "libpq.trace"
        with trace.open("w") as sink:

            def on_checkout(dbapi_connection: Any, *_: Any) -> None:
                dbapi_connection.pgconn.trace(sink.fileno())
                dbapi_connection.pgconn.set_trace_flags(
                    psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
                )

            def on_checkin(dbapi_connection: Any, *_: Any) -> None:
                dbapi_connection.pgconn.untrace()

            sa.event.listen(source.w.engine, "checkout", on_checkout)
            sa.event.listen(source.w.engine, "checkin", on_checkin)
            try:
                found = source.find_people(search, 25)
            finally:
                sa.event.remove(source.w.engine, "checkout", on_checkout)
                sa.event.remove(source.w.engine, "checkin", on_checkin)
    finally:
        source.close()

    assert [p.local_person_id for p in found] == [CHILD]
    sent = _frontend_messages(trace)
    # No simple-protocol commands at all: no BEGIN before the lookup, no ROLLBACK after it.
    assert [rest for kind, rest in sent if kind == "Query"] == []
    # The person statement went as Bind to an already prepared statement: never parsed again.
    assert not [rest for kind, rest in sent if kind == "Parse" and "ssd_person" in rest]
    person_binds = [rest for kind, rest in sent if kind == "Bind" and CHILD_NHS in rest]
    assert len(person_binds) == 1
    assert '"_pg3_' in person_binds[0]
