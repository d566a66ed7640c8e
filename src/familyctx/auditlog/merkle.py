"""Merkle tree hashing, proofs and their verification, as RFC 9162 section 2.1 (the same tree as RFC 6962).

SHA-256 throughout. A leaf is hashed as ``SHA-256(0x00 || data)`` and an interior node as
``SHA-256(0x01 || left || right)`` (the distinct prefixes stop a leaf being passed off as a node). The
Merkle Tree Hash (MTH) of ``n`` leaves splits at ``k``, the largest power of two smaller than ``n``;
the empty tree's hash is ``SHA-256("")``.

Proofs are built from *ranges* ``[start, end)`` of leaves, exactly as the RFC's recursions ``PATH`` and
``SUBPROOF`` visit them. Every such range is the MTH of a few *perfect* subtrees (aligned, power-of-two
sized), at most one per level, so a store that keeps the hash of each perfect subtree (the log's node
cache) answers any proof with O(log n) hashes read: :func:`inclusion_ranges`, :func:`consistency_ranges`,
:func:`perfect_pieces` and :func:`fold_pieces` are shared by the in-memory functions here and the
database-backed log.

Tested against the RFC 6962 reference vectors (certificate-transparency) and cross-checked with pymerkle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "consistency_proof",
    "consistency_ranges",
    "fold_pieces",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_pieces",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: MTH of the empty tree (RFC 9162 2.1.1): SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)`` (32 bytes)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)`` (32 bytes)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_pieces(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees making up the range ``[start, end)`` of a Merkle tree, left to right, as
    ``(level, index)``: the subtree of ``2**level`` leaves starting at leaf ``index * 2**level``; level 0
    is a single leaf. ``start`` must be aligned as the RFC's recursion aligns it (a multiple of the
    largest power of two not above ``end - start``); raises ``ValueError`` for an empty range."""
    if not 0 <= start < end:
        raise ValueError("empty or negative range")
    pieces: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos:
            level = min(level, (pos & -pos).bit_length() - 1)
        pieces.append((level, pos >> level))
        pos += 1 << level
    return pieces


def fold_pieces(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect pieces (left to right): fold from the right,
    ``H(p1, H(p2, ... H(p_{k-1}, p_k)))``. Raises ``ValueError`` when ``hashes`` is empty."""
    if not hashes:
        raise ValueError("no pieces")
    acc = hashes[-1]
    for piece in reversed(hashes[:-1]):
        acc = node_hash(piece, acc)
    return acc


def inclusion_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose MTHs form the inclusion proof of leaf ``index`` in a tree of
    ``tree_size`` leaves, in proof order (RFC 9162 2.1.3.1, ``PATH(m, D[n])``: nearest the leaf first).
    Raises ``ValueError`` unless ``0 <= index < tree_size``."""
    if not 0 <= index < tree_size:
        raise ValueError("index must satisfy 0 <= index < tree_size")
    ranges: list[tuple[int, int]] = []
    start, end = 0, tree_size
    while end - start > 1:  # walk down from the root; the proof lists siblings bottom-up
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start = start + k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form the consistency proof between tree sizes ``old_size`` and
    ``new_size`` (RFC 9162 2.1.4.1, ``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)``), in proof order. Empty
    when ``old_size`` is 0 or equals ``new_size``. Raises ``ValueError`` unless
    ``0 <= old_size <= new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError("sizes must satisfy 0 <= old_size <= new_size")
    if old_size == 0 or old_size == new_size:
        return []
    ranges: list[tuple[int, int]] = []
    m, start, end, whole = old_size, 0, new_size, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m, start, whole = m - k, start + k, False
    ranges.reverse()
    return ranges


def _range_hash_from_leaves(leaf_hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    def mth(start: int, end: int) -> bytes:
        return root_hash(leaf_hashes[start:end])

    return mth


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the given leaf hashes (RFC 9162 2.1.1); ``EMPTY_ROOT`` for none.
    O(n) hashes, O(log n) memory."""
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaf_hashes`` (RFC 9162 2.1.3.1).
    Raises ``ValueError`` unless ``0 <= index < len(leaf_hashes)``."""
    mth = _range_hash_from_leaves(leaf_hashes)
    return [mth(start, end) for start, end in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the tree of the first ``old_size`` leaves to the tree of all
    ``leaf_hashes`` (RFC 9162 2.1.4.1). Raises ``ValueError`` unless ``0 <= old_size <= len``."""
    mth = _range_hash_from_leaves(leaf_hashes)
    return [mth(start, end) for start, end in consistency_ranges(old_size, len(leaf_hashes))]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows the leaf with hash ``leaf_hash`` at position ``index`` in the tree of
    ``tree_size`` leaves whose MTH is ``root`` (RFC 9162 2.1.3.2). Never raises on bad input."""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows the tree of ``new_size`` leaves (MTH ``new_root``) extends the tree of
    ``old_size`` leaves (MTH ``old_root``) (RFC 9162 2.1.4.2). ``old_size == new_size`` needs an empty
    proof and equal roots; ``old_size == 0`` needs an empty proof (every tree extends the empty one).
    Never raises on bad input."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The compact range of a growing tree: the hashes of its perfect subtrees, largest (leftmost) first,
    one per set bit of ``size``. Appending a leaf costs O(log n) (amortised O(1)) hashes and the root
    O(log n); nothing else of the tree is needed to keep extending it.

    ``append`` returns the perfect subtrees the new leaf completed, as ``(level, index, hash)`` with
    level >= 1, so a store can cache them for proofs (see :func:`perfect_pieces`).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self._size = size
        self._hashes = list(hashes)
        if size < 0 or len(self._hashes) != size.bit_count():
            raise ValueError("a frontier needs one hash per set bit of its size")
        if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in self._hashes):
            raise ValueError("frontier hashes must be 32-byte SHA-256 digests")

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect subtree hashes, largest first."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append the leaf hash ``leaf`` (32 bytes); returns the perfect subtrees it completed."""
        index = self._size
        acc = leaf
        level = 0
        completed: list[tuple[int, int, bytes]] = []
        while (index >> level) & 1:
            acc = node_hash(self._hashes.pop(), acc)
            level += 1
            completed.append((level, index >> level, acc))
        self._hashes.append(acc)
        self._size = index + 1
        return completed

    def root(self) -> bytes:
        """MTH of the tree so far (``EMPTY_ROOT`` when empty)."""
        if not self._hashes:
            return EMPTY_ROOT
        return fold_pieces(self._hashes)

    def copy(self) -> Frontier:
        """An independent copy."""
        return Frontier(self._size, self._hashes)

    def to_json(self) -> dict[str, Any]:
        """``{"size": n, "hashes": [hex, ...]}`` (largest subtree first), for the tree-state row."""
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_json(cls, data: Any) -> Frontier:
        """Inverse of :meth:`to_json`. Raises ``ValueError`` for anything malformed or inconsistent."""
        if not isinstance(data, dict) or not isinstance(data.get("size"), int):
            raise ValueError("frontier JSON needs an integer 'size'")
        hashes = data.get("hashes")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ValueError("frontier JSON needs a 'hashes' list of hex strings")
        try:
            raw = [bytes.fromhex(h) for h in hashes]
        except ValueError:
            raise ValueError("frontier hashes are not hex") from None
        return cls(data["size"], raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frontier) and (self._size, self._hashes) == (other._size, other._hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()[:16]}...)"
