"""``familyctx audit`` as a real process on an adapter's disclosure log and on the gateway's audit log:
an untouched log verifies; an edited record, and a truncated tail checked against exported heads, are
found (exit 1); a rewritten log contradicts kept heads on the next export; usage errors exit 2, never with
a traceback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, types_pb2
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter import disclosure_schema as schema
from familyctx_adapter.disclosure import DisclosureLog, log_id_for

from familyctx.auditlog.heads import TreeHead, TreeHeadSigner
from familyctx.auditlog.log import MerkleLog
from familyctx.auditlog.merkle import Frontier
from familyctx.auditlog.tables import log_tables
from familyctx.trust.assertion import Requester, VerifiedAssertion
from familyctx.trust.pki import DevPki

LEEDS = "E08000035"


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", "from familyctx.cli import app; app()", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def _record(n: int) -> tuple[str, dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    who = Requester(
        sub="worker-1",
        name="Test Worker",
        organisation="E08000007",
        role="social_worker",
        client="familyctx-web",
        purpose="s47_enquiry",
        case_reference=f"CASE-{n:04d}",
        request_id=f"rid-{n}",
    )
    verified = VerifiedAssertion(who, f"jti-{n}", now, now + dt.timedelta(seconds=60), LEEDS)
    maker = dr.RecordMaker(LEEDS, "FindPeople", verified, dr.Asked(query_fields=("nhs_number",)))
    response = adapter_pb2.FindPeopleResponse(candidates=[types_pb2.Person(local_person_id=f"P{n}")])
    return maker.disclosed(response, dr.Released(local_person_ids=(f"P{n}",)))


def populate(url: str, pki: DevPki, numbers: range, *, sign_at: tuple[int, ...] = ()) -> None:
    """Commit one disclosure record per number, in order, signing a tree head after each size in
    ``sign_at`` (and at close)."""
    signer = TreeHeadSigner(pki.adapter_audit_key(LEEDS), log_id=log_id_for(LEEDS))

    async def run() -> None:
        log = DisclosureLog(url, signer, auto_migrate=True, tree_head_interval_seconds=3600)
        await log.start()
        try:
            for n in numbers:
                await log.commit([_record(n)])
                if n + 1 in sign_at:
                    await asyncio.to_thread(log.sign_tree_head)
        finally:
            await log.close()

    asyncio.run(run())


@pytest.fixture
def adapter_log(tmp_path: Path, dev_pki: DevPki) -> str:
    url = f"sqlite:///{tmp_path}/disclosure-leeds.sqlite"
    populate(url, dev_pki, range(20), sign_at=(10,))
    return url


def jwks(pki: DevPki) -> str:
    return str(pki.adapter_audit_jwks(LEEDS))


def test_untouched_adapter_log_verifies(adapter_log: str, dev_pki: DevPki) -> None:
    result = audit("verify", "--database", adapter_log, "--jwks", jwks(dev_pki))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adapter disclosure log" in result.stdout and "OK" in result.stdout
    assert "entries: 20" in result.stdout and "signatures checked" in result.stdout
    as_json = audit(
        "verify",
        "--database",
        adapter_log,
        "--jwks",
        jwks(dev_pki),
        "--log-id",
        "adapter-E08000035",
        "--json",
    )
    report = json.loads(as_json.stdout)
    assert (as_json.returncode, report["ok"], report["log"], report["entries"]) == (0, True, "adapter", 20)
    assert report["checked_heads"] >= 3  # sizes 0 (at start), 10 and 20 (at close)
    # A file path works as well as a URL.
    path = adapter_log.removeprefix("sqlite:///")
    assert audit("verify", "--database", path).returncode == 0


def test_edited_record_is_found(adapter_log: str, dev_pki: DevPki) -> None:
    engine = sa.create_engine(adapter_log)
    entries = schema.log.entries
    with engine.begin() as conn:
        payload = conn.execute(sa.select(entries.c.payload).where(entries.c.seq == 7)).scalar_one()
        edited = payload.replace(b"CASE-0007", b"CASE-9999")
        assert edited != payload
        conn.execute(entries.update().where(entries.c.seq == 7).values(payload=edited))
    engine.dispose()
    result = audit("verify", "--database", adapter_log, "--jwks", jwks(dev_pki))
    assert result.returncode == 1
    assert "edited (first seq 7" in result.stdout and "FAILED" in result.stdout
    report = json.loads(audit("verify", "--database", adapter_log, "--json").stdout)
    assert [(p["kind"], p["seq"]) for p in report["problems"]] == [("edited", 7)]
    assert "CASE-" not in result.stdout + result.stderr  # never record content


def _truncate(url: str, keep: int) -> None:
    """What a careful intruder does: drop the tail, its heads and nodes, and rewrite the tree state so
    that what remains is a consistent, smaller log."""
    t = schema.log
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in (schema.disclosure_people, schema.disclosure_index, t.entries):
            conn.execute(table.delete().where(table.c.seq >= keep))
        conn.execute(t.tree_nodes.delete().where(t.tree_nodes.c.last_seq >= keep))
        conn.execute(t.tree_heads.delete().where(t.tree_heads.c.tree_size > keep))
        frontier = Frontier()
        for leaf in conn.execute(sa.select(t.entries.c.leaf_hash).order_by(t.entries.c.seq)).scalars():
            frontier.append(leaf)
        conn.execute(t.tree_state.update().values(size=frontier.size, frontier=frontier.to_json()))
    engine.dispose()


def test_truncation_is_caught_against_exported_heads_and_a_rewrite_on_the_next_export(
    adapter_log: str, dev_pki: DevPki, tmp_path: Path
) -> None:
    kept = tmp_path / "kept-heads.jsonl"
    exported = audit("export-heads", "--database", adapter_log, "--out", str(kept))
    assert exported.returncode == 0, exported.stderr
    sizes = [json.loads(line)["tree_size"] for line in kept.read_text().splitlines()]
    # The periodic task's first head races the first commits (size 0 up to 10); 10 and 20 are signed in order.
    assert sizes[-2:] == [10, 20] and sizes[0] <= 10 and sizes == sorted(set(sizes))
    again = audit("export-heads", "--database", adapter_log, "--out", str(kept))
    assert again.returncode == 0 and "0 new tree head(s)" in again.stdout
    assert len(kept.read_text().splitlines()) == len(sizes)  # merged, not duplicated

    _truncate(adapter_log, 15)
    # The log alone is consistent again: only heads kept outside the system reveal the loss.
    assert audit("verify", "--database", adapter_log, "--jwks", jwks(dev_pki)).returncode == 0
    result = audit("verify", "--database", adapter_log, "--jwks", jwks(dev_pki), "--kept-heads", str(kept))
    assert result.returncode == 1
    assert "truncated (first seq 15" in result.stdout and "a kept tree head says 20" in result.stdout

    # New records after the cut give another tree of size 20: the next export sees the fork.
    populate(adapter_log, dev_pki, range(100, 105))
    forked = audit("export-heads", "--database", adapter_log, "--out", str(kept))
    assert forked.returncode == 1 and "MISMATCH" in forked.stdout and "size 20" in forked.stdout
    result = audit("verify", "--database", adapter_log, "--kept-heads", str(kept), "--json")
    assert result.returncode == 1
    assert "root_mismatch" in {p["kind"] for p in json.loads(result.stdout)["problems"]}


def test_proofs_and_tree_heads(adapter_log: str, dev_pki: DevPki) -> None:
    inclusion = audit("proof", "--database", adapter_log, "--seq", "3", "--tree-size", "10", "--json")
    data = json.loads(inclusion.stdout)
    assert inclusion.returncode == 0 and data["valid"] and data["matches_signed_head"]
    assert (data["seq"], data["tree_size"], len(data["audit_path"])) == (3, 10, 4)
    consistency = audit("proof", "--database", adapter_log, "--old-size", "10")
    assert consistency.returncode == 0 and "verifies" in consistency.stdout
    assert "matches the signed head of size 20" in consistency.stdout
    assert audit("proof", "--database", adapter_log, "--seq", "20").returncode == 2
    assert audit("proof", "--database", adapter_log, "--seq", "1", "--old-size", "1").returncode == 2

    populate(adapter_log, dev_pki, range(20, 22))  # signs at close: size 22
    head = json.loads(audit("tree-head", "--database", adapter_log, "--json").stdout)
    assert head["tree_size"] == 22 and head["latest_signed"]["tree_size"] == 22
    assert head["latest_signed"]["log_id"] == "adapter-E08000035"
    engine = sa.create_engine(adapter_log)
    with engine.begin() as conn:  # lose the last head: the IG officer signs one by hand
        conn.execute(schema.log.tree_heads.delete().where(schema.log.tree_heads.c.tree_size == 22))
    engine.dispose()
    shown = audit("tree-head", "--database", adapter_log)
    assert "2 record(s) are not yet covered by a signed head" in shown.stdout
    signed = audit(
        "tree-head", "--database", adapter_log, "--sign-with", str(dev_pki.adapter_audit_key(LEEDS)), "--json"
    )
    assert signed.returncode == 0 and json.loads(signed.stdout)["latest_signed"]["tree_size"] == 22
    assert audit("verify", "--database", adapter_log, "--jwks", jwks(dev_pki)).returncode == 0


def test_gateway_log_is_found_and_a_database_with_both_needs_log(tmp_path: Path, dev_pki: DevPki) -> None:
    url = f"sqlite:///{tmp_path}/audit.sqlite"
    engine = sa.create_engine(url)
    gateway = MerkleLog(engine, log_tables(sa.MetaData(), "audit"))
    gateway.create_schema()
    with engine.begin() as conn:
        gateway.append(conn, [("access", {"request_id": f"g{n}", "outcome": "success"}) for n in range(5)])
    key = tmp_path / "gateway-audit.jwk.json"
    signer = TreeHeadSigner(TreeHeadSigner.generate_key(key), log_id="familyctx-gateway")
    gateway.sign_tree_head(signer)
    engine.dispose()
    gateway_jwks = tmp_path / "gateway-audit-jwks.json"
    gateway_jwks.write_text(json.dumps(signer.public_jwks()))

    result = audit("verify", "--database", url, "--jwks", str(gateway_jwks))
    assert result.returncode == 0 and "gateway audit log" in result.stdout
    # Keys of another log: the head does not verify.
    assert audit("verify", "--database", url, "--jwks", jwks(dev_pki)).returncode == 1

    populate(url, dev_pki, range(3))  # the adapter's log in the same database
    both = audit("verify", "--database", url)
    assert both.returncode == 2 and "--log" in both.stderr
    assert audit("verify", "--database", url, "--log", "gateway", "--jwks", str(gateway_jwks)).returncode == 0
    adapter = audit("verify", "--database", url, "--log", "adapter", "--json")
    assert adapter.returncode == 0 and json.loads(adapter.stdout)["entries"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "--database", "/nonexistent/disclosure.sqlite"), "no such file"),
        (("verify", "--database", "sqlite:////nonexistent/x.sqlite"), "no such SQLite file"),
        (("verify", "--database", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"), "cannot read the database"),
        (("verify", "--database", "{empty}"), "holds no audit log"),
        (("verify", "--database", "{log}", "--log", "gateway"), "holds no gateway log"),
        (("verify", "--database", "{log}", "--log", "other"), "--log must be one of"),
        (("verify", "--database", "{log}", "--kept-heads", "{junk}"), "--kept-heads"),
        (("verify", "--database", "{log}", "--jwks", "{junk}"), "--jwks"),
        (("export-heads", "--database", "{log}", "--out", "{junk}"), "not a tree-head file"),
        (("tree-head", "--database", "{log}", "--sign-with", "{junk}"), "--sign-with"),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    args: tuple[str, ...], message: str, tmp_path: Path, dev_pki: DevPki
) -> None:
    log = f"sqlite:///{tmp_path}/disclosure.sqlite"
    populate(log, dev_pki, range(2))
    empty = tmp_path / "empty.sqlite"  # a SQLite database without any table
    empty.write_bytes(b"")
    junk = tmp_path / "junk.txt"
    junk.write_text("not JSON\n", encoding="utf-8")
    result = audit(*(a.format(empty=empty, junk=junk, log=log) for a in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "s3cret" not in result.stderr


def _sql(url: str, *statements: str) -> None:
    """Edit the SQLite database as someone with write access to it would (raw SQL)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _problems(url: str, *args: str) -> tuple[int, list[tuple[str, int | None]]]:
    result = audit("verify", "--database", url, "--json", *args)
    return result.returncode, [(p["kind"], p["seq"]) for p in json.loads(result.stdout)["problems"]]


@pytest.mark.parametrize(
    ("statement", "seq"),
    [
        ("UPDATE disclosure_index SET case_reference = 'CASE-9999' WHERE seq = 4", 4),  # edited
        ("DELETE FROM disclosure_people WHERE seq = 6", 6),  # deleted
        ("INSERT INTO disclosure_people (seq, local_person_id) VALUES (8, 'P-INVENTED')", 8),  # added
        ("DELETE FROM disclosure_index WHERE seq = 19", 19),
    ],
)
def test_index_rows_edited_deleted_or_added_are_found(adapter_log: str, statement: str, seq: int) -> None:
    assert _problems(adapter_log) == (0, [])
    _sql(adapter_log, statement)
    assert _problems(adapter_log) == (1, [("index_mismatch", seq)])
    assert _problems(adapter_log, "--no-index") == (0, [])  # the log itself is untouched


def test_retention_redactions_verify_and_a_forged_one_does_not(adapter_log: str, tmp_path: Path) -> None:
    from familyctx_adapter.disclosure_retention import scrub_index

    from familyctx.auditlog import retention

    forged = tmp_path / "forged.sqlite"
    # SQLite's backup API, not a file copy: committed pages may still be in the WAL file.
    source = sqlite3.connect(adapter_log.removeprefix("sqlite:///"))
    copy = sqlite3.connect(forged)
    source.backup(copy)
    copy.close()
    source.close()
    engine = sa.create_engine(adapter_log)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    report = retention.apply_retention(
        engine, schema.log, {"disclosure": 1}, scrub_index=scrub_index, now=later
    )
    engine.dispose()
    assert report.redacted == {"disclosure": 20}
    result = audit("verify", "--database", adapter_log, "--json")
    data = json.loads(result.stdout)
    assert (result.returncode, data["entries"], data["redacted"]) == (0, 21, 20), data  # + a redaction record

    # The same payload removed by hand (index scrubbed too, as a careful intruder would): not retention.
    _sql(
        f"sqlite:///{forged}",
        "UPDATE disclosure_entries SET payload = NULL, redacted_at = recorded_at WHERE seq = 12",
        "DELETE FROM disclosure_people WHERE seq = 12",
        "UPDATE disclosure_index SET requester_sub = NULL, client = NULL, case_reference = NULL, "
        "assertion_jti = NULL, local_person_ids = NULL WHERE seq = 12",
    )
    assert _problems(f"sqlite:///{forged}") == (1, [("unauthorised_redaction", 12)])


def test_a_payload_stored_as_text_or_an_edited_head_row_is_named_as_such(adapter_log: str) -> None:
    _sql(adapter_log, "UPDATE disclosure_entries SET payload = CAST(payload AS TEXT) WHERE seq = 9")
    assert _problems(adapter_log) == (1, [("edited", 9)])
    _sql(adapter_log, "UPDATE disclosure_tree_heads SET root_hash = zeroblob(32) WHERE tree_size = 10")
    code, problems = _problems(adapter_log)  # no --jwks: the head's row differs from its own JWS
    assert code == 1 and ("edited_head", None) in problems and "root_mismatch" not in dict(problems)


def test_kept_heads_of_another_log_are_refused(adapter_log: str, dev_pki: DevPki, tmp_path: Path) -> None:
    kept = tmp_path / "leeds.jsonl"
    assert audit("export-heads", "--database", adapter_log, "--out", str(kept)).returncode == 0
    other = TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "o.jwk"), log_id="adapter-E08000007")
    stockport = tmp_path / "stockport.jsonl"
    stockport.write_text(other.sign(_head(adapter_log)).to_json() + "\n")
    for extra in ((), ("--jwks", jwks(dev_pki))):
        refused = audit("verify", "--database", adapter_log, "--kept-heads", str(stockport), *extra)
        assert refused.returncode == 2, refused.stdout
        assert "adapter-E08000007" in refused.stderr and "adapter-E08000035" in refused.stderr
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(kept.read_text() + stockport.read_text())
    refused = audit("verify", "--database", adapter_log, "--kept-heads", str(mixed))
    assert refused.returncode == 2 and "several logs" in refused.stderr
    before = stockport.read_text()
    appended = audit("export-heads", "--database", adapter_log, "--out", str(stockport))
    assert appended.returncode == 2 and "adapter-E08000007" in appended.stderr
    assert stockport.read_text() == before  # nothing of another log appended


def _head(url: str) -> TreeHead:
    engine = sa.create_engine(url)
    try:
        return MerkleLog(engine, schema.log).tree_head()
    finally:
        engine.dispose()


def test_a_deleted_log_checked_with_kept_heads_is_a_finding(adapter_log: str, tmp_path: Path) -> None:
    kept = tmp_path / "kept.jsonl"
    assert audit("export-heads", "--database", adapter_log, "--out", str(kept)).returncode == 0
    tables = [*schema.metadata.sorted_tables]
    _sql(adapter_log, *(f"DROP TABLE {t.name}" for t in reversed(tables)))
    gone = audit("verify", "--database", adapter_log, "--kept-heads", str(kept))
    assert gone.returncode == 1 and "empty_log" in gone.stdout
    assert "the log the kept heads describe is gone" in gone.stdout
    assert audit("verify", "--database", adapter_log).returncode == 2  # nothing to compare: usage error
    path = Path(adapter_log.removeprefix("sqlite:///"))
    path.unlink()
    result = audit("verify", "--database", str(path), "--kept-heads", str(kept), "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["problems"][0]["kind"] == "empty_log"
    assert data["problems"][0]["tree_size"] == 20 and data["log"] == "adapter"


def test_a_proof_on_a_tampered_log_does_not_claim_its_root_matches(adapter_log: str) -> None:
    _sql(adapter_log, "UPDATE disclosure_entries SET leaf_hash = zeroblob(32) WHERE seq = 3")
    result = audit("proof", "--database", adapter_log, "--seq", "3", "--tree-size", "10")
    assert result.returncode == 1
    assert "does NOT verify" in result.stdout and "matches" not in result.stdout
