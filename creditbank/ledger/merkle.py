"""RFC 6962 / RFC 9162 §2.1 Merkle trees: hashing, compact ranges, proofs and their checks.

A **complete subtree** is named ``(level, index)``: it covers leaves
``[index << level, (index + 1) << level)``. Stored node hashes are only ever
complete subtrees, so a proof needs O(log n) of them; :func:`inclusion_plan` and
:func:`consistency_plan` say which ranges, and :func:`prove` fetches their
complete subtrees in one call and folds them into the proof. The checks bind
the proof to the leaf index and the tree sizes and refuse truncated or extended
proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from creditbank.errors import ProofError

Coord = tuple[int, int]
"""A complete subtree: (level, index)."""

Range = tuple[int, int]
"""A half-open leaf range [start, end)."""

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root hash of the empty tree (RFC 6962: the hash of an empty string)."""


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(start: int, end: int) -> list[Coord]:
    """Split ``[start, end)`` into maximal aligned complete subtrees, left to right."""
    size = end - start
    if size > 0 and size & (size - 1) == 0 and start & (size - 1) == 0:
        level = size.bit_length() - 1
        return [(level, start >> level)]
    coords: list[Coord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def fold(hashes: Sequence[bytes]) -> bytes:
    """Fold the hashes of consecutive complete subtrees (descending sizes) into one root."""
    if len(hashes) == 1:
        return hashes[0]
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_plan(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the inclusion proof of ``index`` in a tree of ``size``.

    Ordered from the leaf's sibling up to the root's child (RFC 6962 §2.1.1).

    Raises:
        ProofError: ``index`` is not below ``size``.
    """
    return [
        (part[0][1] << part[0][0], (part[-1][1] + 1) << part[-1][0])
        for part in inclusion_parts(index, size)
    ]


def inclusion_parts(index: int, size: int) -> list[tuple[Coord, ...]]:
    """The complete subtrees of each hash of the inclusion proof of ``index`` in ``size``.

    One tuple per hash of the proof, ordered as :func:`inclusion_plan` orders its
    ranges: one subtree, except on the tree's right edge, where a range of leaves
    is made of several (folded into the proof's hash). The edge ranges are the same
    for every index of a tree, so they are split once.

    Raises:
        ProofError: ``index`` is not below ``size``.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    parts: list[tuple[Coord, ...]] = []
    start, end = 0, size
    while end - start > 1:
        level = (end - start - 1).bit_length() - 1
        half = start + (1 << level)
        if index < half:
            # The right part: a complete subtree too when [start, end) is one.
            if end - start == 2 << level:
                parts.append(((level, half >> level),))
            else:
                parts.append(_edge(half, end))
            end = half
        else:
            # The left part of a range always starts on a multiple of its size.
            parts.append(((level, start >> level),))
            start = half
    parts.reverse()
    return parts


@lru_cache(maxsize=1024)
def _edge(start: int, end: int) -> tuple[Coord, ...]:
    """:func:`subtrees` of a range on the right edge of a tree (a few recur very often)."""
    return tuple(subtrees(start, end))


def consistency_plan(old_size: int, new_size: int) -> list[Range]:
    """The ranges whose hashes form the consistency proof from ``old_size`` to ``new_size``.

    Raises:
        ProofError: ``old_size`` is larger than ``new_size`` or negative.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            complete = False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def prove(
    ranges: Sequence[Range], fetch: Callable[[list[Coord]], Mapping[Coord, bytes]]
) -> list[bytes]:
    """Fetch the complete subtrees the planned ranges need (one call) and fold each range.

    Raises:
        ProofError: ``fetch`` did not return a needed node.
    """
    parts = [subtrees(s, e) for s, e in ranges]
    nodes = fetch([c for part in parts for c in part])
    try:
        return [fold([nodes[c] for c in part]) for part in parts]
    except KeyError as e:
        raise ProofError(f"node {e.args[0]} is missing from the tree store") from e


def verify_inclusion(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an RFC 9162 §2.1.3.2 inclusion proof.

    Raises:
        ProofError: the proof does not bind ``leaf_digest`` at ``index`` to ``root``
            at ``size`` (wrong index or size, truncated or extended proof, bad hash).
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_digest
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("inclusion proof: a hash is not 32 bytes")
        if sn == 0:
            raise ProofError("inclusion proof: too many hashes for this index and size")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof: too few hashes for this index and size")
    if r != root:
        raise ProofError("inclusion proof: computed root does not match")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check an RFC 9162 §2.1.4.2 consistency proof between two tree heads.

    Raises:
        ProofError: the trees are not shown consistent by ``proof``.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"consistency: size {old_size} cannot precede size {new_size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("consistency proof: a hash is not 32 bytes")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof: must be empty for equal sizes")
        if old_root != new_root:
            raise ProofError("consistency: equal sizes with different roots")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof: must be empty from the empty tree")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ProofError("consistency proof: empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof: too many hashes")
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
    if sn != 0:
        raise ProofError("consistency proof: too few hashes")
    if fr != old_root:
        raise ProofError("consistency proof: does not reproduce the old root")
    if sr != new_root:
        raise ProofError("consistency proof: does not reproduce the new root")


class CompactRange:
    """The right frontier of a tree: the complete subtrees that make up ``[0, size)``.

    Appending a leaf returns the node hashes it completes, so a store can persist
    every complete subtree as it appears.
    """

    __slots__ = ("frontier", "size")

    def __init__(self, size: int = 0, frontier: Sequence[tuple[int, bytes]] = ()) -> None:
        """Start from ``size`` leaves whose frontier is ``(level, hash)`` pairs, largest first.

        Raises:
            ProofError: the frontier's levels do not match ``size``.
        """
        self.size = size
        self.frontier = list(frontier)
        if [lvl for lvl, _ in self.frontier] != [c[0] for c in subtrees(0, size)]:
            raise ProofError(f"frontier does not describe a tree of size {size}")

    @classmethod
    def load(cls, size: int, fetch: Callable[[list[Coord]], Mapping[Coord, bytes]]) -> CompactRange:
        """Build the frontier of a ``size``-leaf tree from stored complete-subtree hashes.

        Raises:
            ProofError: a needed node is missing.
        """
        coords = subtrees(0, size)
        nodes = fetch(coords)
        try:
            return cls(size, [(lvl, nodes[(lvl, idx)]) for lvl, idx in coords])
        except KeyError as e:
            raise ProofError(f"node {e.args[0]} is missing from the tree store") from e

    def append(self, digest: bytes) -> list[tuple[int, bytes]]:
        """Add a leaf hash; return ``(level, hash)`` of each subtree it completes (level >= 1)."""
        level, current = 0, digest
        completed: list[tuple[int, bytes]] = []
        frontier = self.frontier
        while frontier and frontier[-1][0] == level:
            current = node_hash(frontier.pop()[1], current)
            level += 1
            completed.append((level, current))
        frontier.append((level, current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves so far."""
        return fold([h for _, h in self.frontier])

    def copy(self) -> CompactRange:
        """An independent copy (not checked again: this range is already consistent)."""
        twin = CompactRange.__new__(CompactRange)
        twin.size = self.size
        twin.frontier = list(self.frontier)
        return twin
