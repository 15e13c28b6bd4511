"""RFC 6962 Merkle trees: roots, inclusion and consistency proofs and their checks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.errors import ProofError
from creditbank.ledger import merkle
from creditbank.ledger.merkle import (
    CompactRange,
    consistency_plan,
    inclusion_parts,
    inclusion_plan,
    leaf_hash,
    node_hash,
    prove,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle tree hash, written straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]) from the definition."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF from the definition."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def ref_ranges(m: int, start: int, end: int) -> list[tuple[int, int]]:
    """The leaf ranges of PATH(m, D[start:end]), leaf's sibling first, from the definition."""
    n = end - start
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < start + k:
        return [*ref_ranges(m, start, start + k), (start + k, end)]
    return [*ref_ranges(m, start + k, end), (start, start + k)]


class Tree:
    """An in-memory tree built with CompactRange, keeping every completed node."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.range = CompactRange()
        for i, leaf in enumerate(leaves):
            digest = leaf_hash(leaf)
            self.nodes[(0, i)] = digest
            for level, h in self.range.append(digest):
                self.nodes[(level, i >> level)] = h

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return prove(inclusion_plan(index, size), lambda coords: {c: self.nodes[c] for c in coords})

    def consistency(self, old: int, new: int) -> list[bytes]:
        return prove(consistency_plan(old, new), lambda coords: {c: self.nodes[c] for c in coords})

    def root(self, size: int) -> bytes:
        return merkle.fold([self.nodes[c] for c in merkle.subtrees(0, size)])


LEAVES = [f"leaf {i}".encode() for i in range(70)]
TREE = Tree(LEAVES)


def test_empty_root() -> None:
    assert CompactRange().root() == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_compact_range_root_matches_definition_at_every_size() -> None:
    compact = CompactRange()
    for n, leaf in enumerate(LEAVES, start=1):
        compact.append(leaf_hash(leaf))
        assert compact.root() == mth(LEAVES[:n]) == TREE.root(n)


def test_compact_range_loads_from_stored_nodes() -> None:
    for n in range(len(LEAVES) + 1):
        loaded = CompactRange.load(n, lambda coords: {c: TREE.nodes[c] for c in coords})
        assert loaded.root() == mth(LEAVES[:n])


def test_frontier_must_match_size() -> None:
    with pytest.raises(ProofError):
        CompactRange(3, [(1, bytes(32))])


def test_known_root_of_rfc6962_style_tree() -> None:
    # Two leaves: root = H(0x01 || H(0x00||a) || H(0x00||b)).
    a, b = b"a", b"b"
    assert mth([a, b]) == node_hash(leaf_hash(a), leaf_hash(b))


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_proofs_match_definition_and_verify(case: tuple[int, int]) -> None:
    index, size = case
    proof = TREE.inclusion(index, size)
    assert proof == ref_path(index, LEAVES[:size])
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, mth(LEAVES[:size]))


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_match_definition_and_verify(case: tuple[int, int]) -> None:
    old, new = case
    proof = TREE.consistency(old, new)
    if 0 < old < new:
        assert proof == ref_subproof(old, LEAVES[:new], True)
    verify_consistency(old, new, mth(LEAVES[:old]), mth(LEAVES[:new]), proof)


def _inclusion_mutations(
    index: int, size: int, proof: list[bytes]
) -> list[tuple[int, int, list[bytes]]]:
    muts: list[tuple[int, int, list[bytes]]] = [
        (index + 1, size, proof),
        (index - 1, size, proof) if index > 0 else (size, size, proof),
        (index, size * 2, proof),
        (index, size, [*proof, bytes(32)]),
        (index, size, [bytes(32), *proof]),
    ]
    if proof:
        muts.append((index, size, proof[:-1]))
        muts.append((index, size, proof[1:]))
        for i in range(len(proof)):
            flipped = bytearray(proof[i])
            flipped[i % 32] ^= 0x01
            muts.append((index, size, [*proof[:i], bytes(flipped), *proof[i + 1 :]]))
    return muts


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_every_inclusion_mutation_fails(case: tuple[int, int]) -> None:
    index, size = case
    proof = TREE.inclusion(index, size)
    root = mth(LEAVES[:size])
    for m_index, m_size, m_proof in _inclusion_mutations(index, size, proof):
        if (m_index, m_size, m_proof) == (index, size, proof):
            continue
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(LEAVES[index]), m_index, m_size, m_proof, root)


@given(st.integers(2, 70).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_every_consistency_mutation_fails(case: tuple[int, int]) -> None:
    old, new = case
    proof = TREE.consistency(old, new)
    old_root, new_root = mth(LEAVES[:old]), mth(LEAVES[:new])
    mutations: list[tuple[int, int, list[bytes]]] = [
        (old + 1, new, proof),
        (old - 1, new, proof) if old > 1 else (old + 2, new, proof),
        (old, new * 2, proof),
        (old, new, [*proof, bytes(32)]),
        (old, new, proof[:-1]),
        (old, new, proof[1:]),
    ]
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[0] ^= 0x80
        mutations.append((old, new, [*proof[:i], bytes(flipped), *proof[i + 1 :]]))
    for m_old, m_new, m_proof in mutations:
        if (m_old, m_new, m_proof) == (old, new, proof):
            continue
        with pytest.raises(ProofError):
            verify_consistency(m_old, m_new, old_root, new_root, m_proof)


@given(st.integers(1, 1 << 40).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_parts_are_the_complete_subtrees_of_the_paths_ranges(
    case: tuple[int, int],
) -> None:
    index, size = case
    ranges = ref_ranges(index, 0, size)
    assert inclusion_plan(index, size) == ranges
    assert inclusion_parts(index, size) == [tuple(merkle.subtrees(s, e)) for s, e in ranges]


def test_wrong_roots_fail_consistency() -> None:
    proof = TREE.consistency(5, 20)
    with pytest.raises(ProofError):
        verify_consistency(5, 20, mth(LEAVES[:6]), mth(LEAVES[:20]), proof)
    with pytest.raises(ProofError):
        verify_consistency(5, 20, mth(LEAVES[:5]), mth(LEAVES[:21]), proof)


def test_index_outside_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        inclusion_plan(5, 5)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"x"), 5, 5, [], bytes(32))
    with pytest.raises(ProofError):
        consistency_plan(6, 5)


def count_reads(plan: list[tuple[int, int]]) -> int:
    asked: list[tuple[int, int]] = []

    def fetch(coords: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        asked.extend(coords)
        return dict.fromkeys(coords, bytes(32))

    prove(plan, fetch)
    return len(asked)


def test_proofs_need_logarithmic_nodes() -> None:
    size = 1_000_000
    for index in (0, 1, 499_999, 999_999, 777_777):
        assert count_reads(inclusion_plan(index, size)) <= 2 * size.bit_length()
    assert count_reads(consistency_plan(123_457, size)) <= 2 * size.bit_length()


def test_missing_node_is_reported() -> None:
    with pytest.raises(ProofError, match="missing"):
        prove(inclusion_plan(3, 8), lambda coords: {})
