"""RFC 9162 section 2.1 hashing, proofs and verification (familyctx.auditlog.merkle).

Reference vectors: the RFC 6962 test vectors of the certificate-transparency project, as kept in
transparency-dev/merkle ``proof/verify_test.go`` (eight leaves, roots of sizes 1..8, inclusion and
consistency proofs). Cross-check: pymerkle 7 (``InmemoryTree(algorithm="sha256")``, whose leaf and node
prefixes are checked to be RFC 9162's 0x00/0x01) on random trees of 1..300 leaves.
"""

from __future__ import annotations

import hashlib
import random
import warnings

import pymerkle
import pytest

from familyctx.auditlog import merkle
from familyctx.auditlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (0-based leaf index, tree size, audit path)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (old size, new size, consistency path)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip

LEAF_HASHES = [leaf_hash(x) for x in LEAVES]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_hashing_uses_the_rfc_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert (
        root_hash([]) == EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_reference_vectors(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference_vectors(index: int, size: int, path: list[str]) -> None:
    assert inclusion_proof(index, LEAF_HASHES[:size]) == [h(p) for p in path]
    assert verify_inclusion(LEAF_HASHES[index], index, size, [h(p) for p in path], ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference_vectors(old: int, new: int, path: list[str]) -> None:
    assert consistency_proof(old, LEAF_HASHES[:new]) == [h(p) for p in path]
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], [h(p) for p in path])


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> list[tuple]:
    """The probes of transparency-dev/merkle's corruptInclusionProof: every one must fail."""
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, root, leaf, wrong))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, path: list[str]) -> None:
    proof = [h(p) for p in path]
    probes = _corrupt_inclusion(index, size, proof, ROOTS[size - 1], LEAF_HASHES[index])
    assert len(probes) >= 14
    for i, size_, root, leaf, proof_ in probes:
        assert not verify_inclusion(leaf, i, size_, proof_, root), (i, size_)


@pytest.mark.parametrize(("old", "new", "path"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, path: list[str]) -> None:
    proof = [h(p) for p in path]
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((old, new, r1, r2, wrong))
    for a, b, ra, rb, p in probes:
        assert not verify_consistency(a, b, ra, rb, p), (a, b)


def test_trivial_and_invalid_consistency_cases() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])  # every tree extends the empty one
    assert not verify_consistency(0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT])
    assert not verify_consistency(1, 1, ROOTS[0], ROOTS[1], [])
    assert not verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])
    assert not verify_consistency(1, 2, ROOTS[0], ROOTS[1], [])
    assert not verify_inclusion(LEAF_HASHES[0], 0, 0, [], EMPTY_ROOT)
    assert verify_inclusion(LEAF_HASHES[0], 0, 1, [], ROOTS[0])
    with pytest.raises(ValueError, match="index"):
        inclusion_proof(8, LEAF_HASHES)
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(9, LEAF_HASHES)


def test_every_proof_of_small_trees_verifies_and_only_at_its_own_position() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    for n in range(1, 41):
        root = root_hash(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(i, leaves[:n])
            assert verify_inclusion(leaves[i], i, n, proof, root)
            if n > 1:
                assert not verify_inclusion(leaves[i], (i + 1) % n, n, proof, root)
        for m in range(n + 1):
            assert verify_consistency(m, n, root_hash(leaves[:m]), root, consistency_proof(m, leaves[:n]))


def test_pymerkle_hashes_as_rfc_9162() -> None:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    assert tree.security is True
    assert (tree.leaf_prefix, tree.node_prefix) == (b"\x00", b"\x01")
    tree.append_entry(b"abc")
    assert tree.get_leaf(1) == leaf_hash(b"abc")


def test_roots_and_proofs_agree_with_pymerkle_for_random_sizes() -> None:
    rng = random.Random(9162)
    sizes = sorted({1, 2, 3, 255, 256, 257, 300, *rng.sample(range(1, 301), 60)})
    for n in sizes:
        data = [rng.randbytes(rng.randint(0, 64)) for _ in range(n)]
        tree = pymerkle.InmemoryTree(algorithm="sha256")
        for item in data:
            tree.append_entry(item)
        leaves = [leaf_hash(item) for item in data]
        assert tree.get_root() == root_hash(leaves)
        for m in rng.sample(range(1, n + 1), min(n, 8)):
            assert tree.get_root(m) == root_hash(leaves[:m])
            # pymerkle's audit path is the leaf hash followed by the RFC 9162 path
            i = rng.randrange(m)
            theirs = [bytes.fromhex(x) for x in tree.prove_inclusion(i + 1, m).serialize()["path"]]
            assert theirs == [leaves[i], *inclusion_proof(i, leaves[:m])]
            # pymerkle's consistency proof has its own layout: check it proves OUR roots consistent
            old = rng.randint(1, m)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                pymerkle.verify_consistency(
                    root_hash(leaves[:old]), root_hash(leaves[:m]), tree.prove_consistency(old, m)
                )
            assert verify_consistency(
                old, m, root_hash(leaves[:old]), root_hash(leaves[:m]), consistency_proof(old, leaves[:m])
            )


def test_frontier_tracks_the_root_and_reports_completed_subtrees() -> None:
    frontier = Frontier()
    leaves: list[bytes] = []
    completed: list[tuple[int, int, bytes]] = []
    for i in range(70):
        leaves.append(leaf_hash(i.to_bytes(2, "big")))
        completed += frontier.append(leaves[-1])
        assert frontier.size == i + 1
        assert frontier.root() == root_hash(leaves)
        assert len(frontier.hashes) == frontier.size.bit_count()
    for level, idx, digest in completed:
        assert level >= 1
        assert digest == root_hash(leaves[idx << level : (idx + 1) << level])
    assert len(completed) == 70 - (70).bit_count()  # one interior node per merge
    again = Frontier.from_json(frontier.to_json())
    assert again == frontier and again.root() == frontier.root()


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"size": "3", "hashes": []},
        {"size": 3, "hashes": ["00" * 32]},  # 3 needs two hashes
        {"size": 1, "hashes": ["zz" * 32]},
        {"size": 1, "hashes": ["00" * 31]},
        {"size": -1, "hashes": []},
        {"size": 1},
    ],
)
def test_malformed_frontier_json_is_refused(data: object) -> None:
    with pytest.raises(ValueError):
        Frontier.from_json(data)


def test_perfect_pieces_decompose_ranges() -> None:
    assert merkle.perfect_pieces(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.perfect_pieces(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(ValueError):
        merkle.perfect_pieces(3, 3)
