"""Redaction made evident: every redaction under retention is itself a record in the tree.

When :meth:`.log.MerkleLog.redact` removes payloads (retention: payload NULL, ``redacted_at`` set, leaf
hash kept), it appends, in the same transaction, one record of class :data:`REDACTION_CLASS` saying what
it did::

    {"record_class": "access", "retention_days": 2557, "cutoff": "<RFC 3339 UTC>", "seqs": [3, 7, ...]}

``seqs``: the entries redacted (sorted, all of ``record_class``, each recorded before ``cutoff``);
``retention_days``: the period applied (None when the caller gave none); ``cutoff``: entries recorded
before it were past their period. The record holds no personal data and is never redacted itself.

``verify_log`` (:class:`RedactionCoverage`) reports ``unauthorised_redaction`` for a redacted entry that
no later, intact redaction record of its class lists, or that one lists with a cut-off not after the
entry's ``recorded_at``: a payload removed by hand (``payload`` NULL, ``redacted_at`` set) no longer
passes for retention. Forging a covering record means adding an entry to the tree, which the signed and
kept tree heads reveal.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from familyctx.auditlog.canonical import rfc3339_utc
from familyctx.auditlog.merkle import leaf_hash

__all__ = ["REDACTION_CLASS", "RedactionCoverage", "redaction_record"]

#: Record class of the records that state a redaction.
REDACTION_CLASS = "redaction"
_IDX_BITS = 24  # redaction records addressable per verify (16.7 million; each lists up to a batch)


def redaction_record(
    record_class: str, seqs: Iterable[int], *, cutoff: dt.datetime, retention_days: int | None
) -> dict[str, Any]:
    """The record stating that entries ``seqs`` of ``record_class`` recorded before ``cutoff`` (UTC) were
    redacted under a retention period of ``retention_days`` (see the module docstring)."""
    return {
        "record_class": record_class,
        "retention_days": retention_days,
        "cutoff": rfc3339_utc(cutoff.astimezone(dt.UTC)),
        "seqs": sorted(set(int(s) for s in seqs)),
    }


def _parse(payload: Any, leaf: bytes) -> tuple[str, dt.datetime, list[int]] | None:
    """``(record_class, cutoff, seqs)`` of a stored redaction entry, or None when it is not intact."""
    if not isinstance(payload, bytes) or leaf_hash(payload) != bytes(leaf):
        return None
    try:
        envelope = json.loads(payload)
        record = envelope["record"]
        if envelope.get("class") != REDACTION_CLASS or not isinstance(record, Mapping):
            return None
        cutoff = dt.datetime.fromisoformat(str(record["cutoff"]).replace("Z", "+00:00"))
        seqs = [int(s) for s in record["seqs"] if not isinstance(s, bool)]
        return str(record["record_class"]), cutoff.astimezone(dt.UTC), seqs
    except (ValueError, KeyError, TypeError):
        return None


class RedactionCoverage:
    """Which redacted entries some redaction record authorises (built from the log's redaction records
    before the pass over the entries; then asked about each redacted entry in ``seq`` order).

    Memory: one integer per seq listed (about 40 bytes each), plus one tuple per redaction record."""

    def __init__(self, rows: Iterable[tuple[int, Any, bytes]]) -> None:
        """``rows``: ``(seq, payload, leaf_hash)`` of the entries of class :data:`REDACTION_CLASS`."""
        self._records: list[tuple[int, str, dt.datetime]] = []
        keys: list[int] = []
        for seq, payload, leaf in rows:
            parsed = _parse(payload, leaf)
            if parsed is None or len(self._records) >= 1 << _IDX_BITS:
                continue  # an edited redaction record is reported as `edited` and authorises nothing
            record_class, cutoff, seqs = parsed
            idx = len(self._records)
            self._records.append((int(seq), record_class, cutoff))
            keys.extend((s << _IDX_BITS) | idx for s in seqs if s >= 0)
        keys.sort()
        self._keys = keys
        self._pos = 0

    def check(self, seq: int, record_class: str, recorded_at: dt.datetime) -> str | None:
        """None when the redacted entry ``seq`` (of ``record_class``, recorded at ``recorded_at`` UTC) is
        authorised; otherwise why not. Call with increasing ``seq``."""
        keys, pos = self._keys, self._pos
        while pos < len(keys) and keys[pos] >> _IDX_BITS < seq:
            pos += 1
        listed = []
        while pos < len(keys) and keys[pos] >> _IDX_BITS == seq:
            listed.append(self._records[keys[pos] & ((1 << _IDX_BITS) - 1)])
            pos += 1
        self._pos = pos
        if not listed:
            return "redacted, but no redaction record lists it"
        for by_seq, by_class, cutoff in listed:
            if by_seq > seq and by_class == record_class and recorded_at < cutoff:
                return None
        return "a redaction record lists it, but for another class, an earlier seq or a cut-off before it"
