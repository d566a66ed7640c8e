"""Tampering with a stored log is detected by ``verify_log``; an untouched log verifies (SQLite and
PostgreSQL). Each test edits the database directly, as someone with write access to it could."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auditlog_support import make_log

from familyctx.auditlog.heads import SignedTreeHead, TreeHeadSigner
from familyctx.auditlog.log import MerkleLog, envelope_bytes
from familyctx.auditlog.merkle import Frontier, leaf_hash
from familyctx.auditlog.verify import VerifyReport, verify_log

SIZE = 100


@dataclass
class Logged:
    log: MerkleLog
    signer: TreeHeadSigner
    kept: list[SignedTreeHead]  # heads an IG officer exported and keeps outside the system

    @property
    def t(self) -> Any:
        return self.log.tables

    def verify(self, *, kept: bool = True, jwks: bool = True) -> VerifyReport:
        return verify_log(
            self.log.engine,
            self.log.tables,
            public_jwks=self.signer.public_jwks() if jwks else None,
            kept_heads=self.kept if kept else (),
            log_id="familyctx-test",
        )

    def execute(self, *statements: Any) -> None:
        with self.log.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)

    def rows(self) -> list[Any]:
        e = self.t.entries
        with self.log.engine.connect() as conn:
            return list(conn.execute(sa.select(e).order_by(e.c.seq)))

    def rewrite_entries(self, rows: list[dict[str, Any]]) -> None:
        """Replace every entry with ``rows`` (seq renumbered 0..n-1)."""
        e = self.t.entries
        self.execute(e.delete())
        if rows:
            self.execute(*[e.insert().values({**row, "seq": i}) for i, row in enumerate(rows)])

    def cover_tracks(self) -> None:
        """What a careful attacker does next: recompute the node cache and tree state from the entries as
        they now are, and delete the heads stored in the database."""
        frontier = Frontier()
        nodes = []
        for row in self.rows():
            for level, idx, digest in frontier.append(row.leaf_hash):
                nodes.append({"last_seq": ((idx + 1) << level) - 1, "level": level, "hash": digest})
        t = self.t
        self.execute(t.tree_nodes.delete(), t.tree_heads.delete())
        if nodes:
            self.execute(t.tree_nodes.insert().values(nodes))
        self.execute(t.tree_state.update().values(size=frontier.size, frontier=frontier.to_json()))


@pytest.fixture(params=["sqlite", "postgresql"])
def logged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Logged]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    log, _ = make_log(url)
    signer = TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "head.jwk"), log_id="familyctx-test")
    kept = []
    for start in range(0, SIZE, 10):
        with log.engine.begin() as conn:
            log.append(
                conn, [("access", {"request_id": f"r{i}", "user": "sw1"}) for i in range(start, start + 10)]
            )
        if start + 10 in (40, SIZE):
            kept.append(log.sign_tree_head(signer))
    yield Logged(log, signer, kept)
    log.engine.dispose()


def kinds(report: VerifyReport) -> set[str]:
    return {p.kind for p in report.problems}


def test_an_untouched_log_verifies(logged: Logged) -> None:
    report = logged.verify()
    assert report.ok and report.problems == []
    assert (report.entries, report.redacted, report.checked_heads) == (SIZE, 0, 4)  # 2 stored + 2 kept
    assert report.tree_size == SIZE and report.root_hash == logged.kept[-1].root_hash
    unsigned = logged.verify(jwks=False)
    assert unsigned.ok and not unsigned.signatures_checked


def test_an_edited_payload_is_detected(logged: Logged) -> None:
    e = logged.t.entries
    row = logged.rows()[57]
    logged.execute(e.update().where(e.c.seq == 57).values(payload=row.payload.replace(b"sw1", b"sw2")))
    report = logged.verify()
    problem = report.problem("edited")
    assert problem is not None and problem.seq == 57 and problem.count == 1
    assert kinds(report) == {"edited"}


def test_edited_class_or_time_columns_are_detected(logged: Logged) -> None:
    e = logged.t.entries
    logged.execute(e.update().where(e.c.seq == 12).values(record_class="ig_access"))
    logged.execute(e.update().where(e.c.seq == 30).values(recorded_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    problem = logged.verify().problem("edited")
    assert problem is not None and (problem.seq, problem.count) == (12, 2)


def test_payload_and_leaf_hash_edited_together_are_caught_by_the_heads(logged: Logged) -> None:
    e = logged.t.entries
    row = logged.rows()[23]
    forged = envelope_bytes(
        "access", row.recorded_at.replace(tzinfo=dt.UTC), {"request_id": "r23", "user": "x"}
    )
    logged.execute(e.update().where(e.c.seq == 23).values(payload=forged, leaf_hash=leaf_hash(forged)))
    report = logged.verify()
    assert "edited" not in kinds(report)  # the row is self-consistent ...
    problem = report.problem("root_mismatch")  # ... but the tree no longer matches its signed heads
    assert problem is not None and problem.seq == 22 and problem.count == 4  # node cache: seqs 22..23
    # Even when the node cache, tree state and stored heads are rewritten to match, the kept heads catch it.
    logged.cover_tracks()
    covered = logged.verify()
    assert kinds(covered) == {"root_mismatch"}
    problem = covered.problem("root_mismatch")
    assert problem is not None and problem.count == 2 and problem.seq == 0 and problem.tree_size == 40
    assert logged.verify(kept=False).ok  # without kept heads nothing is left to compare: keep heads outside


def test_a_deleted_row_is_detected(logged: Logged) -> None:
    e = logged.t.entries
    logged.execute(e.delete().where(e.c.seq == 64))
    report = logged.verify()
    gap = report.problem("gap")
    assert gap is not None and gap.seq == 64 and gap.count == 1
    # 99 entries left: the head of size 100 is out of reach, and the tree state no longer matches
    assert kinds(report) == {"gap", "truncated", "state_mismatch"}


def test_two_swapped_rows_are_detected(logged: Logged) -> None:
    rows = [dict(r._mapping) for r in logged.rows()]
    rows[10], rows[70] = rows[70], rows[10]
    logged.rewrite_entries(rows)
    report = logged.verify()
    assert "edited" not in kinds(report) and "gap" not in kinds(report)
    problem = report.problem("root_mismatch")
    assert problem is not None and problem.seq == 10
    logged.cover_tracks()
    assert logged.verify().problem("root_mismatch") is not None  # the kept heads still catch it


def test_an_inserted_row_is_detected(logged: Logged) -> None:
    rows = [dict(r._mapping) for r in logged.rows()]
    payload = envelope_bytes("access", dt.datetime.now(dt.UTC), {"request_id": "fake", "user": "sw1"})
    fake = {
        **rows[0],
        "payload": payload,
        "leaf_hash": leaf_hash(payload),
        "recorded_at": dt.datetime.now(dt.UTC),
    }
    rows.insert(33, fake)
    logged.rewrite_entries(rows)
    report = logged.verify()
    assert report.entries == SIZE + 1
    problem = report.problem("root_mismatch")
    assert problem is not None and problem.seq == 32  # node cache: the pair holding seq 33
    assert report.problem("state_mismatch") is not None
    logged.cover_tracks()
    assert logged.verify().problem("root_mismatch") is not None


def test_a_row_appended_behind_the_logs_back_is_detected(logged: Logged) -> None:
    payload = envelope_bytes("access", dt.datetime.now(dt.UTC), {"request_id": "late"})
    logged.execute(
        logged.t.entries.insert().values(
            seq=SIZE, record_class="access", recorded_at=dt.datetime.now(dt.UTC), payload=payload,
            leaf_hash=leaf_hash(payload),
        )
    )  # fmt: skip
    problem = logged.verify().problem("state_mismatch")
    assert problem is not None and problem.seq == SIZE


def test_a_truncated_tail_is_detected(logged: Logged) -> None:
    e = logged.t.entries
    logged.execute(e.delete().where(e.c.seq >= 70))
    report = logged.verify()
    truncated = report.problem("truncated")
    assert truncated is not None and truncated.seq == 70 and truncated.tree_size == SIZE
    logged.cover_tracks()  # stored heads gone, state rewritten: only the kept head remains
    covered = logged.verify()
    assert kinds(covered) == {"truncated"}
    assert covered.problem("truncated").count == 1  # type: ignore[union-attr]
    assert logged.verify(kept=False).ok


def test_a_wholly_deleted_log_is_detected(logged: Logged) -> None:
    t = logged.t
    logged.execute(t.entries.delete(), t.tree_nodes.delete(), t.tree_heads.delete())
    logged.execute(t.tree_state.update().values(size=0, frontier=Frontier().to_json()))
    report = logged.verify()
    assert kinds(report) == {"empty_log"}
    problem = report.problem("empty_log")
    assert problem is not None and problem.count == 2 and report.entries == 0
    assert logged.verify(kept=False).ok  # an empty database alone says nothing: the kept heads do


def test_an_altered_tree_head_signature_is_detected(logged: Logged) -> None:
    h = logged.t.tree_heads
    head = logged.kept[0]
    protected, payload, signature = head.jws.split(".")
    altered = f"{protected}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    logged.execute(h.update().where(h.c.tree_size == head.tree_size).values(jws=altered))
    report = logged.verify()
    problem = report.problem("bad_signature")
    assert problem is not None and problem.tree_size == 40 and "bad_signature" in problem.detail
    assert kinds(report) == {"bad_signature"}


@pytest.mark.parametrize("jwks", [True, False])
def test_a_head_row_edited_to_another_root_is_an_edited_head_not_blamed_on_records(
    logged: Logged, jwks: bool
) -> None:
    h = logged.t.tree_heads
    logged.execute(h.update().where(h.c.tree_size == 40).values(root_hash=b"\x00" * 32))
    report = logged.verify(jwks=jwks, kept=False)
    problem = report.problem("edited_head")
    assert problem is not None and problem.tree_size == 40 and problem.count == 1
    assert kinds(report) == {"edited_head"}  # not a root_mismatch: the records are untouched


def test_a_kept_head_from_another_log_or_forged_is_refused(logged: Logged, tmp_path: Path) -> None:
    other = TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "other.jwk"), log_id="familyctx-test")
    forged = other.sign(logged.log.tree_head())
    logged.kept.append(forged)
    problem = logged.verify().problem("bad_signature")
    assert problem is not None and "unknown_key" in problem.detail


def test_node_cache_tampering_is_a_state_mismatch(logged: Logged) -> None:
    n = logged.t.tree_nodes
    logged.execute(n.update().where(n.c.last_seq == 7, n.c.level == 3).values(hash=b"\x11" * 32))
    report = logged.verify()
    assert kinds(report) == {"state_mismatch"}
    assert report.problem("state_mismatch").seq == 0  # type: ignore[union-attr]


def _redact(logged: Logged, seqs: Any, *, cutoff: dt.datetime | None = None) -> int:
    with logged.log.engine.begin() as conn:
        return logged.log.redact(
            conn, seqs, record_class="access", cutoff=cutoff or dt.datetime.now(dt.UTC), retention_days=30
        )


def test_retention_redaction_still_verifies_and_is_counted(logged: Logged) -> None:
    assert _redact(logged, range(0, 30)) == 30
    report = logged.verify()
    assert report.ok and report.redacted == 30 and report.entries == SIZE + 1  # + the redaction record
    entry = logged.log.entry(SIZE)
    assert entry is not None and entry.record_class == "redaction" and entry.record is not None
    assert entry.record["seqs"] == list(range(30)) and entry.record["record_class"] == "access"
    assert entry.record["retention_days"] == 30
    # a payload removed WITHOUT a redaction time is not retention: it is reported
    e = logged.t.entries
    logged.execute(e.update().where(e.c.seq == 50).values(payload=None))
    problem = logged.verify().problem("edited")
    assert problem is not None and problem.seq == 50


def test_a_forged_redaction_is_unauthorised(logged: Logged) -> None:
    e = logged.t.entries
    now = dt.datetime.now(dt.UTC)
    logged.execute(e.update().where(e.c.seq == 44).values(payload=None, redacted_at=now))
    report = logged.verify()
    problem = report.problem("unauthorised_redaction")
    assert problem is not None and (problem.seq, problem.count) == (44, 1)
    assert kinds(report) == {"unauthorised_redaction"}


def test_a_redaction_record_covers_only_what_it_lists_and_what_its_cut_off_allows(logged: Logged) -> None:
    cutoff = dt.datetime.now(dt.UTC)
    assert _redact(logged, [5, 6], cutoff=cutoff) == 2
    assert logged.verify().ok
    e = logged.t.entries
    # seq 7 is not listed by any redaction record; seq 6 is listed, but claimed to be recorded later
    logged.execute(e.update().where(e.c.seq == 7).values(payload=None, redacted_at=cutoff))
    logged.execute(e.update().where(e.c.seq == 6).values(recorded_at=cutoff + dt.timedelta(days=1)))
    problem = logged.verify().problem("unauthorised_redaction")
    assert problem is not None and (problem.seq, problem.count) == (6, 2)


def test_redaction_refuses_what_is_not_past_the_cut_off_or_of_another_class(logged: Logged) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert _redact(logged, [1, 2], cutoff=past) == 0  # recorded after the cut-off: left alone
    with logged.log.engine.begin() as conn:
        assert logged.log.redact(conn, [1], record_class="ig_access", cutoff=dt.datetime.now(dt.UTC)) == 0
        with pytest.raises(ValueError, match="redaction"):
            logged.log.redact(conn, [1], record_class="redaction", cutoff=dt.datetime.now(dt.UTC))
    report = logged.verify()
    assert report.ok and report.entries == SIZE  # nothing redacted, so no redaction record


def test_a_payload_stored_as_text_is_edited_not_a_crash(logged: Logged) -> None:
    if logged.log.engine.dialect.name != "sqlite":
        # PostgreSQL refuses text in a bytea column, so this edit cannot happen there.
        with pytest.raises(sa.exc.ProgrammingError), logged.log.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_entries SET payload = CAST(payload AS TEXT) WHERE seq = 31")
        assert logged.verify().ok
        return
    with logged.log.engine.begin() as conn:
        driver = conn.connection.driver_connection
        driver.execute("UPDATE audit_entries SET payload = CAST(payload AS TEXT) WHERE seq = 31")
    report = logged.verify()
    problem = report.problem("edited")
    assert problem is not None and (problem.seq, problem.count) == (31, 1)
    entry = logged.log.entry(31)  # the entry reader does not fail either
    assert entry is not None and entry.record is None and not entry.intact and entry.redacted_at is None


def test_a_deleted_node_cache_does_not_move_where_an_edit_is_located(logged: Logged) -> None:
    e = logged.t.entries
    row = logged.rows()[57]
    forged = envelope_bytes("access", row.recorded_at.replace(tzinfo=dt.UTC), {"request_id": "r57"})
    logged.execute(e.update().where(e.c.seq == 57).values(payload=forged, leaf_hash=leaf_hash(forged)))
    logged.execute(logged.t.tree_nodes.delete())
    problem = logged.verify().problem("root_mismatch")
    # the kept and stored heads of size 40 still match: the change is at or after seq 40, not at 0
    assert problem is not None and problem.seq == 40 and "last matching head" in problem.detail
