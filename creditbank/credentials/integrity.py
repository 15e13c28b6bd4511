"""W3C Data Integrity proofs with the EdDSA cryptosuites ``eddsa-jcs-2022`` and ``eddsa-rdfc-2022``.

Signing (both suites): the proof configuration is the proof without
``proofValue``, carrying the document's ``@context``; each of it and the document
without ``proof`` is canonicalised — RFC 8785 JCS, or RDF Dataset Canonicalization
(RDFC-1.0) to N-Quads against the bundled contexts — and hashed with SHA-256;
the Ed25519 signature over ``hash(proof config) || hash(document)`` is the
``proofValue``, multibase base58btc. A proof set (a list of proofs, e.g. one per
suite) is allowed; each proof is over the document without any proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from pyld import jsonld  # type: ignore[import-untyped]

from creditbank.credentials.documents import load_document
from creditbank.errors import InputError, ProofError
from creditbank.ledger.canonical import MAX_DEPTH, canonicalize, nests_deeper
from creditbank.ledger.encoding import b58decode, b58encode
from creditbank.ledger.keys import SigningKey, VerifyKey

JCS = "eddsa-jcs-2022"
RDFC = "eddsa-rdfc-2022"
SUITES = (JCS, RDFC)


def rdfc(document: Mapping[str, Any]) -> bytes:
    """RDFC-1.0 canonical N-Quads of a JSON-LD document, against the bundled contexts only.

    Raises:
        InputError: a context that is not bundled, a document JSON-LD cannot expand,
            or one nesting deeper than :data:`MAX_DEPTH`.
    """
    if nests_deeper(document, MAX_DEPTH):
        raise InputError(f"JSON-LD: arrays and objects nest more than {MAX_DEPTH} levels deep")
    try:
        text: str = jsonld.normalize(
            dict(document),
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": load_document,
                "safe": True,
            },
        )
    except jsonld.JsonLdError as e:
        cause: BaseException | None = e
        while cause is not None:
            if isinstance(cause, InputError):
                raise InputError(str(cause)) from e
            cause = cause.__cause__
        raise InputError(f"JSON-LD: the document cannot be canonicalised ({e.args[0]})") from e
    return text.encode("utf-8")


def _canonical(suite: str) -> Callable[[Mapping[str, Any]], bytes]:
    if suite == JCS:
        return lambda value: canonicalize(dict(value))
    if suite == RDFC:
        return rdfc
    raise InputError(f"cryptosuite: {suite!r} is not one of {', '.join(SUITES)}")


def _unsecured(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def hash_data(document: Mapping[str, Any], config: Mapping[str, Any]) -> bytes:
    """What the signature covers: SHA-256 of the canonical proof config, then of the document.

    Raises:
        InputError: an unknown cryptosuite, or a document the suite cannot canonicalise.
    """
    canonical = _canonical(str(config.get("cryptosuite")))
    with_context = dict(config)
    if "@context" in document:
        with_context["@context"] = document["@context"]
    return (
        hashlib.sha256(canonical(with_context)).digest()
        + hashlib.sha256(canonical(_unsecured(document))).digest()
    )


def proof_config(
    suite: str, verification_method: str, created: str, purpose: str = "assertionMethod"
) -> dict[str, Any]:
    """A Data Integrity proof configuration (the proof without its value)."""
    return {
        "type": "DataIntegrityProof",
        "cryptosuite": suite,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }


def create_proof(
    document: Mapping[str, Any], key: SigningKey, config: Mapping[str, Any]
) -> dict[str, Any]:
    """A proof of ``document`` by ``key`` under ``config`` (its suite and method).

    Raises:
        InputError: an unknown cryptosuite or a document it cannot canonicalise.
    """
    signature = key.sign(hash_data(document, config))
    return {**config, "proofValue": "z" + b58encode(signature)}


def sign(
    document: Mapping[str, Any],
    key: SigningKey,
    suites: tuple[str, ...],
    verification_method: str,
    created: str,
) -> dict[str, Any]:
    """``document`` with one proof per suite (a proof set when there are several).

    Raises:
        InputError: an unknown cryptosuite or a document it cannot canonicalise.
    """
    unsecured = _unsecured(document)
    proofs = [
        create_proof(unsecured, key, proof_config(suite, verification_method, created))
        for suite in suites
    ]
    return {**unsecured, "proof": proofs[0] if len(proofs) == 1 else proofs}


def proofs_of(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The proofs a secured document carries (one, or a proof set).

    Raises:
        ProofError: no proof, or one that is not an object.
    """
    found = document.get("proof")
    proofs = found if isinstance(found, list) else [found] if found is not None else []
    if not proofs or not all(isinstance(p, dict) for p in proofs):
        raise ProofError("proof: the document carries no Data Integrity proof")
    return proofs


def verify_proof(document: Mapping[str, Any], proof: Mapping[str, Any], key: VerifyKey) -> None:
    """Check one proof of ``document`` with the key its verification method names.

    Raises:
        ProofError: not a DataIntegrityProof, an unknown suite, a malformed value,
            or a signature that does not verify.
    """
    if proof.get("type") != "DataIntegrityProof":
        raise ProofError(f"proof: type {proof.get('type')!r} is not DataIntegrityProof")
    suite = proof.get("cryptosuite")
    if suite not in SUITES:
        raise ProofError(f"proof: cryptosuite {suite!r} is not supported")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError(f"proof ({suite}): proofValue is not multibase base58btc")
    try:
        signature = b58decode(value[1:], "proofValue")
        message = hash_data(document, {k: v for k, v in proof.items() if k != "proofValue"})
    except InputError as e:
        raise ProofError(f"proof ({suite}): {e}") from e
    if not key.is_valid(signature, message):
        raise ProofError(f"proof ({suite}): the signature does not verify")
