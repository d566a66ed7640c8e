#!/usr/bin/env python3
"""Benchmark the adapter's FindPeople over a real gRPC channel, on SQLite and PostgreSQL.

For each backend: generate a Stockport warehouse with ``familyctx synth --council stockport`` (or reuse
one), run ``familyctx adapter prepare``, start ``familyctx adapter serve`` as its own process (mutual TLS
with a throw-away development PKI; Stockport's sharing policy applied), then time FindPeople sequentially
from this process, each call carrying a gateway assertion signed beforehand (as the gateway would): by
NHS number and by name + date of birth, each over
``--queries`` people sampled deterministically (seeded) from the warehouse, after a warm-up. Prints
p50/p99/mean latency in milliseconds and the share of queries whose person came back.

    .venv/bin/python scripts/bench_adapter.py --people 10000              # quick
    .venv/bin/python scripts/bench_adapter.py --people 1000000            # issue 2 target
    .venv/bin/python scripts/bench_adapter.py --sqlite-path var/bench/stockport.sqlite --no-postgres

PostgreSQL: database ``fctest_bench_adapter`` on FAMILYCTX_TEST_POSTGRES_URL's server (default
127.0.0.1:5432, user postgres), dropped afterwards unless ``--keep-postgres``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from rich.console import Console
from rich.table import Table

from familyctx.identifiers import normalise_nhs_number, parse_date
from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, Requester
from familyctx.trust.pki import DevPki, generate_dev_pki

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "services" / "adapter" / "config" / "stockport.yaml"
PG_ADMIN = os.environ.get(
    "FAMILYCTX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_DB = "fctest_bench_adapter"
STOCKPORT = "E08000007"
ISSUER = "https://gateway.familyctx.local"
#: The caller the benchmark plays: a Stockport social worker on an s17 assessment.
REQUESTER = Requester(
    sub="bench-worker",
    name="Bench Worker",
    organisation=STOCKPORT,
    role="social_worker",
    client="bench",
    purpose="s17_assessment",
    case_reference="BENCH-1",
    request_id="bench",
)
#: Person records in each backend's warehouse as benchmarked (a reused warehouse need not match --people).
WAREHOUSE_PEOPLE: dict[str, int] = {}
console = Console()


def familyctx(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from familyctx.cli import app; app()", *args],
        check=True,
        text=True,
        capture_output=capture,
    )


@dataclass
class Result:
    backend: str
    kind: str
    latencies_ms: list[float]
    hits: int

    def row(self) -> list[str]:
        lat = sorted(self.latencies_ms)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731 - nearest-rank percentile
        return [
            self.backend,
            self.kind,
            str(len(lat)),
            f"{p(0.50):.2f}",
            f"{p(0.99):.2f}",
            f"{statistics.fmean(lat):.2f}",
            f"{100 * self.hits / len(lat):.1f}%",
        ]


def sample_people(
    url: str, n: int, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, dt.date]]]:
    """(local id, valid NHS number) pairs and (local id, given, family, dob) tuples, seeded sample.

    Samples 3n person ids (sorted first, so the sample depends only on the data and the seed), then keeps
    the first n with a valid NHS number and the first n with names and a date of birth.
    """
    engine = sa.create_engine(url)
    rng = random.Random(seed)
    today = dt.date.today()
    with engine.connect() as conn:
        ids = sorted(str(i) for i in conn.execute(sa.text("SELECT pers_person_id FROM ssd_person")).scalars())
        chosen = rng.sample(ids, min(len(ids), n * 3))
        del ids
        rows = []
        query = sa.text(
            "SELECT pers_person_id, pers_single_unique_id, pers_forename, pers_surname, pers_dob "
            "FROM ssd_person WHERE pers_person_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        for i in range(0, len(chosen), 500):
            rows.extend(conn.execute(query, {"ids": chosen[i : i + 500]}).all())
    engine.dispose()
    order = {pid: k for k, pid in enumerate(chosen)}
    rows.sort(key=lambda r: order[str(r[0])])
    by_nhs = [(str(r[0]), nhs) for r in rows if (nhs := normalise_nhs_number(r[1]))][:n]
    by_name = [
        (str(r[0]), str(r[2]), str(r[3]), dob)
        for r in rows
        if (dob := parse_date(r[4]))
        and dob <= today  # an unborn child's or mistyped future date is not a searchable date of birth
        and r[2]
        and r[3]
        and str(r[2]).strip().upper() not in ("", "NULL")
    ][:n]
    return by_nhs, by_name


def trust_env(pki: DevPki) -> dict[str, str]:
    """Environment overrides pointing the adapter's tls, gateway and disclosure-log settings at ``pki``'s
    files; the disclosure log is a SQLite file beside them (the adapter commits one record per answer)."""
    disclosure_db = pki.ca_cert.parent / "disclosure-bench.sqlite"
    return {
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__DATABASE_URL": f"sqlite:///{disclosure_db}",
        "FAMILYCTX_ADAPTER_DISCLOSURE_LOG__SIGNING_KEY_FILE": str(pki.adapter_audit_key(STOCKPORT)),
        "FAMILYCTX_ADAPTER_TLS__CERT_FILE": str(pki.adapter_cert(STOCKPORT)),
        "FAMILYCTX_ADAPTER_TLS__KEY_FILE": str(pki.adapter_key(STOCKPORT)),
        "FAMILYCTX_ADAPTER_TLS__CLIENT_CA_FILE": str(pki.ca_cert),
        "FAMILYCTX_ADAPTER_GATEWAY__ISSUER": ISSUER,
        "FAMILYCTX_ADAPTER_GATEWAY__JWKS_FILE": str(pki.assertion_jwks),
    }


def start_adapter(config: Path, url: str, pki: DevPki) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from familyctx.cli import app; app()",
            "adapter",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            "--database-url",
            url,
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **trust_env(pki), "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("adapter ready on"):
        proc.kill()
        raise SystemExit(f"adapter did not start: {line!r}")
    return proc, int(line.strip().rsplit(":", 1)[1])


def run_queries(port: int, backend: str, by_nhs, by_name, warmup: int, pki: DevPki) -> list[Result]:  # noqa: ANN001
    results = []
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=pki.gateway_key.read_bytes(),
        certificate_chain=pki.gateway_cert.read_bytes(),
    )
    signer = AssertionSigner.from_file(pki.assertion_key, issuer=ISSUER, ttl_seconds=300)
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)

        def meta() -> tuple[tuple[str, str], ...]:
            """One assertion per call, as the gateway signs them (signed outside the timed section)."""
            return (
                (ASSERTION_METADATA_KEY, signer.sign(REQUESTER, audience=STOCKPORT)),
                ("x-request-id", "bench"),
            )

        def nhs_request(item):  # noqa: ANN001, ANN202
            return adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=item[1]))

        def name_request(item):  # noqa: ANN001, ANN202
            _, given, family, dob = item
            return adapter_pb2.FindPeopleRequest(
                query=adapter_pb2.PersonQuery(
                    given_name=given,
                    family_name=family,
                    date_of_birth=types_pb2.Date(year=dob.year, month=dob.month, day=dob.day),
                )
            )

        for kind, items, make in (
            ("NHS number", by_nhs, nhs_request),
            ("name + date of birth", by_name, name_request),
        ):
            for item in items[:warmup]:
                stub.FindPeople(make(item), metadata=meta(), timeout=30)
            latencies, hits = [], 0
            for item in items:
                request, metadata = make(item), meta()
                t0 = time.perf_counter()
                reply = stub.FindPeople(request, metadata=metadata, timeout=30)
                latencies.append((time.perf_counter() - t0) * 1000)
                hits += any(c.local_person_id == item[0] for c in reply.candidates)
            results.append(Result(backend, kind, latencies, hits))
    return results


def copy_sqlite_to_postgres(sqlite_path: Path, pg_url: str, cms: str = "systemc") -> int:
    """Copy a synthesised SQLite warehouse into an empty PostgreSQL database with COPY (much faster than
    synthesising again); tables from the synth's own build_metadata. Returns rows copied."""
    import sqlite3

    from familyctx.warehouse.schema import build_metadata

    md = build_metadata(cms)
    engine = sa.create_engine(pg_url)
    md.create_all(engine)
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    present = {name for (name,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    copied = 0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in md.sorted_tables:
            if table.name not in present:
                continue
            cols = ", ".join(c.name for c in table.columns)
            # Identifiers come from build_metadata, not from input.
            with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in source.execute(f"SELECT {cols} FROM {table.name}"):  # noqa: S608
                    copy.write_row(row)
                    copied += 1
        raw.commit()
    finally:
        raw.close()
        source.close()
        engine.dispose()
    return copied


def bench_backend(backend: str, url: str, config: Path, args: argparse.Namespace) -> list[Result]:
    t0 = time.perf_counter()
    out = familyctx("adapter", "prepare", "--config", str(config), "--database-url", url, capture=True)
    console.print(f"[{backend}] prepare: {time.perf_counter() - t0:.1f} s ({out.stdout.strip()[:80]})")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        people = conn.execute(sa.text("SELECT count(*) FROM ssd_person")).scalar_one()
    engine.dispose()
    WAREHOUSE_PEOPLE[backend] = people
    by_nhs, by_name = sample_people(url, args.queries, args.seed)
    console.print(f"[{backend}] sampled {len(by_nhs)} NHS-number and {len(by_name)} name+dob queries")
    pki = generate_dev_pki(Path(tempfile.mkdtemp(prefix="bench_adapter_pki_")), councils=[STOCKPORT], days=1)
    proc, port = start_adapter(config, url, pki)
    try:
        results = run_queries(port, backend, by_nhs, by_name, args.warmup, pki)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if args.direct:
        results += run_direct(config, url, backend, by_nhs, by_name, args.warmup)
    return results


def run_direct(config: Path, url: str, backend: str, by_nhs, by_name, warmup: int) -> list[Result]:  # noqa: ANN001
    """The same queries straight on SqlWarehouseSource in this process: the warehouse's share of the cost,
    without gRPC, serialisation or a second process."""
    from familyctx_adapter.queries import PersonSearch
    from familyctx_adapter.settings import load_settings
    from familyctx_adapter.sql_source import SqlWarehouseSource

    source = SqlWarehouseSource.from_settings(load_settings(config, database_url=url))
    results = []
    try:
        searches = (
            ("NHS number (no gRPC)", [(i[0], PersonSearch(nhs_number=i[1])) for i in by_nhs]),
            (
                "name + dob (no gRPC)",
                [
                    (i[0], PersonSearch(given_name=i[1], family_name=i[2], date_of_birth=i[3]))
                    for i in by_name
                ],
            ),
        )
        for kind, items in searches:
            for _, search in items[:warmup]:
                source.find_people(search, 25)
            latencies, hits = [], 0
            for expected, search in items:
                t0 = time.perf_counter()
                found = source.find_people(search, 25)
                latencies.append((time.perf_counter() - t0) * 1000)
                hits += any(p.local_person_id == expected for p in found)
            results.append(Result(backend, kind, latencies, hits))
    finally:
        source.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--people", type=int, default=10000, help="true people to synthesise (all in Stockport)"
    )
    parser.add_argument("--queries", type=int, default=2000, help="queries of each kind")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--sqlite-path", type=Path, help="reuse this Stockport warehouse instead of generating"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--keep-postgres", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--reuse-postgres", action="store_true", help="use the existing database as is")
    parser.add_argument(
        "--no-direct", dest="direct", action="store_false", help="skip the in-process (no gRPC) rows"
    )
    parser.add_argument(
        "--pg-from-sqlite",
        type=Path,
        help="fill PostgreSQL by COPY from this synthesised SQLite warehouse instead of running synth again",
    )
    parser.add_argument("--pg-database", default=PG_DB, help=f"PostgreSQL database (default {PG_DB})")
    parser.add_argument("--workdir", type=Path, help="where generated SQLite goes (default: a temp dir)")
    args = parser.parse_args()

    results: list[Result] = []
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_adapter_"))
    workdir.mkdir(parents=True, exist_ok=True)
    synth = [
        "synth",
        "--council",
        "stockport",
        "--people",
        str(args.people),
        "--seed",
        "42",
        "--as-of",
        dt.date.today().isoformat(),
        "--force",
    ]

    if not args.no_sqlite:
        path = args.sqlite_path
        if path is None:
            t0 = time.perf_counter()
            familyctx(*synth, "--out", str(workdir / "sqlite"))
            console.print(f"[sqlite] synth {args.people} people: {time.perf_counter() - t0:.1f} s")
            path = workdir / "sqlite" / "stockport.sqlite"
        results += bench_backend("SQLite", f"sqlite:///{path.resolve()}", CONFIG, args)

    if not args.no_postgres:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        db = args.pg_database
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
        try:
            if not args.reuse_postgres:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                    conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
                t0 = time.perf_counter()
                if args.pg_from_sqlite:
                    rows = copy_sqlite_to_postgres(args.pg_from_sqlite, url)
                    console.print(
                        f"[postgres] copied {rows:,} rows from {args.pg_from_sqlite}: "
                        f"{time.perf_counter() - t0:.1f} s"
                    )
                else:
                    familyctx(*synth, "--out", str(workdir / "pg"), "--database-url", f"stockport={url}")
                    console.print(f"[postgres] synth {args.people} people: {time.perf_counter() - t0:.1f} s")
            results += bench_backend("PostgreSQL", url, CONFIG, args)
        finally:
            if not args.keep_postgres:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()

    sizes = ", ".join(f"{b} {n:,}" for b, n in WAREHOUSE_PEOPLE.items()) or f"{args.people:,}"
    table = Table(title=f"Adapter FindPeople over gRPC, person records: {sizes} (Stockport, systemc)")
    for col in ("backend", "query", "n", "p50 ms", "p99 ms", "mean ms", "found"):
        table.add_column(col, justify="right" if col not in ("backend", "query") else "left")
    for r in results:
        table.add_row(*r.row())
    console.print(table)
    console.print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.platform}")


if __name__ == "__main__":
    main()
