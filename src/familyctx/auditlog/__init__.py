"""A tamper-evident, append-only log: a Merkle tree (RFC 9162 section 2.1) over records kept in SQL.

Modules: :mod:`.merkle` (hashing, proofs, verification, the frontier), :mod:`.canonical` (the bytes that
are hashed), :mod:`.errors`, :mod:`.tables` (the tables, under a prefix: ``audit`` at the gateway,
``disclosure`` at an adapter), :mod:`.log` (:class:`~.log.MerkleLog`, the group-committing
:class:`~.log.LogWriter`, signed tree heads), :mod:`.engine` (engines that serialise writers on SQLite)
and :mod:`.verify` (``verify_log``), with :mod:`.redaction` (redaction made evident: retention appends a
``redaction`` record) and :mod:`.index_check` (an owner's index tables checked against the records).
How the tamper evidence works, for IG officers: docs/audit.md.
"""

from familyctx.auditlog.canonical import canonical_bytes
from familyctx.auditlog.engine import READ_ONLY, create_log_engine
from familyctx.auditlog.errors import (
    AuditLogError,
    AuditWriteFailed,
    LogStateError,
    ProofError,
    TreeHeadKeyError,
)
from familyctx.auditlog.heads import (
    SignedTreeHead,
    TreeHead,
    TreeHeadSigner,
    load_public_jwks,
    read_heads_jsonl,
)
from familyctx.auditlog.index_check import IndexChecker
from familyctx.auditlog.log import LogEntry, LogWriter, MerkleLog
from familyctx.auditlog.proofs import ConsistencyProof, InclusionProof
from familyctx.auditlog.redaction import REDACTION_CLASS
from familyctx.auditlog.tables import LogTables, log_tables
from familyctx.auditlog.verify import PROBLEM_KINDS, Problem, VerifyReport, verify_log

__all__ = [
    "PROBLEM_KINDS",
    "REDACTION_CLASS",
    "IndexChecker",
    "Problem",
    "VerifyReport",
    "verify_log",
    "READ_ONLY",
    "AuditLogError",
    "AuditWriteFailed",
    "ConsistencyProof",
    "InclusionProof",
    "LogEntry",
    "LogStateError",
    "LogTables",
    "LogWriter",
    "MerkleLog",
    "ProofError",
    "SignedTreeHead",
    "TreeHead",
    "TreeHeadKeyError",
    "TreeHeadSigner",
    "canonical_bytes",
    "create_log_engine",
    "load_public_jwks",
    "log_tables",
    "read_heads_jsonl",
]
