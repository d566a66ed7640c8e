"""Errors of the tamper-evident log library, one tree under :class:`AuditLogError`.

Messages carry ids, sizes and codes only, never a record's content (records hold personal data).
"""

from __future__ import annotations

__all__ = [
    "AuditLogError",
    "AuditWriteFailed",
    "LogStateError",
    "ProofError",
    "TreeHeadKeyError",
]


class AuditLogError(Exception):
    """Root of every error this package raises on purpose."""


class AuditWriteFailed(AuditLogError):
    """A record was not committed (its whole batch was rolled back). The caller must not release the data
    the record describes: answer 503 (gateway) or UNAVAILABLE (adapter)."""


class ProofError(AuditLogError, ValueError):
    """A proof was asked for sizes or positions the log cannot answer (e.g. ``seq >= tree_size``, or a
    tree size larger than the log)."""


class LogStateError(AuditLogError):
    """The stored tree state cannot be read (corrupt frontier JSON, wrong number of hashes for the size).
    Appends refuse to build on it; ``verify_log`` reports it as ``state_mismatch``."""


class TreeHeadKeyError(AuditLogError, ValueError):
    """A tree-head signing key or JWK Set cannot be used (the message names the file or the problem)."""
