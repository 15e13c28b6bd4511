"""Keys, signed notes, checkpoints and tlog-proof files (no database)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from creditbank.errors import InputError, KeyFileError, ProofError
from creditbank.ledger.checkpoint import Checkpoint, open_checkpoint, open_stored_checkpoint
from creditbank.ledger.cosignature import LAST_SECOND, cosignature_key_hash, witness, witnessed
from creditbank.ledger.encoding import b58decode, b58encode
from creditbank.ledger.keys import (
    COSIGNATURE_TYPE,
    ED25519_NOTE_TYPE,
    SigningKey,
    VerifyKey,
    parse_vkey,
)
from creditbank.ledger.merkle import leaf_hash, node_hash
from creditbank.ledger.note import NoteSignature, SignedNote, parse_note, sign_note
from creditbank.ledger.proof_file import TlogProof, verify_proof_file

KEY = SigningKey.from_seed(bytes(32))


def test_pem_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    KEY.save(path, b"correct horse")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert SigningKey.load(path, b"correct horse").key_id == KEY.key_id
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        SigningKey.load(path, b"wrong")
    with pytest.raises(KeyFileError, match="already exists"):
        KEY.save(path, b"x")
    with pytest.raises(KeyFileError, match="cannot read"):
        SigningKey.load(tmp_path / "missing.pem", b"x")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KeyFileError):
        SigningKey.load(tmp_path / "junk.pem", b"x")


def test_key_id_is_hash_of_public_key() -> None:
    assert KEY.key_id == hashlib.sha256(KEY.public.raw).hexdigest()[:32]


def test_vkey_form_and_parse() -> None:
    text = KEY.public.vkey("example.org/log")
    name, hash_hex, key_b64 = text.split("+", 2)
    assert name == "example.org/log"
    raw = base64.b64decode(key_b64)
    assert raw == b"\x01" + KEY.public.raw
    want = hashlib.sha256(b"example.org/log\n\x01" + KEY.public.raw).digest()[:4].hex()
    assert hash_hex == want
    assert parse_vkey(text) == ("example.org/log", KEY.public)
    with pytest.raises(ProofError, match="key hash"):
        parse_vkey(text.replace(hash_hex, "00000000"))
    with pytest.raises(ProofError):
        parse_vkey("no-plus-signs")
    with pytest.raises(InputError):
        KEY.public.vkey("has space")


def test_did_key_round_trip() -> None:
    did = KEY.public.did_key
    assert did.startswith("did:key:z6Mk")
    assert VerifyKey.from_did_key(did) == KEY.public
    with pytest.raises(InputError):
        VerifyKey.from_did_key("did:key:zQ3s")


@given(st.binary(max_size=40))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_signature_checks() -> None:
    sig = KEY.sign(b"message")
    KEY.public.verify(sig, b"message")
    with pytest.raises(ProofError):
        KEY.public.verify(sig, b"other message")


def _openssl_verdict(public: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 verification as OpenSSL (through ``cryptography``) gives it."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=600))
def test_signatures_are_byte_identical_to_openssl(seed: bytes, message: bytes) -> None:
    openssl = Ed25519PrivateKey.from_private_bytes(seed)
    assert SigningKey.from_seed(seed).sign(message) == openssl.sign(message)


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=300),
    st.sampled_from(["signature", "message", "key", "none"]),
    st.data(),
)
def test_any_edit_is_judged_as_openssl_judges_it(
    seed: bytes, message: bytes, part: str, data: st.DataObject
) -> None:
    key = SigningKey.from_seed(seed)
    parts = {"signature": key.sign(message), "message": message, "key": key.public.raw}
    if part != "none" and parts[part]:
        edited = bytearray(parts[part])
        at = data.draw(st.integers(0, len(edited) - 1))
        edited[at] ^= 1 << data.draw(st.integers(0, 7))
        parts[part] = bytes(edited)
    expected = _openssl_verdict(parts["key"], parts["signature"], parts["message"])
    assert VerifyKey(parts["key"]).is_valid(parts["signature"], parts["message"]) is expected
    unedited = part == "none" or (part == "message" and not message)
    assert expected is unedited


IDENTITY = bytes([1]) + bytes(31)
"""The encoding of the curve's identity point, a small-order 'public key'."""
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
"""L, the order of the Ed25519 base point: an S of L or more is not reduced."""


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (IDENTITY, IDENTITY + bytes(32)),
        (bytes([0xEC]) + b"\xff" * 30 + b"\x7f", IDENTITY + bytes(32)),
        (IDENTITY, IDENTITY + GROUP_ORDER.to_bytes(32, "little")),
    ],
    ids=["identity key, R identity, S 0", "order-2 key", "S not reduced"],
)
def test_small_order_and_unreduced_cases_are_judged_as_openssl_judges_them(
    public: bytes, signature: bytes
) -> None:
    """libsodium refuses small-order keys that RFC 8032 verification in OpenSSL accepts;
    the ledger's verdict stays OpenSSL's either way."""
    for message in (b"", b"creditbank"):
        expected = _openssl_verdict(public, signature, message)
        assert VerifyKey(public).is_valid(signature, message) is expected
    assert VerifyKey(IDENTITY).is_valid(IDENTITY + bytes(32), b"any") is True


@given(st.binary(min_size=32, max_size=32))
def test_every_key_made_from_a_private_key_is_sound(seed: bytes) -> None:
    assert SigningKey.from_seed(seed).public.is_sound()


def test_the_identity_and_its_other_encodings_are_not_sound() -> None:
    assert not VerifyKey(IDENTITY).is_sound()
    not_reduced = bytearray(b"\xff" * 31 + b"\x7f")
    not_reduced[0] = 0xEE
    assert not VerifyKey(bytes(not_reduced)).is_sound()
    flipped = bytearray(IDENTITY)
    flipped[31] ^= 0x80  # the sign bit of x: -0 is not a canonical encoding
    assert not VerifyKey(bytes(flipped)).is_sound()


@pytest.mark.parametrize("key_type", [ED25519_NOTE_TYPE, COSIGNATURE_TYPE])
def test_a_vkey_anyone_could_sign_for_is_refused(key_type: bytes) -> None:
    text = VerifyKey(IDENTITY).vkey("log.example", key_type)
    with pytest.raises(ProofError, match="vkey: not a sound Ed25519 public key"):
        parse_vkey(text, key_type)
    assert parse_vkey(KEY.public.vkey("log.example", key_type), key_type)[1] == KEY.public


def test_signatures_and_messages_may_be_any_bytes_like() -> None:
    leaf = memoryview(b"message" + KEY.sign(b"message"))
    assert KEY.public.is_valid(leaf[-64:], leaf[:-64])
    assert KEY.public.is_valid(bytearray(leaf[-64:]), bytearray(b"message"))
    assert not KEY.public.is_valid(leaf[-64:], leaf[:-63])


@pytest.mark.parametrize("size", [0, 63, 65])
def test_a_signature_of_the_wrong_length_never_verifies(size: int) -> None:
    signature = (KEY.sign(b"message") * 2)[:size]
    assert not KEY.public.is_valid(signature, b"message")
    with pytest.raises(ProofError):
        KEY.public.verify(signature, b"message")


def test_signed_note_round_trip_and_tamper() -> None:
    note = sign_note("hello\nworld\n", "example.org/log", KEY)
    text = note.render()
    assert text.startswith("hello\nworld\n\n\u2014 example.org/log ")
    parsed = parse_note(text)
    parsed.verify("example.org/log", KEY.public)
    with pytest.raises(ProofError):
        parse_note(text.replace("world", "w0rld")).verify("example.org/log", KEY.public)
    with pytest.raises(ProofError, match="no signature"):
        parsed.verify("other.org/log", KEY.public)
    with pytest.raises(ProofError):
        parse_note("no blank line")
    with pytest.raises(ProofError):
        sign_note("no trailing newline", "n", KEY)


def _tree3() -> tuple[list[bytes], bytes]:
    leaves = [b"zero", b"one", b"two"]
    h = [leaf_hash(x) for x in leaves]
    return leaves, node_hash(node_hash(h[0], h[1]), h[2])


def test_checkpoint_body_and_open() -> None:
    _, root = _tree3()
    cp = Checkpoint("example.org/log", 3, root)
    assert cp.body() == f"example.org/log\n3\n{base64.b64encode(root).decode()}\n"
    note = cp.sign(KEY).render()
    assert open_checkpoint(note, "example.org/log", KEY.public) == cp
    with pytest.raises(ProofError, match="origin"):
        open_checkpoint(note, "other.org/log", KEY.public)
    with pytest.raises(ProofError):
        open_checkpoint(note.replace("\n3\n", "\n4\n"), "example.org/log", KEY.public)
    with pytest.raises(ProofError):
        Checkpoint.from_body("example.org/log\n03\nAAAA\n")


WHEN = datetime(2026, 12, 4, 18, 30, 15, 654321, tzinfo=UTC)


def test_a_checkpoint_signs_its_time_as_a_c2sp_cosignature() -> None:
    """The second line follows tlog-cosignature's Ed25519 format, checked here from the spec."""
    _, root = _tree3()
    cp = Checkpoint("example.org/log", 3, root)
    note = cp.sign(KEY, WHEN).render()
    lines = parse_note(note).signatures
    assert len(lines) == 2 and {line.name for line in lines} == {"example.org/log"}
    timestamp = int(WHEN.replace(microsecond=0).timestamp())
    key_id = hashlib.sha256(b"example.org/log\n\x04" + KEY.public.raw).digest()[:4]
    assert lines[1].key_hash == key_id
    assert int.from_bytes(lines[1].signature[:8], "big") == timestamp
    message = f"cosignature/v1\ntime {timestamp}\n{cp.body()}".encode()
    Ed25519PublicKey.from_public_bytes(KEY.public.raw).verify(lines[1].signature[8:], message)
    opened = open_checkpoint(note, "example.org/log", KEY.public)
    assert opened == cp
    assert opened.signed_at == WHEN.replace(microsecond=0)
    assert open_stored_checkpoint(note, "example.org/log", KEY.public).signed_at == opened.signed_at
    assert open_checkpoint(cp.sign(KEY).render(), "example.org/log", KEY.public).signed_at is None


def test_a_client_that_knows_only_the_vkey_ignores_the_time_line() -> None:
    leaves, root = _tree3()
    note = Checkpoint("example.org/log", 3, root).sign(KEY, WHEN).render()
    proof = TlogProof(1, (leaf_hash(leaves[0]), leaf_hash(leaves[2])), note, leaves[1])
    result = verify_proof_file(proof.render(), KEY.public.vkey("example.org/log"))
    assert result.checkpoint.signed_at == WHEN.replace(microsecond=0)


@given(st.integers(min_value=0, max_value=4_000_000_000), st.data())
def test_an_edited_time_line_never_yields_another_time(seconds: int, data: st.DataObject) -> None:
    """Any one byte of the time line changed: refused, or (its key ID gone) no time at all."""
    _, root = _tree3()
    when = datetime.fromtimestamp(seconds, UTC)
    note = Checkpoint("example.org/log", 3, root).sign(KEY, when).render()
    start = note.rindex("\u2014 ")
    position = data.draw(st.integers(min_value=start + 2, max_value=len(note) - 2))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/= x")
    )
    edited = note[:position] + replacement + note[position + 1 :]
    if edited == note:
        return
    try:
        opened = open_checkpoint(edited, "example.org/log", KEY.public)
    except ProofError:
        return
    assert opened.signed_at is None
    with pytest.raises(ProofError, match="not the log key"):
        open_stored_checkpoint(edited, "example.org/log", KEY.public)


def test_a_forged_time_does_not_verify() -> None:
    _, root = _tree3()
    note = Checkpoint("example.org/log", 3, root).sign(KEY, WHEN).render()
    parsed = parse_note(note)
    line = parsed.signatures[1]
    later = (int.from_bytes(line.signature[:8], "big") + 1).to_bytes(8, "big")
    forged = SignedNote(
        parsed.text,
        (parsed.signatures[0], NoteSignature(line.name, line.key_hash, later + line.signature[8:])),
    )
    with pytest.raises(ProofError, match=r"timestamped signature .* does not verify"):
        open_checkpoint(forged.render(), "example.org/log", KEY.public)


@pytest.mark.parametrize("timestamp", [LAST_SECOND + 1, 2**63 - 1, 2**64 - 1])
def test_a_time_signed_beyond_the_year_9999_is_refused_not_crashed(timestamp: int) -> None:
    _, root = _tree3()
    cp = Checkpoint("example.org/log", 3, root)
    note = cp.sign(KEY)
    signature = KEY.sign(f"cosignature/v1\ntime {timestamp}\n{cp.body()}".encode())
    line = NoteSignature(
        "example.org/log",
        cosignature_key_hash("example.org/log", KEY.public),
        timestamp.to_bytes(8, "big") + signature,
    )
    text = SignedNote(note.text, (*note.signatures, line)).render()
    with pytest.raises(ProofError, match="beyond the year 9999"):
        open_checkpoint(text, "example.org/log", KEY.public)


def test_a_time_before_1970_cannot_be_signed() -> None:
    _, root = _tree3()
    with pytest.raises(ProofError, match="cannot be signed"):
        Checkpoint("example.org/log", 3, root).sign(KEY, datetime(1969, 12, 31, tzinfo=UTC))


@given(st.integers(min_value=0, max_value=LAST_SECOND))
def test_a_witness_cosignature_names_its_witness_and_time(seconds: int) -> None:
    _, root = _tree3()
    note = Checkpoint("example.org/log", 3, root).sign(KEY, WHEN).render()
    auditor = SigningKey.from_seed(bytes([7]) * 32)
    when = datetime.fromtimestamp(seconds, UTC)
    cosigned = witness(note, "auditor.example/w1", auditor, when)
    assert cosigned.startswith(note) and open_checkpoint(cosigned, "example.org/log", KEY.public)
    vkey = auditor.public.vkey("auditor.example/w1", COSIGNATURE_TYPE)
    assert witnessed(cosigned, vkey) == ("auditor.example/w1", when)
    with pytest.raises(ProofError, match="carries no cosignature"):
        witnessed(note, vkey)
    with pytest.raises(ProofError, match="not an Ed25519 cosigner key"):
        witnessed(cosigned, auditor.public.vkey("auditor.example/w1"))
    renamed = auditor.public.vkey("auditor.example/w2", COSIGNATURE_TYPE)
    with pytest.raises(ProofError, match=r"not witnessed by auditor\.example/w2"):
        witnessed(cosigned, renamed)


def test_a_cosigner_vkey_follows_c2sp() -> None:
    """name+hex(SHA-256(name || 0x0A || 0x04 || key)[:4])+base64(0x04 || key)."""
    vkey = KEY.public.vkey("w.example", COSIGNATURE_TYPE)
    name, hashed, blob = vkey.split("+")
    assert name == "w.example"
    assert hashed == hashlib.sha256(b"w.example\n\x04" + KEY.public.raw).digest()[:4].hex()
    assert base64.b64decode(blob) == b"\x04" + KEY.public.raw
    assert parse_vkey(vkey, COSIGNATURE_TYPE)[1].raw == KEY.public.raw
    with pytest.raises(ProofError, match="not an Ed25519 signed-note key"):
        parse_vkey(vkey)


def test_proof_file_round_trip_and_offline_verify() -> None:
    leaves, root = _tree3()
    note = Checkpoint("example.org/log", 3, root).sign(KEY).render()
    proof = TlogProof(1, (leaf_hash(leaves[0]), leaf_hash(leaves[2])), note, leaves[1])
    text = proof.render()
    assert text.splitlines()[:2] == [
        "c2sp.org/tlog-proof@v1",
        "extra " + base64.b64encode(b"one").decode(),
    ]
    assert "index 1" in text and "\n\nexample.org/log\n3\n" in text
    assert TlogProof.parse(text) == proof
    vkey = KEY.public.vkey("example.org/log")
    result = verify_proof_file(text, vkey)
    assert (result.index, result.leaf, result.checkpoint.size) == (1, b"one", 3)
    with pytest.raises(ProofError):
        verify_proof_file(text.replace("index 1", "index 2"), vkey)
    with pytest.raises(ProofError):
        verify_proof_file(
            text.replace(
                "extra " + base64.b64encode(b"one").decode(),
                "extra " + base64.b64encode(b"ONE").decode(),
            ),
            vkey,
        )
    other = SigningKey.from_seed(bytes([7]) * 32).public.vkey("example.org/log")
    with pytest.raises(ProofError):
        verify_proof_file(text, other)
    with pytest.raises(ProofError, match="first line"):
        TlogProof.parse("c2sp.org/tlog-proof@v2\nindex 0\n\n" + note)
    with pytest.raises(ProofError, match="index"):
        TlogProof.parse("c2sp.org/tlog-proof@v1\nindex 01\n\n" + note)
    no_extra = TlogProof(1, proof.hashes, note).render()
    with pytest.raises(ProofError, match="extra"):
        verify_proof_file(no_extra, vkey)
