"""Inclusion and consistency proofs as values to hand out (JSON) and check (RFC 9162 2.1.3, 2.1.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from familyctx.auditlog.heads import b64url
from familyctx.auditlog.merkle import verify_consistency, verify_inclusion

__all__ = ["ConsistencyProof", "InclusionProof"]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that the record ``seq`` (its ``leaf_hash``) is in the tree of ``tree_size`` records whose
    root is ``root_hash``. ``hashes``: the audit path, nearest the leaf first (RFC 9162 2.1.3.1)."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    hashes: tuple[bytes, ...]

    def verify(self, root_hash: bytes | None = None) -> bool:
        """True when the path leads from ``leaf_hash`` to ``root_hash`` (default: the proof's own root;
        pass a signed head's root to tie the record to that head). RFC 9162 2.1.3.2."""
        root = self.root_hash if root_hash is None else root_hash
        return verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.hashes, root)

    def size_bytes(self) -> int:
        """The size of the audit path in bytes (32 per hash)."""
        return 32 * len(self.hashes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: hashes as base64url (no padding)."""
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "leaf_hash": b64url(self.leaf_hash),
            "root_hash": b64url(self.root_hash),
            "audit_path": [b64url(h) for h in self.hashes],
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of ``new_size`` records (``new_root``) extends the tree of ``old_size``
    records (``old_root``) unchanged (RFC 9162 2.1.4): nothing before ``old_size`` was edited, removed
    or reordered."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def verify(self, old_root: bytes | None = None, new_root: bytes | None = None) -> bool:
        """True when the proof links the two roots (defaults: the proof's own; pass the roots of two kept
        tree heads to check those). RFC 9162 2.1.4.2."""
        return verify_consistency(
            self.old_size,
            self.new_size,
            self.old_root if old_root is None else old_root,
            self.new_root if new_root is None else new_root,
            self.hashes,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: hashes as base64url (no padding)."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": b64url(self.old_root),
            "new_root": b64url(self.new_root),
            "consistency_path": [b64url(h) for h in self.hashes],
        }
