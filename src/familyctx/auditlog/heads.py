"""Tree heads, signed: the statement "log L had N records with root hash R at time T", signed by the log.

A signed tree head is a compact JWS (RFC 7515), ES256 only (RFC 7518 3.4), protected header
``{"alg": "ES256", "typ": "familyctx-tree-head+json", "kid": ...}``, payload the canonical JSON
``{"issued_at": RFC 3339 UTC, "log_id": ..., "root_hash": base64url without padding, "tree_size": n}``.
Verifying needs the public JWK Set only. The export format IG teams keep outside the system is one JSON
object per line (``.jsonl``): :meth:`SignedTreeHead.to_json`, :func:`write_heads_jsonl`,
:func:`read_heads_jsonl`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from familyctx.auditlog.canonical import canonical_bytes, rfc3339_utc
from familyctx.auditlog.errors import TreeHeadKeyError
from familyctx.auditlog.merkle import HASH_SIZE

__all__ = [
    "ALGORITHM",
    "TREE_HEAD_TYPE",
    "SignedTreeHead",
    "TreeHead",
    "TreeHeadSigner",
    "load_public_jwks",
    "read_heads_jsonl",
    "write_heads_jsonl",
]

ALGORITHM = "ES256"
TREE_HEAD_TYPE = "familyctx-tree-head+json"
_MAX_JWS_CHARS = 4096


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises ``ValueError`` for anything else."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None


def parse_rfc3339(text: str) -> dt.datetime:
    """A timezone-aware UTC datetime from an RFC 3339 string; ``ValueError`` if not one."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("RFC 3339 time without an offset")
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The size of a tree (number of records) and its Merkle Tree Hash (32 bytes), unsigned."""

    tree_size: int
    root_hash: bytes


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head signed by the log ``log_id`` (e.g. ``familyctx-gateway``, ``adapter-E08000007``).

    ``root_hash``: 32 bytes; ``issued_at``: UTC; ``jws``: the compact JWS whose payload states exactly
    these four values (see the module docstring)."""

    log_id: str
    tree_size: int
    root_hash: bytes
    issued_at: dt.datetime
    jws: str

    def statement(self) -> dict[str, Any]:
        """The signed statement: ``{"issued_at", "log_id", "root_hash" (base64url), "tree_size"}``."""
        return {
            "issued_at": rfc3339_utc(self.issued_at),
            "log_id": self.log_id,
            "root_hash": b64url(self.root_hash),
            "tree_size": self.tree_size,
        }

    def to_dict(self) -> dict[str, Any]:
        """The export object: the statement plus ``jws``."""
        return {**self.statement(), "jws": self.jws}

    def to_json(self) -> str:
        """One line of JSON (no newline inside) for a ``.jsonl`` export file."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> SignedTreeHead:
        """A head from :meth:`to_json` output (a string or its parsed object). Raises ``ValueError`` when a
        field is missing or malformed. The signature is NOT checked here: see :meth:`verify`."""
        obj = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(obj, Mapping):
            raise ValueError("a tree head must be a JSON object")
        try:
            log_id, size, root, issued, token = (
                obj["log_id"],
                obj["tree_size"],
                obj["root_hash"],
                obj["issued_at"],
                obj["jws"],
            )
        except KeyError as exc:
            raise ValueError(f"tree head lacks {exc.args[0]!r}") from None
        if not isinstance(log_id, str) or not isinstance(token, str) or not isinstance(issued, str):
            raise ValueError("tree head fields have the wrong types")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("tree_size must be a non-negative integer")
        root_hash = b64url_decode(root)
        if len(root_hash) != HASH_SIZE:
            raise ValueError("root_hash must be 32 bytes")
        return cls(log_id, size, root_hash, parse_rfc3339(issued), token)

    def matches_jws(self) -> bool:
        """True when the JWS's payload states exactly this head's values. Needs no key and checks no
        signature: it tells a head whose stored or exported fields were edited after signing (the JWS
        keeps the signed values) from a tree that changed, even when no public keys are at hand."""
        token = self.jws
        if not isinstance(token, str) or len(token) > _MAX_JWS_CHARS or token.count(".") != 2:
            return False
        try:
            payload = jws.extract_compact(token.encode("ascii")).payload
        except (JoseError, ValueError, UnicodeError):
            return False
        return bool(payload == canonical_bytes(self.statement()))

    def verify(self, public_jwks: Mapping[str, Any]) -> str | None:
        """None when ``jws`` is a valid ES256 signature, by a key of ``public_jwks`` (its ``kid``), over
        exactly this head's statement; otherwise a short reason (``malformed``, ``unknown_key``,
        ``bad_signature``, ``content_differs``). Never raises for a bad head; raises
        :class:`~.errors.TreeHeadKeyError` for a JWK Set without a ``keys`` list."""
        keys = _import_jwks(public_jwks)
        token = self.jws
        if not isinstance(token, str) or len(token) > _MAX_JWS_CHARS or token.count(".") != 2:
            return "malformed"
        try:
            header = dict(jws.extract_compact(token.encode("ascii")).protected)
        except (JoseError, ValueError, UnicodeError):
            return "malformed"
        if header.get("alg") != ALGORITHM or header.get("typ") != TREE_HEAD_TYPE:
            return "malformed"
        kid = header.get("kid")
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return "unknown_key"
        try:
            compact = jws.deserialize_compact(token, key, algorithms=[ALGORITHM])
        except JoseError:
            return "bad_signature"
        if compact.payload != canonical_bytes(self.statement()):
            return "content_differs"
        return None


def _import_jwks(jwks: Mapping[str, Any]) -> dict[str, ECKey]:
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        raise TreeHeadKeyError("the JWK Set has no 'keys' list")
    keys: dict[str, ECKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        if entry.get("alg") not in (None, ALGORITHM) or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = ECKey.import_key({k: v for k, v in entry.items() if k != "d"})
        except (JoseError, ValueError, TypeError):
            continue
    return keys


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TreeHeadKeyError(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from None
    except ValueError:
        raise TreeHeadKeyError(f"{what} {path} is not JSON") from None


def load_public_jwks(path: str | Path) -> dict[str, Any]:
    """The JWK Set in the JSON file ``path`` (RFC 7517). Raises :class:`~.errors.TreeHeadKeyError` when
    unreadable or without a ``keys`` list."""
    data = _read_json(Path(path), "JWK Set")
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise TreeHeadKeyError(f"JWK Set {path} has no 'keys' list")
    return data


class TreeHeadSigner:
    """Signs tree heads for the log ``log_id`` with the private EC P-256 JWK in ``private_jwk_path``.

    Raises :class:`~.errors.TreeHeadKeyError` when the file is unreadable, not JSON, not a private
    P-256 key or meant for another algorithm; ``ValueError`` for an empty ``log_id``. ``clock`` returns
    the issue time (tests)."""

    def __init__(
        self,
        private_jwk_path: str | Path,
        *,
        log_id: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not log_id:
            raise ValueError("log_id must not be empty")
        path = Path(private_jwk_path)
        data = _read_json(path, "tree-head key")
        try:
            key = ECKey.import_key(data)
        except (JoseError, ValueError, TypeError):
            raise TreeHeadKeyError(f"tree-head key {path} is not an EC P-256 JWK") from None
        if not key.is_private or key.get("crv") != "P-256" or key.get("alg") not in (None, ALGORITHM):
            raise TreeHeadKeyError(f"tree-head key {path} must be a private EC P-256 (ES256) JWK")
        key.ensure_kid()
        self._key = key
        self.log_id = log_id
        self._clock = clock

    @staticmethod
    def generate_key(path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a fresh private EC P-256 JWK (with ``kid``) to ``path``, readable by the owner only.
        Raises ``FileExistsError`` when ``path`` exists and ``overwrite`` is false."""
        target = Path(path)
        if target.exists() and not overwrite:
            raise FileExistsError(str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(key.as_dict(private=True), handle, indent=2)
        return target

    @property
    def kid(self) -> str:
        """The signing key's ``kid``."""
        return str(self._key.kid)

    def sign(self, head: TreeHead) -> SignedTreeHead:
        """Sign ``head`` now; returns the :class:`SignedTreeHead` (not stored anywhere)."""
        issued_at = self._clock().astimezone(dt.UTC)
        unsigned = SignedTreeHead(self.log_id, head.tree_size, head.root_hash, issued_at, "")
        header = {"alg": ALGORITHM, "typ": TREE_HEAD_TYPE, "kid": self.kid}
        token = jws.serialize_compact(
            header, canonical_bytes(unsigned.statement()), self._key, algorithms=[ALGORITHM]
        )
        return SignedTreeHead(self.log_id, head.tree_size, head.root_hash, issued_at, token)

    def public_jwks(self) -> dict[str, Any]:
        """The RFC 7517 JWK Set with the public part of the signing key only."""
        return dict(KeySet([self._key]).as_dict(private=False))


def write_heads_jsonl(heads: Iterable[SignedTreeHead], path: str | Path, *, append: bool = True) -> int:
    """Write ``heads`` to ``path``, one JSON object per line (appending by default); returns the count."""
    count = 0
    with Path(path).open("a" if append else "w", encoding="utf-8") as handle:
        for head in heads:
            handle.write(head.to_json() + "\n")
            count += 1
    return count


def read_heads_jsonl(path: str | Path) -> list[SignedTreeHead]:
    """The heads in a ``.jsonl`` export (blank lines skipped). Raises ``ValueError`` naming the first bad
    line number, ``OSError`` when unreadable."""
    heads: list[SignedTreeHead] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                heads.append(SignedTreeHead.from_json(line))
            except ValueError as exc:
                raise ValueError(f"{path}: line {number}: {exc}") from None
    return heads
