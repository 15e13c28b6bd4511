"""Ed25519 keys: generation, encrypted PKCS#8 PEM files, key ids, C2SP vkeys and did:key.

Signing and verifying run on libsodium (through PyNaCl), about twice as fast as
OpenSSL's Ed25519 in ``cryptography``; a signature libsodium refuses is checked
again with ``cryptography``, so what verifies is exactly what RFC 8032 verification
in OpenSSL accepts (libsodium also refuses small-order keys and ``R`` values, which
OpenSSL accepts). Both give the same, deterministic, signature.

A key's **key id** is the lower-case hex of the first 16 bytes of SHA-256 of its
raw 32-byte public key. Its C2SP **verifier key** is ``name+hhhhhhhh+base64(0x01||pub)``
where ``hhhhhhhh`` is the signed-note key hash of that name and key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import (
    crypto_core_ed25519_is_valid_point,
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError

from creditbank.errors import InputError, KeyFileError, ProofError
from creditbank.ledger.encoding import b58decode, b58encode, b64decode, b64encode

SIGNATURE_SIZE = 64
"""The length of an Ed25519 signature."""
ED25519_NOTE_TYPE = b"\x01"
"""The signed-note signature type byte for Ed25519."""
COSIGNATURE_TYPE = b"\x04"
"""The signature type byte of an Ed25519 ``cosignature/v1`` (C2SP tlog-cosignature)."""
_KEY_TYPES = {
    ED25519_NOTE_TYPE: "an Ed25519 signed-note key",
    COSIGNATURE_TYPE: "an Ed25519 cosigner key (cosignature/v1)",
}

MULTICODEC_ED25519_PUB = b"\xed\x01"
"""Multicodec prefix of an Ed25519 public key (``did:key``, Multikey)."""


class VerifyKey:
    """An Ed25519 public key with the identifiers the ledger uses for it."""

    __slots__ = ("_key", "key_id", "raw")

    def __init__(self, raw: bytes) -> None:
        """Wrap a raw 32-byte Ed25519 public key.

        Raises:
            InputError: ``raw`` is not 32 bytes.
        """
        if len(raw) != 32:
            raise InputError(f"public key: expected 32 bytes, got {len(raw)}")
        self.raw = bytes(raw)
        self._key: Ed25519PublicKey | None = None
        self.key_id = hashlib.sha256(self.raw).hexdigest()[:32]

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature over ``message``.

        Raises:
            ProofError: the signature does not verify.
        """
        if not self.is_valid(signature, message):
            raise ProofError(f"signature by key {self.key_id} does not verify")

    def is_valid(self, signature: bytes, message: bytes) -> bool:
        """Return whether ``signature`` over ``message`` verifies (for report building)."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            crypto_sign_open(b"".join((signature, message)), self.raw)
        except BadSignatureError:
            return self._openssl_valid(signature, message)
        return True

    def is_sound(self) -> bool:
        """Whether this is a key only its private key's holder can sign for.

        False for an encoding that is not canonical, not on the curve, of small
        order or outside the prime-order subgroup: RFC 8032 verification accepts
        signatures by such a "key" that anyone can make (the identity point, with
        ``R`` the identity and ``S`` zero, verifies every message). A key made from
        a private key is always sound.
        """
        return bool(crypto_core_ed25519_is_valid_point(self.raw))

    def _openssl_valid(self, signature: bytes, message: bytes) -> bool:
        """The RFC 8032 check of OpenSSL, for a signature libsodium refused."""
        if self._key is None:
            self._key = Ed25519PublicKey.from_public_bytes(self.raw)
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def note_key_hash(self, name: str, key_type: bytes = ED25519_NOTE_TYPE) -> bytes:
        """The 4-byte signed-note key hash of this key under ``name`` for ``key_type``."""
        return note_key_hash(name, self.raw, key_type)

    def vkey(self, name: str, key_type: bytes = ED25519_NOTE_TYPE) -> str:
        """The C2SP verifier key text for this key under ``name``.

        ``key_type`` is :data:`ED25519_NOTE_TYPE` for a signer of notes (the log),
        :data:`COSIGNATURE_TYPE` for a cosigner (a witness).

        Raises:
            InputError: ``name`` is empty or holds whitespace or ``+``.
        """
        check_note_name(name)
        hashed = self.note_key_hash(name, key_type).hex()
        return f"{name}+{hashed}+{b64encode(key_type + self.raw)}"

    @property
    def did_key(self) -> str:
        """The ``did:key`` identifier of this key."""
        return "did:key:" + self.multibase

    @property
    def multibase(self) -> str:
        """The Multikey ``publicKeyMultibase`` value (``z`` + base58btc of 0xed01 || key)."""
        return "z" + b58encode(MULTICODEC_ED25519_PUB + self.raw)

    @classmethod
    def from_did_key(cls, did: str) -> VerifyKey:
        """Parse a ``did:key`` (or bare multibase) Ed25519 identifier.

        Raises:
            InputError: not an Ed25519 ``did:key``.
        """
        text = did.split("#", 1)[0]
        text = text.removeprefix("did:key:")
        if not text.startswith("z"):
            raise InputError(f"did:key {did!r}: expected multibase base58btc ('z')")
        data = b58decode(text[1:], "did:key")
        if not data.startswith(MULTICODEC_ED25519_PUB) or len(data) != 34:
            raise InputError(f"did:key {did!r}: not an Ed25519 public key")
        return cls(data[2:])

    def __eq__(self, other: object) -> bool:
        """Keys are equal when their raw bytes are."""
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        """Hash by raw bytes."""
        return hash(self.raw)

    def __repr__(self) -> str:
        """Show the key id."""
        return f"VerifyKey({self.key_id})"


class SigningKey:
    """An Ed25519 private key."""

    __slots__ = ("_key", "_secret", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` Ed25519 private key."""
        self._key = key
        public, self._secret = crypto_sign_seed_keypair(self.seed())
        self.public = VerifyKey(public)

    @classmethod
    def generate(cls) -> SigningKey:
        """Generate a fresh key from the operating system's randomness."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Build a key from its 32-byte seed (test vectors, deterministic demos).

        Raises:
            InputError: ``seed`` is not 32 bytes.
        """
        if len(seed) != 32:
            raise InputError(f"private key seed: expected 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def key_id(self) -> str:
        """The key id of the public half."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return crypto_sign(message, self._secret)[:SIGNATURE_SIZE]

    def seed(self) -> bytes:
        """The 32-byte private seed (secret: only for handing the key to a helper process)."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_pem(self, passphrase: bytes) -> bytes:
        """Serialise as PKCS#8 PEM encrypted with ``passphrase``.

        Raises:
            InputError: the passphrase is empty.
        """
        if not passphrase:
            raise InputError("passphrase: must not be empty")
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes, source: str = "key") -> SigningKey:
        """Load an encrypted PKCS#8 PEM Ed25519 key.

        Raises:
            KeyFileError: wrong passphrase, not PEM, or not an Ed25519 key; names ``source``.
        """
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError as e:
            raise KeyFileError(
                f"{source}: the key file is not encrypted or needs a passphrase"
            ) from e
        except (ValueError, UnsupportedAlgorithm) as e:
            raise KeyFileError(f"{source}: wrong passphrase or not a PKCS#8 PEM key") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source}: not an Ed25519 key")
        return cls(key)

    def save(self, path: Path, passphrase: bytes) -> None:
        """Write the encrypted PEM to ``path`` with mode 0600, refusing to overwrite.

        Raises:
            KeyFileError: the file exists or cannot be written.
        """
        data = self.to_pem(passphrase)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            raise KeyFileError(f"{path}: key file already exists; refusing to overwrite") from e
        except OSError as e:
            raise KeyFileError(f"{path}: cannot write key file: {e.strerror}") from e
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    @classmethod
    def load(cls, path: Path, passphrase: bytes) -> SigningKey:
        """Read an encrypted PEM key file.

        Raises:
            KeyFileError: missing or unreadable file, wrong passphrase, not Ed25519.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise KeyFileError(f"{path}: cannot read key file: {e.strerror}") from e
        return cls.from_pem(data, passphrase, str(path))


def note_key_hash(name: str, raw_public: bytes, key_type: bytes = ED25519_NOTE_TYPE) -> bytes:
    """C2SP signed-note key hash: first 4 bytes of SHA-256(name || 0x0A || type || key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + key_type + raw_public).digest()[:4]


def check_note_name(name: str) -> None:
    """Check a signed-note key name: non-empty, no whitespace, no ``+``.

    Raises:
        InputError: the name breaks those rules.
    """
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise InputError(f"origin/key name {name!r}: must be non-empty with no spaces or '+'")


def parse_vkey(text: str, key_type: bytes = ED25519_NOTE_TYPE) -> tuple[str, VerifyKey]:
    """Parse a C2SP verifier key ``name+hash+base64(type||key)``; return (name, key).

    ``key_type`` is the type the key must have (see :meth:`VerifyKey.vkey`).

    Raises:
        ProofError: malformed text, another type, a key hash that does not match, or
            a key that is not sound (:meth:`VerifyKey.is_sound`: it would vouch for
            notes anyone can sign).
    """
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise ProofError("vkey: expected name+keyhash+key")
    name, hash_hex, key_b64 = parts
    try:
        check_note_name(name)
        data = b64decode(key_b64, "vkey key")
    except InputError as e:
        raise ProofError(f"vkey: {e}") from e
    if len(data) != 33 or data[:1] != key_type:
        raise ProofError(f"vkey: not {_KEY_TYPES[key_type]}")
    key = VerifyKey(data[1:])
    if key.note_key_hash(name, key_type).hex() != hash_hex:
        raise ProofError("vkey: key hash does not match name and key")
    if not key.is_sound():
        raise ProofError("vkey: not a sound Ed25519 public key (anyone could sign as it)")
    return name, key
