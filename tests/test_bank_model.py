"""Any sequence of the bank's own operations leaves a ledger that verifies and audits clean.

A hypothesis state machine drives a small bank through its public API: learners
open accounts, link further IDs and enrol, the school issues courses and training,
the evaluation organisation issues certificates, outcomes are revoked (with their cascade or
without) or, signed under a compromised key, issued again, exemption rules loaded
in new versions, conversions granted and revoked, the organisation's key rotated,
revoked as compromised and replaced, the
authority's key rotated and its old keys revoked as compromised (never its last
valid one), the organisation's accreditation suspended, reinstated or withdrawn,
accounts suspended, resumed, graduated and erased, credentials exported and status
lists published, checkpoints signed and the audit pinned. Many of these are refused
on the state the machine reached; a refusal must leave every table as it was. The
machine keeps its own account of the keys and the accreditation: a certificate must
be refused exactly when they forbid it, and a revocation names exactly the keys the
revoked key rotated in since its compromise. The status lists published last, and
lists published at the end, add nothing to what the audit finds.

At the end the ledger verifies, and the full audit finds exactly what the log
itself says it should: ``key_compromised`` for each record a revoked key signed
from its stated compromise until its revocation (read straight from the records),
as a problem, or as resolved in the log where the record is an outcome or a
conversion revoked since, a key rotation whose keys were each revoked as
compromised from the rotation on, or a status list assignment (it vouches for
nothing); and ``cascade_missing`` for each conversion left flagged.
An incremental audit from the last clean pin finds the same for what came after
the pin.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.credentials.integrity import JCS
from creditbank.credentials.status import STATUS_ASSIGNED
from creditbank.errors import CreditBankError
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import CERTIFICATE, ORG, PROGRAMME, SCHOOL, converting_bank, national_id
from .bank_fixtures import document as document_of
from .conftest import ORIGIN, dump, fresh_database
from .test_audit import found

AUTHORITY = SigningKey.from_seed(bytes(range(32)))
LOG_KEY = SigningKey.from_seed(bytes(range(32, 64)))
_CATALOGUE = document_of(f"{PROGRAMME}.toml")
COURSES = [
    (course["course_code"], course["title"], course["credits"])
    for course in [
        *_CATALOGUE["required"],
        *(c for group in _CATALOGUE["electives"] for c in group["courses"]),
    ]
]
"""(code, title, credits) of every course in the programme the learners are enrolled in."""
TRAINING_RULE = {
    "id": "R-TRAIN",
    "title": "培训学时转换选修学分 Training hours convert to elective credits",
    "kind": "credit_conversion",
    "programme": PROGRAMME,
    "effective_from": "2025-01-01T00:00:00Z",
    "max_source_age_years": 3,
    "when": {"outcome": "training"},
    "grant": {"credits_per_hour": "0.0625", "to_group": "E1"},
}
ANY = st.integers(min_value=0, max_value=1_000)
"""An index into one of the machine's lists, taken modulo its length."""


class BankMachine(RuleBasedStateMachine):
    """A bank and what the machine knows of it: accounts, outcomes, conversions, keys."""

    backend = "sqlite"
    folder = Path()

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        place = self.folder / uuid.uuid4().hex
        place.mkdir()
        self.url = self.stack.enter_context(fresh_database(self.backend, place))
        self.clock = FixedClock(datetime(2026, 9, 1, tzinfo=UTC), timedelta(minutes=47))
        self.bank = CreditBank.create(self.url, ORIGIN, AUTHORITY, LOG_KEY, self.clock)
        self.stack.callback(self.bank.close)
        self.accounts = [converting_bank(self.bank, AUTHORITY)]
        self.bank.load_rule(TRAINING_RULE, AUTHORITY)
        self.outcomes: list[tuple[int, str]] = []
        self.conversions: list[int] = []
        self.org_key = ORG
        self.org_key_revoked = False
        self.accreditation = "active"
        self.seeds = iter(range(100, 256))
        self.learners = iter(range(2, 10_000))
        self.pin = place / "audit.json"
        self.authority = AUTHORITY
        self.retired_authority: list[SigningKey] = []
        self.rotations: list[tuple[str, str, datetime]] = []
        self.published: dict[int, Any] = {}
        """The status lists published last: judged against the log at the end."""
        """(signer, key rotated in, when) of every rotation: the authority's and the org's."""

    def attempt(self, act: Any) -> Any:
        """Run ``act``; if the bank refuses it, every table must be as it was."""
        before = dump(self.url)
        try:
            return act()
        except CreditBankError:
            assert dump(self.url) == before
            return None

    @staticmethod
    def pick(items: list[Any], index: int) -> Any:
        return items[index % len(items)]

    # -- accounts -----------------------------------------------------------------------

    @rule()
    def open_learner(self) -> None:
        opened = self.attempt(
            lambda: self.bank.open_account(national_id(next(self.learners)), "学生", self.authority)
        )
        assert opened is not None, "a new learner's account is never refused"
        account = opened[0]
        self.attempt(
            lambda: self.bank.enroll(
                account, PROGRAMME, "sch-szpt", date(2026, 9, 1), 5, self.authority
            )
        )
        self.accounts.append(account)

    @rule(which=ANY, resume=st.booleans())
    def suspend_or_resume(self, which: int, resume: bool) -> None:
        kind, details = (
            ("account.resumed/1", {})
            if resume
            else ("account.suspended/1", {"reason": "innovation_entrepreneurship"})
        )
        account = self.pick(self.accounts, which)
        self.attempt(lambda: self.bank.change_account(account, kind, details, self.authority))

    @rule(which=ANY)
    def graduate(self, which: int) -> None:
        details = {"programme": PROGRAMME, "graduated_on": self.clock.now().date().isoformat()}
        account = self.pick(self.accounts, which)
        self.attempt(
            lambda: self.bank.change_account(
                account, "account.graduated/1", details, self.authority
            )
        )

    @rule(which=ANY, national=st.booleans())
    def link_identity(self, which: int, national: bool) -> None:
        """Link a further national ID (new, or one the bank already holds) or a passport."""
        account = self.pick(self.accounts, which)
        if not national:
            kind, value = "passport", f"E{which:07d}"
        elif which % 3 == 0:
            kind, value = "national_id", national_id(1)  # the first learner's: refused
        else:
            kind, value = "national_id", national_id(next(self.learners))
        self.attempt(lambda: self.bank.link_identity(account, kind, value, self.authority))

    @rule(which=ANY)
    def erase(self, which: int) -> None:
        account = self.pick(self.accounts, which)
        self.attempt(lambda: self.bank.erase_personal_data(account, self.authority))

    # -- outcomes -----------------------------------------------------------------------

    def issued(self, record: Any, issuer: str) -> None:
        if record is not None:
            self.outcomes.append((record.seq, issuer))

    @rule(which=ANY, course=st.sampled_from(COURSES), grade=st.sampled_from(["A", "C", "F"]))
    def issue_course(self, which: int, course: tuple[str, str, str], grade: str) -> None:
        code, title, credits = course
        details = {
            "course_code": code,
            "course_title": title,
            "programme": PROGRAMME,
            "credits": credits,
            "grade": grade,
            "term": "2026-2027-1",
        }
        account = self.pick(self.accounts, which)
        self.issued(self.attempt(lambda: self.bank.issue("course", account, details, SCHOOL)), "s")

    @rule(which=ANY, hours=st.sampled_from(["8", "16", "40", "64"]))
    def issue_training(self, which: int, hours: str) -> None:
        details = {"title": "岗位培训", "hours": hours, "completed_on": "2026-08-20"}
        account = self.pick(self.accounts, which)
        record = self.attempt(lambda: self.bank.issue("training", account, details, SCHOOL))
        self.issued(record, "s")

    @rule(which=ANY, level=st.sampled_from(["junior", "intermediate", "senior"]))
    def issue_certificate(self, which: int, level: str) -> None:
        details = {**CERTIFICATE, "level": level}
        account = self.pick(self.accounts, which)
        key = self.org_key
        record = self.attempt(lambda: self.bank.issue("certificate", account, details, key))
        self.issued(record, "o")
        allowed = not self.org_key_revoked and self.accreditation == "active" and level != "senior"
        assert (record is not None) == allowed

    @rule(which=ANY, cascade=st.booleans(), by_authority=st.booleans())
    def revoke_outcome(self, which: int, cascade: bool, by_authority: bool) -> None:
        if not self.outcomes:
            return
        seq, issuer = self.pick(self.outcomes, which)
        key = self.authority if by_authority else (SCHOOL if issuer == "s" else self.org_key)
        if cascade:
            self.attempt(
                lambda: self.bank.revoke_with_cascade(seq, "in error", key, self.authority)
            )
        else:
            self.attempt(lambda: self.bank.revoke_outcome(seq, "in error", key))

    @rule(which=ANY)
    def reissue(self, which: int) -> None:
        """Issue again, with the organisation's current key, a certificate signed under a
        compromised one."""
        certificates = [seq for seq, issuer in self.outcomes if issuer == "o"]
        if not certificates:
            return
        seq, key = self.pick(certificates, which), self.org_key
        done = self.attempt(lambda: self.bank.reissue(seq, key, self.authority))
        if done is not None:
            self.issued(done[2], "o")

    @rule(which=ANY)
    def compromise_and_reissue(self, which: int) -> None:
        """The organisation's key found compromised from before a certificate it signed:
        revoked, replaced by the authority, and that certificate issued again under the
        accreditation it was first issued under, whatever has become of that since."""
        signed = [
            (seq, self.bank.ledger.record(seq))
            for seq, issuer in self.outcomes
            if issuer == "o" and not self.org_key_revoked
        ]
        mine = [(seq, r) for seq, r in signed if r.signer == self.org_key.key_id]
        if not mine:
            return
        seq, record = self.pick(mine, which)
        self.bank.revoke_key("org-iot", record.signer, record.timestamp, "leaked", self.authority)
        self.org_key_revoked = True
        self.rotate_org_key(by_itself=False)
        standing = self.bank.outcomes(account=record.account.account if record.account else None)
        if any(o["seq"] == seq and o["status"] == "valid" for o in standing):
            key = self.org_key
            done = self.attempt(lambda: self.bank.reissue(seq, key, self.authority))
            assert done is not None and done[0] is not None
            assert done[0].payload["outcome"] == seq
            self.issued(done[2], "o")

    # -- conversions --------------------------------------------------------------------

    @rule(which=ANY)
    def convert(self, which: int) -> None:
        account = self.pick(self.accounts, which)
        converted = self.attempt(lambda: self.bank.convert(account, PROGRAMME, self.authority))
        if converted is not None:
            self.conversions += [r.seq for r in converted[1]]

    @rule(level=st.sampled_from(["初级", "中级", "高级"]), courses=st.sampled_from(COURSES))
    def load_exemption_rule(self, level: str, courses: tuple[str, str, str]) -> None:
        document = {
            **document_of("R-IOT-EXEMPT.toml"),
            "when": {"outcome": "certificate", "category": "iot-install", "min_level": level},
            "grant": {"courses": [courses[0]]},
        }
        self.attempt(lambda: self.bank.load_rule(document, self.authority))

    @rule(which=ANY)
    def cascade(self, which: int) -> None:
        if self.outcomes:
            seq, _ = self.pick(self.outcomes, which)
            self.attempt(lambda: self.bank.cascade(seq, self.authority))

    @rule(which=ANY)
    def revoke_conversion(self, which: int) -> None:
        if self.conversions:
            seq = self.pick(self.conversions, which)
            self.attempt(
                lambda: self.bank.revoke_conversion(seq, "granted in error", self.authority)
            )

    # -- the organisation's key and accreditation ----------------------------------------

    @rule(by_itself=st.booleans())
    def rotate_org_key(self, by_itself: bool) -> None:
        new = SigningKey.from_seed(bytes([next(self.seeds)]) * 32)
        old = self.org_key
        signer = old if by_itself else self.authority
        rotated = self.attempt(
            lambda: self.bank.rotate_key("org-iot", old.key_id, new.public, signer)
        )
        assert (rotated is not None) == (not (by_itself and self.org_key_revoked))
        if rotated is not None:
            self.rotations.append((signer.key_id, new.key_id, rotated.timestamp))
            self.org_key, self.org_key_revoked = new, False

    @rule(minutes_back=st.integers(min_value=0, max_value=2_000), replace=st.booleans())
    def revoke_org_key(self, minutes_back: int, replace: bool) -> None:
        """Revoke the organisation's key as compromised; the authority may replace it at once."""
        since = self.clock.now() - timedelta(minutes=minutes_back)
        key = self.org_key.key_id
        revoked = self.attempt(
            lambda: self.bank.revoke_key("org-iot", key, since, "leaked", self.authority)
        )
        assert (revoked is not None) == (not self.org_key_revoked)
        self.org_key_revoked = True
        if replace:
            self.rotate_org_key(by_itself=False)

    # -- the authority's key ----------------------------------------------------------------

    @rule()
    def rotate_authority_key(self) -> None:
        new = SigningKey.from_seed(bytes([next(self.seeds)]) * 32)
        old = self.authority
        rotation = self.bank.rotate_key("authority", old.key_id, new.public, old)
        self.rotations.append((old.key_id, new.key_id, rotation.timestamp))
        self.retired_authority.append(old)
        self.authority = new

    @rule(which=ANY, current=st.booleans(), minutes_back=st.integers(0, 2_000))
    def revoke_authority_key(self, which: int, current: bool, minutes_back: int) -> None:
        """The current authority key is the only valid one: its revocation is refused."""
        if current or not self.retired_authority:
            key, expected = self.authority, False
        else:
            key, expected = self.retired_authority.pop(which % len(self.retired_authority)), True
        since = self.clock.now() - timedelta(minutes=minutes_back)
        revoked = self.attempt(
            lambda: self.bank.revoke_key("authority", key.key_id, since, "leaked", self.authority)
        )
        assert (revoked is not None) == expected
        if revoked is not None:
            assert [k["key_id"] for k in self.bank.keys_rotated_in(key.key_id, since)] == [
                new for old, new, at in self.rotations if old == key.key_id and at >= since
            ]

    @rule(action=st.sampled_from(["suspended", "reinstated", "withdrawn"]))
    def change_accreditation(self, action: str) -> None:
        changed = self.attempt(
            lambda: self.bank.change_accreditation("acc-iot", action, "review", self.authority)
        )
        follows = {
            ("active", "suspended"): "suspended",
            ("suspended", "reinstated"): "active",
            ("active", "withdrawn"): "withdrawn",
            ("suspended", "withdrawn"): "withdrawn",
        }
        assert (changed is not None) == ((self.accreditation, action) in follows)
        self.accreditation = follows.get((self.accreditation, action), self.accreditation)

    # -- credentials --------------------------------------------------------------------

    @rule(which=ANY, by_authority=st.booleans(), conversion=st.booleans())
    def export_credential(self, which: int, by_authority: bool, conversion: bool) -> None:
        """Export a conversion's credential (the authority's), or an outcome's, signed by
        its issuer's key or the authority's (refused)."""
        if conversion and self.conversions:
            seq = self.pick(self.conversions, which)
            self.attempt(lambda: self.bank.export_credential(seq, self.authority, (JCS,), LOG_KEY))
        elif self.outcomes:
            seq, issuer = self.pick(self.outcomes, which)
            key = self.authority if by_authority else (self.org_key if issuer == "o" else SCHOOL)
            self.attempt(lambda: self.bank.export_credential(seq, key, (JCS,), LOG_KEY))

    @rule()
    def publish_status_lists(self) -> None:
        published = self.attempt(lambda: self.bank.publish_status_lists(self.authority))
        if published is not None:
            self.published = {int(n): document for n, document in published.items()}

    # -- the log ------------------------------------------------------------------------

    @rule()
    def checkpoint(self) -> None:
        self.bank.checkpoint(LOG_KEY)

    @rule()
    def pin_audit(self) -> None:
        self.bank.checkpoint(LOG_KEY)
        self.bank.audit(self.pin)

    @invariant()
    def conversions_replay(self) -> None:
        for seq in self.conversions[-2:]:
            assert self.bank.replay_conversion(seq) is not None

    def expected_problems(
        self,
    ) -> tuple[set[tuple[str, int | None]], set[tuple[str, int | None]]]:
        """What the log itself says an audit must find, and must find resolved since
        (see the module's docstring)."""
        records = list(self.bank.ledger.records())
        revoked = {r.payload["outcome"]: r.seq for r in records if r.kind == "outcome.revoked/1"}
        undone = set(revoked) | {
            r.payload["conversion"] for r in records if r.kind == "conversion.revoked/1"
        }
        compromised = {
            r.payload["key"]: r.payload["compromised_at"]
            for r in records
            if r.kind == "issuer.key_revoked/1"
        }
        expected: set[tuple[str, int | None]] = set()
        resolved: set[tuple[str, int | None]] = set()
        for revocation in (r for r in records if r.kind == "issuer.key_revoked/1"):
            key, since = revocation.payload["key"], revocation.payload["compromised_at"]
            for r in records[: revocation.seq]:
                if r.signer == key and r.time >= since:
                    if r.kind == "issuer.key_rotated/1":
                        # undone when every key it brought in is compromised from it on
                        done = all(
                            k["id"] in compromised and compromised[k["id"]] <= r.time
                            for k in r.payload["keys"]
                        )
                    elif r.kind == STATUS_ASSIGNED:
                        done = True  # status entries vouch for nothing
                    else:
                        revocable = r.kind.startswith(("outcome.", "conversion.granted/"))
                        done = revocable and r.seq in undone
                    (resolved if done else expected).add(("key_compromised", r.seq))
        for account in self.accounts:
            for conversion in self.bank.conversions(account):
                if conversion["status"] == "flagged":
                    first = next(i["seq"] for i in conversion["inputs"] if i["seq"] in revoked)
                    expected.add(("cascade_missing", revoked[first]))
        return expected, resolved

    def teardown(self) -> None:
        try:
            assert self.bank.verify().ok
            self.bank.checkpoint(LOG_KEY)
            pinned = self.pin.exists()
            full = self.bank.audit()
            expected, resolved = self.expected_problems()
            assert found(full) == expected, full.problems
            # Lists the bank published, then or now, never disagree with the log.
            stale = self.bank.audit(status_lists=self.published)
            assert found(stale) == expected, stale.problems
            fresh = self.bank.publish_status_lists(self.authority)
            now = self.bank.audit(status_lists={int(n): d for n, d in fresh.items()})
            assert found(now) == expected, now.problems
            assert {(p.kind, p.seq) for p in full.resolved} == resolved, full.resolved
            if pinned:
                incremental = self.bank.audit(self.pin)
                assert incremental.mode == "incremental"
                assert found(incremental) == {
                    (p.kind, p.seq)
                    for p in full.problems
                    if p.kind == "cascade_missing"
                    or (p.kind == "key_compromised" and p.extra["revocation"] >= incremental.start)
                }
                assert {(p.kind, p.seq) for p in incremental.resolved} == {
                    (p.kind, p.seq)
                    for p in full.resolved
                    if p.extra["revocation"] >= incremental.start
                }
        finally:
            self.stack.close()


def test_any_sequence_of_bank_operations_audits_as_the_log_says(
    backend: str, tmp_path: Path
) -> None:
    BankMachine.backend = backend
    BankMachine.folder = tmp_path
    run_state_machine_as_test(
        BankMachine,
        settings=settings(
            max_examples=60 if backend == "sqlite" else 15,
            stateful_step_count=30,
            deadline=None,
        ),
    )
