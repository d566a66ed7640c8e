"""Signed tree heads: ES256 JWS, export format, key handling (familyctx.auditlog.heads)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from familyctx.auditlog.errors import TreeHeadKeyError
from familyctx.auditlog.heads import (
    SignedTreeHead,
    TreeHead,
    TreeHeadSigner,
    load_public_jwks,
    read_heads_jsonl,
    write_heads_jsonl,
)
from familyctx.auditlog.merkle import leaf_hash

ISSUED = dt.datetime(2026, 11, 29, 9, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture
def signer(tmp_path: Path) -> TreeHeadSigner:
    return TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "head.jwk"), log_id="familyctx-gateway",
                          clock=lambda: ISSUED)  # fmt: skip


def test_generated_key_is_private_to_its_owner(tmp_path: Path) -> None:
    path = TreeHeadSigner.generate_key(tmp_path / "k" / "head.jwk")
    assert os.stat(path).st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        TreeHeadSigner.generate_key(path)


def test_sign_and_verify_round_trip(signer: TreeHeadSigner) -> None:
    head = signer.sign(TreeHead(42, leaf_hash(b"root")))
    assert (head.log_id, head.tree_size, head.root_hash, head.issued_at) == (
        "familyctx-gateway",
        42,
        leaf_hash(b"root"),
        ISSUED,
    )
    assert head.verify(signer.public_jwks()) is None
    again = SignedTreeHead.from_json(head.to_json())
    assert again == head and again.verify(signer.public_jwks()) is None
    assert "\n" not in head.to_json()
    assert "d" not in signer.public_jwks()["keys"][0]  # public part only


def test_a_head_whose_values_differ_from_what_was_signed_fails(signer: TreeHeadSigner) -> None:
    head = signer.sign(TreeHead(42, leaf_hash(b"root")))
    jwks = signer.public_jwks()
    for forged in (
        SignedTreeHead(head.log_id, 41, head.root_hash, head.issued_at, head.jws),
        SignedTreeHead(head.log_id, 42, leaf_hash(b"other"), head.issued_at, head.jws),
        SignedTreeHead("adapter-E08000007", 42, head.root_hash, head.issued_at, head.jws),
        SignedTreeHead(head.log_id, 42, head.root_hash, ISSUED + dt.timedelta(seconds=1), head.jws),
    ):
        assert forged.verify(jwks) == "content_differs"


def test_an_altered_signature_or_foreign_key_fails(signer: TreeHeadSigner, tmp_path: Path) -> None:
    head = signer.sign(TreeHead(7, leaf_hash(b"r")))
    protected, payload, signature = head.jws.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    altered = SignedTreeHead(
        head.log_id, 7, head.root_hash, head.issued_at, f"{protected}.{payload}.{flipped}"
    )
    assert altered.verify(signer.public_jwks()) == "bad_signature"
    other = TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "other.jwk"), log_id="x")
    assert head.verify(other.public_jwks()) == "unknown_key"
    garbage = SignedTreeHead(head.log_id, 7, head.root_hash, head.issued_at, "not-a-jws")
    assert garbage.verify(signer.public_jwks()) == "malformed"
    with pytest.raises(TreeHeadKeyError):
        head.verify({"no": "keys"})


def test_jsonl_export_round_trip(signer: TreeHeadSigner, tmp_path: Path) -> None:
    heads = [signer.sign(TreeHead(n, leaf_hash(bytes([n])))) for n in (1, 5, 9)]
    path = tmp_path / "kept.jsonl"
    assert write_heads_jsonl(heads[:2], path) == 2
    write_heads_jsonl(heads[2:], path)  # appends
    assert read_heads_jsonl(path) == heads
    path.write_text(path.read_text() + '{"tree_size": 3}\n')
    with pytest.raises(ValueError, match="line 4"):
        read_heads_jsonl(path)


@pytest.mark.parametrize(
    "bad",
    [
        {
            "log_id": "x",
            "tree_size": -1,
            "root_hash": "A" * 43,
            "issued_at": "2026-01-01T00:00:00Z",
            "jws": "a.b.c",
        },
        {
            "log_id": "x",
            "tree_size": 1,
            "root_hash": "AAAA",
            "issued_at": "2026-01-01T00:00:00Z",
            "jws": "a.b.c",
        },
        {"log_id": "x", "tree_size": 1, "root_hash": "A" * 43, "issued_at": "yesterday", "jws": "a.b.c"},
        {
            "log_id": "x",
            "tree_size": True,
            "root_hash": "A" * 43,
            "issued_at": "2026-01-01T00:00:00Z",
            "jws": "a",
        },
        [],
    ],
)
def test_malformed_export_lines_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        SignedTreeHead.from_json(json.dumps(bad))


def test_unusable_keys_are_refused_clearly(tmp_path: Path) -> None:
    public_only = tmp_path / "public.jwk"
    key = ECKey.generate_key("P-256", auto_kid=True)
    public_only.write_text(json.dumps(key.as_dict(private=False)))
    with pytest.raises(TreeHeadKeyError, match="private"):
        TreeHeadSigner(public_only, log_id="x")
    with pytest.raises(TreeHeadKeyError, match="cannot read"):
        TreeHeadSigner(tmp_path / "missing.jwk", log_id="x")
    (tmp_path / "junk.jwk").write_text("{")
    with pytest.raises(TreeHeadKeyError, match="not JSON"):
        TreeHeadSigner(tmp_path / "junk.jwk", log_id="x")
    p384 = tmp_path / "p384.jwk"
    p384.write_text(json.dumps(ECKey.generate_key("P-384").as_dict(private=True)))
    with pytest.raises(TreeHeadKeyError, match="P-256"):
        TreeHeadSigner(p384, log_id="x")
    with pytest.raises(ValueError, match="log_id"):
        TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "ok.jwk"), log_id="")
    (tmp_path / "jwks.json").write_text('{"keys": 1}')
    with pytest.raises(TreeHeadKeyError, match="keys"):
        load_public_jwks(tmp_path / "jwks.json")
