"""The ledger: canonical bytes, keys, signed records, Merkle tree, checkpoints, proofs.

It knows nothing of credits: it appends signed records of any kind and proves
things about them.
"""
