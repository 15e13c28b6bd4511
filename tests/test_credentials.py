"""Credentials: Data Integrity conformance, Open Badges 3.0, CLR 2.0, status lists, verification."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.clock import parse_time
from creditbank.credentials import integrity, status
from creditbank.credentials.openbadges import credential_id, json_number
from creditbank.credentials.verify import Verifier
from creditbank.errors import InputError, ProofError, RuleError
from creditbank.ledger.canonical import MAX_DEPTH, canonicalize
from creditbank.ledger.encoding import b58decode
from creditbank.ledger.keys import SigningKey
from creditbank.store.projections import StatusRows

from .bank_fixtures import CERTIFICATE, ORG, SCHOOL, converting_bank, issued_certificates
from .conftest import example_bank

VECTORS = Path(__file__).parent / "data" / "vc-di-eddsa"


def vector(folder: str, name: str) -> Any:
    text = (VECTORS / folder / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else text


def vector_key() -> SigningKey:
    private = b58decode(vector("eddsa-jcs-2022", "keyPair.json")["privateKeyMultibase"][1:])
    assert private[:2] == b"\x80\x26"
    return SigningKey.from_seed(private[2:])


# -- W3C conformance ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "config", "signature", "canonical"),
    [
        ("eddsa-jcs-2022", "proofConfigJCS.json", "sigHexJCS.txt", "canonDocJCS.txt"),
        ("eddsa-rdfc-2022", "proofConfigDataInt.json", "sigHexDataInt.txt", "canonDocDataInt.txt"),
    ],
)
def test_w3c_vectors_are_reproduced_exactly(
    folder: str, config: str, signature: str, canonical: str
) -> None:
    key = vector_key()
    assert key.public.multibase == vector("eddsa-jcs-2022", "keyPair.json")["publicKeyMultibase"]
    unsigned = vector("eddsa-jcs-2022", "unsigned.json")
    options = {k: v for k, v in vector(folder, config).items() if k != "@context"}
    proof = integrity.create_proof(unsigned, key, options)
    assert b58decode(proof["proofValue"][1:]).hex() == vector(folder, signature).strip()
    suite = integrity.JCS if "jcs" in folder else integrity.RDFC
    form = canonicalize(unsigned) if suite == integrity.JCS else integrity.rdfc(unsigned)
    assert form.decode() == vector(folder, canonical)
    signed_name = "signedJCS.json" if suite == integrity.JCS else "signedDataInt.json"
    signed = vector(folder, signed_name)
    assert proof["proofValue"] == signed["proof"]["proofValue"]
    integrity.verify_proof(signed, signed["proof"], key.public)
    signed["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(ProofError, match="does not verify"):
        integrity.verify_proof(signed, signed["proof"], key.public)


def test_contexts_are_never_fetched() -> None:
    document = {"@context": ["https://example.org/unknown-context"], "name": "x"}
    with pytest.raises(InputError, match="not a bundled context"):
        integrity.rdfc(document)


strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40)
@given(claims=st.dictionaries(strings, json_values, min_size=1, max_size=5))
def test_jcs_proofs_round_trip_and_detect_any_change(claims: dict[str, Any]) -> None:
    key = vector_key()
    document = {"id": "urn:uuid:1", "credentialSubject": claims}
    signed = integrity.sign(document, key, (integrity.JCS,), "did:key:x#x", "2026-01-01T00:00:00Z")
    integrity.verify_proof(signed, signed["proof"], key.public)
    changed = {**signed, "credentialSubject": {**claims, "extra-claim": 1}}
    with pytest.raises(ProofError):
        integrity.verify_proof(changed, signed["proof"], key.public)


@given(
    value=st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
)
def test_credit_numbers_are_emitted_as_signed(value: Decimal) -> None:
    number = json_number(str(value))
    emitted = canonicalize({"creditsEarned": number})
    assert Decimal(str(json.loads(emitted)["creditsEarned"])) == value
    assert canonicalize(json.loads(emitted)) == emitted


@given(st.sets(st.integers(0, status.LIST_SIZE - 1), max_size=50))
def test_status_bits_round_trip(indexes: set[int]) -> None:
    encoded = status.encode(indexes)
    assert encoded.startswith("u") and "=" not in encoded
    bits = status.decode(encoded)
    assert len(bits) * 8 == status.LIST_SIZE
    for probe in [*indexes, 0, status.LIST_SIZE - 1]:
        assert status.is_set(bits, probe) == (probe in indexes)


def test_a_status_list_is_refused_when_short_or_not_base64url() -> None:
    with pytest.raises(InputError, match="fewer than"):
        status.decode(status.encode([], size=8 * 1024))
    with pytest.raises(InputError, match="multibase"):
        status.decode("z123")


# -- exported from a bank, on SQLite and PostgreSQL ------------------------------------------


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    account = converting_bank(bank, authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    bank.convert(account, "P510201", authority)
    bank.checkpoint(log_key)
    return account


def _seq(bank: CreditBank, account: str, kind: str) -> int:
    if kind == "conversion":
        return int(bank.conversions(account)[0]["seq"])
    return int(bank.outcomes(account=account, kind=kind)[0]["seq"])


def _lists(bank: CreditBank, authority: SigningKey) -> Any:
    published = bank.publish_status_lists(authority)
    return lambda url: published.get(url.rsplit("/", 1)[-1])


def _offline_status(bank: CreditBank, authority: SigningKey, credential: Any) -> Any:
    """The status check of ``credential`` verified offline against lists published now."""
    lists = _lists(bank, authority)
    offline = Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists)
    return next(c for c in offline.verify(credential).checks if c.name == "status")


def test_an_outcome_exports_signs_and_verifies_with_both_suites(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "certificate")
    credential = bank.export_credential(seq, ORG, (integrity.JCS, integrity.RDFC))
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert [p["cryptosuite"] for p in credential["proof"]] == [integrity.JCS, integrity.RDFC]
    assert credential["issuer"]["id"] == ORG.public.did_key
    subject = credential["credentialSubject"]
    assert subject["achievement"]["achievementType"] == "Certificate"
    # The day the certificate states it was issued, which the RDFC proof signs too.
    assert subject["activityEndDate"] == bank.ledger.record(seq).payload["issued_on"]
    national = subject["identifier"][0]
    assert national["hashed"] and national["identityHash"].startswith("sha256$")
    assert "110105" not in json.dumps(credential)
    entry = credential["credentialStatus"]
    assert entry["type"] == "BitstringStatusListEntry"
    assert 0 <= int(entry["statusListIndex"]) < status.LIST_SIZE
    report = bank.credential_verifier(status_lists=_lists(bank, authority)).verify(credential)
    assert report.ok, report.to_dict()
    assert [c.outcome for c in report.checks] == ["pass"] * 5
    again = bank.export_credential(seq, ORG)
    assert again["credentialStatus"] == entry and again["id"] == credential["id"]


def test_a_conversion_carries_its_credits_as_a_number(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "conversion")
    credential = bank.export_credential(seq, authority, (integrity.RDFC,))
    earned = credential["credentialSubject"]["creditsEarned"]
    assert isinstance(earned, int | float)
    stored = bank.ledger.record(seq).payload["credits"]
    assert Decimal(str(earned)) == Decimal(stored)
    assert bank.credential_verifier().verify(credential).ok
    emitted = json.loads(canonicalize(credential))
    assert bank.credential_verifier().verify(emitted).ok


def test_revocation_reaches_the_status_list(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "certificate")
    credential = bank.export_credential(seq, ORG)
    bank.revoke_outcome(seq, "issued in error", ORG)
    report = bank.credential_verifier(status_lists=_lists(bank, authority)).verify(credential)
    assert not report.ok
    assert [c.name for c in report.checks if c.outcome == "fail"] == ["status"]
    assert "revoked" in report.checks[3].detail


def test_a_tampered_or_misissued_credential_fails(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "certificate")
    credential = bank.export_credential(seq, ORG)
    credential["credentialSubject"]["achievement"]["name"] = "高级 senior"
    report = bank.credential_verifier().verify(credential)
    assert [c.name for c in report.checks if c.outcome == "fail"] == ["proofs"]
    with pytest.raises(RuleError, match="not a key of org-iot"):
        bank.export_credential(seq, SCHOOL)
    with pytest.raises(RuleError, match="not an outcome or conversion"):
        bank.export_credential(0, authority)
    with pytest.raises(RuleError, match=f"no record {bank.ledger.size()}: the ledger has"):
        bank.export_credential(bank.ledger.size(), ORG)


@pytest.mark.parametrize("linked", [True, False])
def test_a_record_written_past_the_bank_is_not_exported(
    bank: CreditBank, learner: str, log_key: SigningKey, linked: bool
) -> None:
    """An outcome signed by a registered key but appended straight to the log (never
    admitted, so in no state table, and perhaps in no account) is not a credential."""
    from creditbank.ledger.log import Entry

    cert = bank.ledger.record(_seq(bank, learner, "certificate"))
    with bank.ledger.transaction() as tx:
        entry = Entry(cert.kind, cert.payload, ORG, learner if linked else None)
        forged = tx.append([entry])[0]
    bank.checkpoint(log_key)
    with pytest.raises(RuleError, match=f"record {forged.seq} is not an outcome or conversion"):
        bank.export_credential(forged.seq, ORG)


def test_a_key_revoked_before_signing_fails_the_issuer_key_check(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "certificate")
    credential = bank.export_credential(seq, ORG)
    bank.revoke_key("org-iot", ORG.key_id, bank.clock.now() - timedelta(hours=1), "lost", authority)
    report = bank.credential_verifier().verify(credential)
    assert [c.name for c in report.checks if c.outcome == "fail"] == ["issuer_key"]


def test_a_record_signed_after_its_keys_compromise_is_not_vouched_for(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """The bank exports no credential, nor a transcript, that vouches for a standing
    record its signing key signed after the compromise the key's revocation states; one
    exported before the revocation is withdrawn through its status bit. Revoked, the
    record is exported with its status bit set, like any revoked one."""
    before = _seq(bank, learner, "certificate")
    bank.clock.advance(timedelta(hours=2))
    leaked = bank.issue("certificate", learner, {**CERTIFICATE, "certificate_code": "IOT-X"}, ORG)
    bank.checkpoint(log_key)
    exported = bank.export_credential(leaked.seq, ORG)
    new = SigningKey.from_seed(bytes([78]) * 32)
    bank.rotate_key("org-iot", ORG.key_id, new.public, authority)
    bank.revoke_key(
        "org-iot", ORG.key_id, bank.clock.now() - timedelta(hours=1), "leaked", authority
    )
    bank.checkpoint(log_key)
    message = f"^record {leaked.seq} was signed at .* by key {ORG.key_id}, compromised from "
    with pytest.raises(RuleError, match=message) as refused:
        bank.export_credential(leaked.seq, new)
    assert refused.value.kind == "key_compromised"
    with pytest.raises(RuleError, match=message):
        bank.export_transcript(learner, authority)
    assert bank.export_credential(before, new)["credentialSubject"]
    # Exported while the key still stood, it is withdrawn through its status bit.
    lists = _lists(bank, authority)
    offline = Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists).verify(exported)
    assert [(c.name, c.outcome) for c in offline.checks if c.outcome == "fail"] == [
        ("status", "fail")
    ]
    assert "revoked: bit" in offline.checks[3].detail
    good = bank.export_credential(before, new)
    assert Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists).verify(good).ok
    bank.revoke_outcome(leaked.seq, "signed with a leaked key", new)
    bank.checkpoint(log_key)
    held = bank.export_transcript(learner, authority)["credentialSubject"]["verifiableCredential"]
    assert credential_id(bank.ledger.origin, leaked.seq) in {c["id"] for c in held}


def test_a_conversion_signed_after_the_authority_keys_compromise_is_withdrawn(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """A conversion the authority key signed after the compromise its revocation states
    is marked suspect, exported no more, and withdrawn through its status bit if it was
    exported before; the conversions of other keys keep their bits clear."""
    seq = _seq(bank, learner, "conversion")
    exported = bank.export_credential(seq, authority)
    bank.clock.advance(timedelta(hours=1))
    new = SigningKey.from_seed(bytes([79]) * 32)
    bank.rotate_key("authority", authority.key_id, new.public, authority)
    granted = next(c for c in bank.conversions(learner) if c["seq"] == seq)["granted"]
    bank.revoke_key("authority", authority.key_id, parse_time(granted), "leaked", new)
    bank.checkpoint(log_key)
    suspects = {c["seq"]: c["suspect"] for c in bank.transcript(learner)["conversions"]}
    assert suspects[seq] == {"key": authority.key_id, "compromised_from": granted}
    with pytest.raises(RuleError, match=f"^record {seq} was signed at ") as refused:
        bank.export_credential(seq, new)
    assert refused.value.kind == "key_compromised"
    status = _offline_status(bank, new, exported)
    assert status.outcome == "fail" and "revoked: bit" in status.detail


def test_a_conversion_drawn_on_a_compromised_outcome_is_withdrawn(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """A standing conversion drawn on a certificate its key signed after the compromise
    the key's revocation states is exported no more, though the authority key that
    granted it is sound, and its credential exported before is withdrawn through its
    status bit. Once the registrar revokes it, it is exported with that bit set."""
    seq = _seq(bank, learner, "conversion")
    cert = _seq(bank, learner, "certificate")
    assert cert in {i["seq"] for i in bank.conversions(learner)[0]["inputs"]}
    exported = bank.export_credential(seq, authority)
    assert bank.credential_verifier(status_lists=_lists(bank, authority)).verify(exported).ok
    bank.clock.advance(timedelta(hours=1))
    issued = parse_time(bank.outcomes(account=learner, kind="certificate")[0]["issued"])
    bank.revoke_key("org-iot", ORG.key_id, issued, "leaked", authority)
    bank.checkpoint(log_key)
    message = f"^conversion {seq} draws on record {cert}, signed by a key after its stated "
    with pytest.raises(RuleError, match=message) as refused:
        bank.export_credential(seq, authority)
    assert refused.value.kind == "conversion_input_compromised"
    status = _offline_status(bank, authority, exported)
    assert status.outcome == "fail" and "revoked: bit" in status.detail
    bank.revoke_conversion(seq, "drawn on a leaked certificate", authority)
    bank.checkpoint(log_key)
    again = bank.export_credential(seq, authority)
    assert again["credentialStatus"] == exported["credentialStatus"]


def test_offline_verification_uses_the_embedded_proofs(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seq = _seq(bank, learner, "certificate")
    credential = bank.export_credential(seq, ORG)
    lists = _lists(bank, authority)
    offline = Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists).verify(credential)
    assert offline.ok, offline.to_dict()
    assert "registered to org-iot" in offline.checks[2].detail
    latest = bank.ledger.latest_checkpoint()
    assert latest is not None
    ledger = next(c for c in offline.checks if c.name == "ledger")
    signed_at = f"{latest.created[:19]}.000000Z"
    assert ledger.detail.startswith(
        f"record {seq} in checkpoint of size {latest.size} signed at {signed_at}: "
    )
    other = SigningKey.from_seed(bytes([42]) * 32).public.vkey(bank.ledger.origin)
    forged = Verifier(bank.clock.now(), other, None, lists).verify(credential)
    assert {c.name for c in forged.checks if c.outcome == "fail"} >= {"ledger", "issuer_key"}


def test_the_transcript_links_exemptions_to_their_certificates(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    transcript = bank.export_transcript(learner, authority)
    assert transcript["type"] == ["VerifiableCredential", "ClrCredential"]
    subject = transcript["credentialSubject"]
    cert = _seq(bank, learner, "certificate")
    conversions = bank.conversions(learner)
    assert len(subject["verifiableCredential"]) == 1 + len(conversions)
    sources = {a["sourceId"] for a in subject["association"]}
    assert len(sources) == 1 and sources.pop().endswith("#achievement")
    assert len(subject["association"]) == len(conversions)
    report = bank.credential_verifier().verify(transcript)
    assert report.ok, report.to_dict()
    assert len(report.checks) == 5 * (2 + len(conversions))
    assert cert in {int(c["seq"]) for c in bank.outcomes(account=learner)}
    with pytest.raises(InputError, match="not a bundled context"):
        bank.export_transcript(learner, authority, (integrity.RDFC,))


def test_transcripts_and_status_lists_carry_their_signing_keys_proof_after_a_rotation(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """A transcript, each credential in it and each status list carry the tlog-proof of
    the record that introduced their signing key: the genesis record, or once the
    authority key has rotated, the rotation. Offline, every issuer key check passes."""

    def offline(document: dict[str, Any], lists: Any = None) -> list[tuple[str, str]]:
        report = Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists).verify(document)
        assert report.ok, report.to_dict()
        return [(c.outcome, c.detail) for c in report.checks if c.name == "issuer_key"]

    badges = len(
        bank.export_transcript(learner, authority)["credentialSubject"]["verifiableCredential"]
    )
    first = offline(bank.export_transcript(learner, authority))
    assert len(first) == 1 + badges
    assert all(outcome == "pass" and " by record 0 " in d for outcome, d in first), first
    new = SigningKey.from_seed(bytes([77]) * 32)
    rotation = bank.rotate_key("authority", authority.key_id, new.public, authority)
    bank.checkpoint(log_key)
    lists = _lists(bank, new)
    where = f" by record {rotation.seq} "
    checks = offline(bank.export_transcript(learner, new))
    for document in bank.publish_status_lists(new).values():
        checks += offline(document)
    assert len(checks) == 2 + badges
    assert all(outcome == "pass" and where in d for outcome, d in checks), checks
    # A credential whose status list the new key signed is valid offline.
    credential = bank.export_credential(_seq(bank, learner, "certificate"), ORG)
    status = Verifier(bank.clock.now(), bank.ledger.vkey(), None, lists).verify(credential)
    assert status.ok and status.checks[3].outcome == "pass", status.to_dict()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document below its top, as the keys and indexes leading there."""
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        yield (*path, key)
        yield from _paths(child, (*path, key))


@st.composite
def _misshapen(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one to three fields replaced, deleted, wrapped in a list or stringified."""
    changed = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(changed))))
        parent: Any = changed
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "wrap", "stringify"]))
        if action == "replace":
            parent[path[-1]] = draw(_json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            parent[path[-1]] = str(parent[path[-1]])
    return changed


@settings(max_examples=60)
@given(data=st.data())
def test_a_misshapen_credential_gets_a_report_naming_what_failed(
    bank: CreditBank, learner: str, authority: SigningKey, data: st.DataObject
) -> None:
    """Fields of any credential the bank exports (and of the status list it is checked
    against) replaced, deleted, wrapped or stringified: verifying never raises, and a
    change to what the JCS proof signs fails the report."""
    credentials = [
        bank.export_credential(
            _seq(bank, learner, "certificate"), ORG, (integrity.JCS, integrity.RDFC)
        ),
        bank.export_credential(_seq(bank, learner, "conversion"), authority),
        bank.export_transcript(learner, authority),
    ]
    (listed,) = bank.publish_status_lists(authority).values()
    original = data.draw(st.sampled_from([*credentials, listed]))
    document = data.draw(_misshapen(original))
    status_list = data.draw(_misshapen(listed)) if data.draw(st.booleans()) else listed
    online = data.draw(st.booleans())
    verifier = (
        bank.credential_verifier(status_lists=lambda _url: status_list)
        if online
        else Verifier(bank.clock.now(), bank.ledger.vkey(), None, lambda _url: status_list)
    )
    report = verifier.verify(document)
    checked = json.loads(json.dumps(report.to_dict()))
    assert {c["outcome"] for c in checked["checks"]} <= {"pass", "fail", "skip"}

    def unsecured(credential: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in credential.items() if k != "proof"}, sort_keys=True)

    if integrity.JCS in str(original["proof"]) and unsecured(document) != unsecured(original):
        assert not report.ok, checked


def test_misshapen_fields_are_named_and_status_entries_may_be_a_list(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    credential = bank.export_credential(_seq(bank, learner, "certificate"), ORG)
    verifier = bank.credential_verifier(status_lists=_lists(bank, authority))
    entries = {**credential, "credentialStatus": [credential["credentialStatus"]] * 2}
    proof = credential["proof"]
    resigned = integrity.sign(
        entries, ORG, (integrity.JCS,), proof["verificationMethod"], proof["created"]
    )
    report = verifier.verify(resigned)
    assert report.ok and report.checks[3].detail.count("not revoked") == 2, report.to_dict()
    for field, value, check, message in [
        ("evidence", ["a string"], "ledger", "evidence: not a list of objects"),
        ("credentialStatus", "a string", "status", "credentialStatus: not a list of objects"),
        (
            "issuer",
            {**credential["issuer"], "otherIdentifier": [1]},
            "issuer_key",
            "issuer.otherIdentifier: not a list of objects",
        ),
    ]:
        misshapen = {**credential, field: value}
        report = verifier.verify(misshapen)
        failed = {c.name: c.detail for c in report.checks if c.outcome == "fail"}
        assert message in failed[check], failed


@pytest.mark.parametrize("suite", [integrity.JCS, integrity.RDFC])
def test_a_credential_nested_past_the_limit_fails_its_proof_check(
    bank: CreditBank, learner: str, authority: SigningKey, suite: str
) -> None:
    credential = bank.export_credential(_seq(bank, learner, "conversion"), authority, (suite,))
    deep: list[Any] = []
    for _ in range(1_000):
        deep = [deep]
    report = bank.credential_verifier().verify({**credential, "credentialSubject": deep})
    failed = {c.name: c.detail for c in report.checks if c.outcome == "fail"}
    assert f"nest more than {MAX_DEPTH} levels deep" in failed["proofs"], failed


# -- the CLI ------------------------------------------------------------------------------


def test_cli_export_publish_and_verify(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from .conftest import fetch
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    cert, issuer = fetch(
        db_url,
        "SELECT seq, issuer FROM outcomes WHERE kind = 'certificate' AND status = 'valid' "
        "ORDER BY seq LIMIT 1",
    )[0]
    key = f"demo-keys/{issuer}.pem"
    out = run(
        runner,
        db_url,
        "export",
        "credential",
        str(cert),
        "--key",
        key,
        "--suite",
        "both",
        "-o",
        "c.json",
        "--json",
    )
    assert out.exit_code == 0, out.stderr
    written = (tmp_path / "c.json").read_bytes()
    assert written == canonicalize(json.loads(written)) + b"\n"
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    vkey = run(runner, db_url, "vkey").stdout.strip()
    ok = run(
        runner,
        db_url,
        "credential",
        "verify",
        "c.json",
        "--vkey",
        vkey,
        "--status-dir",
        "status",
        "--json",
    )
    assert ok.exit_code == 0, ok.stdout
    assert [c["outcome"] for c in json.loads(ok.stdout)["checks"]] == ["pass"] * 5
    offline = run(
        runner, db_url, "credential", "verify", "c.json", "--offline", "--status-dir", "status"
    )
    assert offline.exit_code == 0 and "(ledger)" not in offline.stdout
    assert (
        run(
            runner, db_url, "outcomes", "revoke", str(cert), "--reason", "error", "--key", key
        ).exit_code
        == 0
    )
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    revoked = run(runner, db_url, "credential", "verify", "c.json", "--status-dir", "status")
    assert revoked.exit_code == 1 and "FAIL status: revoked" in revoked.stdout
    one_line_error(
        run(
            runner,
            db_url,
            "export",
            "credential",
            str(cert),
            "--key",
            "demo-keys/sch-szpt.pem",
            "-o",
            "x.json",
        ),
        1,
        "a credential is signed by its record's issuer (export credential --key)",
    )
    for status_list in (tmp_path / "status").glob("*.json"):
        status_list.write_bytes(b"\xff")
    damaged = run(runner, db_url, "credential", "verify", "c.json", "--status-dir", "status")
    assert damaged.exit_code == 1 and "FAIL status:" in damaged.stdout
    assert "cannot read: 'utf-8' codec" in damaged.stdout
    for text, message in [
        ("[1]", "bad.json: expected a JSON object at the top level"),
        ("[" * 100_000 + "]" * 100_000, "bad.json: not valid JSON: nested too deeply"),
        ("{", "bad.json: not valid JSON: Expecting property name"),
    ]:
        (tmp_path / "bad.json").write_text(text)
        one_line_error(run(runner, db_url, "credential", "verify", "bad.json"), 2, message)
    account = fetch(db_url, "SELECT account FROM outcomes WHERE seq = :s", {"s": cert})[0][0]
    transcript = run(runner, db_url, "export", "transcript", str(account), "-o", "t.json")
    assert transcript.exit_code == 0, transcript.stderr
    assert run(runner, db_url, "credential", "verify", "t.json").exit_code == 0


def test_cli_verify_sums_up_a_transcripts_credentials(
    tmp_path: Path, runner: CliRunner, db_url: str
) -> None:
    from .conftest import fetch
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "16").exit_code == 0
    account = str(fetch(db_url, "SELECT account FROM outcomes ORDER BY seq LIMIT 1")[0][0])
    assert run(runner, db_url, "export", "transcript", account, "-o", "t.json").exit_code == 0
    document = json.loads(run(runner, db_url, "credential", "verify", "t.json", "--json").stdout)
    held = [c["held"] for c in document["checks"] if "held" in c]
    count = len(set(held))
    assert count >= 3 and len(held) == 5 * count
    assert all(c["detail"].startswith(f"{c['held']}: ") for c in document["checks"] if "held" in c)
    names = ("proofs", "ledger", "issuer_key", "status", "validity")
    summary = run(runner, db_url, "credential", "verify", "t.json").stdout.splitlines()
    assert [line.split(":")[0] for line in summary[:5]] == [
        "PASS proofs",
        "SKIP ledger",
        "PASS issuer_key",
        "SKIP status",
        "PASS validity",
    ]
    skip = "status list https://demo.creditbank.example/ledger/status/1 not available"
    assert summary[5:] == [
        f"PASS {name}: {count} of the {count} credentials held"
        if name != "status"
        else f"SKIP status: {count} of the {count} credentials held: {skip} (give --status-dir)"
        for name in names
    ] + ["VALID"]
    every = run(runner, db_url, "credential", "verify", "t.json", "--verbose").stdout.splitlines()
    assert len(every) == 5 * (1 + count) + 1
    transcript = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    tampered = transcript["credentialSubject"]["verifiableCredential"][1]
    tampered["name"] += "!"
    (tmp_path / "t.json").write_text(json.dumps(transcript), encoding="utf-8")
    failed = run(runner, db_url, "credential", "verify", "t.json")
    assert failed.exit_code == 1
    lines = failed.stdout.splitlines()
    assert (
        f"FAIL proofs: {tampered['id']}: proof (eddsa-jcs-2022): the signature does not verify"
        in lines
    )
    assert f"PASS proofs: {count - 1} of the {count} credentials held" in lines
    assert lines[-1] == "NOT VALID"


# -- the 1EdTech Open Badges 3.0 JSON Schema ----------------------------------------------


def ob3_schema() -> Any:
    """The pinned schema, with its VC 1.1 ``issuanceDate`` requirement read as VC 2.0's
    ``validFrom`` (the one change its VC 2.0 revision makes to what is required)."""
    schema = json.loads(
        (Path(__file__).parent / "data/ob-v3p0/achievementcredential.json").read_text()
    )
    schema["required"] = [
        "validFrom" if name == "issuanceDate" else name for name in schema["required"]
    ]
    return schema


def test_exported_credentials_validate_against_the_open_badges_schema(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    from jsonschema import Draft201909Validator, FormatChecker

    validator = Draft201909Validator(ob3_schema(), format_checker=FormatChecker())
    credentials = [
        bank.export_credential(
            _seq(bank, learner, "certificate"), ORG, (integrity.JCS, integrity.RDFC)
        ),
        bank.export_credential(_seq(bank, learner, "conversion"), authority),
        *bank.export_transcript(learner, authority)["credentialSubject"]["verifiableCredential"],
    ]
    for credential in credentials:
        errors = [e.message for e in validator.iter_errors(json.loads(canonicalize(credential)))]
        assert errors == [], errors
    broken = json.loads(canonicalize(credentials[0]))
    broken["credentialSubject"]["creditsEarned"] = "4.5"
    broken["credentialSubject"]["identifier"][0]["plain"] = "110105..."
    assert len(list(validator.iter_errors(broken))) == 2


def test_a_cascaded_conversion_is_revoked_in_the_status_list(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    conversion = bank.export_credential(_seq(bank, learner, "conversion"), authority)
    verifier = bank.credential_verifier(status_lists=_lists(bank, authority))
    assert verifier.verify(conversion).ok
    cert = _seq(bank, learner, "certificate")
    bank.revoke_outcome(cert, "issued in error", ORG)
    bank.cascade(cert, authority)
    report = bank.credential_verifier(status_lists=_lists(bank, authority)).verify(conversion)
    assert [c.name for c in report.checks if c.outcome == "fail"] == ["status"]


@settings(max_examples=4, deadline=None)
@given(exported=st.lists(st.booleans(), min_size=4, max_size=4), revoked=st.sets(st.integers(0, 3)))
def test_a_status_list_sets_exactly_the_exported_records_now_revoked(
    backend: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
    exported: list[bool],
    revoked: set[int],
) -> None:
    """Bits are set for exported outcomes revoked since, and for nothing else: not for an
    exported outcome still standing, nor for a revoked outcome that was never exported."""
    with example_bank(backend, tmp_path_factory.mktemp("status"), authority, log_key) as (bank, _):
        account = converting_bank(bank, authority)
        seqs = issued_certificates(bank, account, 4)
        bank.checkpoint(log_key)
        positions = {}
        for i, seq in enumerate(seqs):
            if exported[i]:
                credential = bank.export_credential(seq, ORG)
                entry = credential["credentialStatus"]
                positions[seq] = (entry["statusListCredential"], int(entry["statusListIndex"]))
        for i in sorted(revoked):
            bank.revoke_outcome(seqs[i], "issued in error", ORG)
        published = bank.publish_status_lists(authority)
        for seq, (url_, index) in positions.items():
            listed = published[url_.rsplit("/", 1)[-1]]
            bits = status.decode(listed["credentialSubject"]["encodedList"])
            assert status.is_set(bits, index) == (seqs.index(seq) in revoked)
        set_bits = sum(
            bin(byte).count("1")
            for listed in published.values()
            for byte in status.decode(listed["credentialSubject"]["encodedList"])
        )
        assert set_bits == sum(1 for i in revoked if exported[i])


@settings(max_examples=6, deadline=None)
@given(
    batches=st.lists(st.lists(st.integers(1, 12), max_size=6), min_size=1, max_size=5),
    fill_limit=st.integers(1, 4),
)
def test_status_entries_are_allocated_once_each_and_fill_one_list_after_another(
    backend: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[int]],
    fill_limit: int,
) -> None:
    """Entries are chosen only for records without one, and each keeps the entry it got
    first; a batch may repeat records or hold ones already exported; no two records
    share a bit; a list is only started once the one
    before holds ``fill_limit`` entries."""
    with example_bank(backend, tmp_path_factory.mktemp("entries"), authority, log_key) as (bank, _):
        given_out: dict[int, tuple[int, int]] = {}
        for batch in batches:
            with bank.ledger.store.appending() as conn:
                chosen = StatusRows.choose(conn, batch, fill_limit, 2 * fill_limit)
                for seq, (number, position) in chosen.items():
                    StatusRows.assign(conn, seq, number, position, assigned=0)
            assert set(chosen) == set(batch) - set(given_out)
            with bank.ledger.store.reading() as conn:
                found = {seq: StatusRows.of(conn, seq) for seq in batch}
            for seq, entry in found.items():
                assert entry is not None
                assert given_out.setdefault(seq, entry) == entry
        assert len(set(given_out.values())) == len(given_out)
        per_list = [list(e[0] for e in given_out.values()).count(n) for n in range(1, 99)]
        used = [n for n in per_list if n]
        assert per_list[: len(used)] == used
        assert all(n == fill_limit for n in used[:-1]) and all(n <= fill_limit for n in used)
