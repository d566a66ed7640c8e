"""verify_log on N gateway-shaped records (three subjects, three councils each), with and without the
gateway's index cross-check (familyctx_gateway.audit_index_check). Usage: bench_audit_index.py N [URL]
(default: a SQLite file in a temporary directory). Prints seconds for each; see docs/benchmarks.md."""

import datetime as dt
import sys
import tempfile
import time

from familyctx_gateway.audit_index_check import GatewayIndexChecker
from familyctx_gateway.audit_record import (
    AuditEvent,
    AuditOutcome,
    CouncilOutcome,
    RecordClass,
    Subject,
    SubjectKind,
    audit_payload,
    index_rows,
)
from familyctx_gateway.audit_schema import audit_log_tables, metadata

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.log import MerkleLog
from familyctx.auditlog.verify import verify_log

N = int(sys.argv[1])
url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/a.sqlite"
engine = create_log_engine(url)
metadata.create_all(engine)
log = MerkleLog(engine, audit_log_tables)
t0 = time.perf_counter()
base = dt.datetime(2026, 5, 4, tzinfo=dt.UTC)
for start in range(0, N, 1000):
    batch = []
    for i in range(start, min(N, start + 1000)):
        ev = AuditEvent(
            request_id=f"r{i}",
            user_sub=f"u{i % 50}",
            user_name="Sam Walker",
            organisation="E08000007",
            roles=["social_worker"],
            client="cli",
            jti=f"j{i}",
            endpoint="POST /v1/searches",
            outcome=AuditOutcome("success"),
            http_status=200,
            record_class=RecordClass("access"),
            purpose="s47_enquiry",
            case_reference=f"C{i % 300}",
            role="social_worker",
            break_glass=False,
            break_glass_id=None,
            subjects=[
                Subject(
                    SubjectKind("searched_for"),
                    nhs_number="9434765919",
                    family_name="Oneill",
                    given_name="Zoe",
                    date_of_birth="2014-03-05",
                ),
                Subject(
                    SubjectKind("returned"),
                    gss_code="E08000007",
                    local_person_id=f"S{i}",
                    nhs_number="9434765919",
                    family_name="Oneill",
                    given_name="Zoe",
                    date_of_birth="2014-03-05",
                ),
                Subject(
                    SubjectKind("returned"),
                    gss_code="E08000035",
                    local_person_id=f"L{i}",
                    family_name="O'Neill",
                    given_name="Zoë",
                    date_of_birth="2014-03-05",
                ),
            ],
            councils=[
                CouncilOutcome("E08000007", "ok"),
                CouncilOutcome("E08000035", "ok"),
                CouncilOutcome("E08000003", "ok"),
            ],
            occurred_at=base + dt.timedelta(seconds=i),
        )
        batch.append(ev)
    with engine.begin() as conn:
        payloads = [audit_payload(e) for e in batch]
        seqs = log.append(conn, [("access", p) for p in payloads])
        for seq, p in zip(seqs, payloads, strict=True):
            for table, rows in index_rows(seq, p).items():
                if rows:
                    conn.execute(table.insert(), rows)
print(f"generated {N} in {time.perf_counter() - t0:.1f}s")
for label, checker in (("log only", None), ("log + index", GatewayIndexChecker())):
    t = time.perf_counter()
    r = verify_log(engine, audit_log_tables, public_jwks=None, index_checker=checker)
    print(f"{label}: ok={r.ok} entries={r.entries} {time.perf_counter() - t:.1f}s")
