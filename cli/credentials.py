"""Credential commands: export credential|transcript, status-list publish, credential verify."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from creditbank.bank import CreditBank
from creditbank.clock import SystemClock
from creditbank.credentials.integrity import JCS, RDFC
from creditbank.credentials.verify import Check, Verifier
from creditbank.documents import read_json
from creditbank.errors import StoreError
from creditbank.ledger.canonical import canonicalize
from creditbank.ledger.keys import SigningKey

from .context import AppContext, pass_app, signing_key
from .output import BadInputError, emit, json_option, read_note, write_file
from .params import FILE, OUTPUT_FILE, OUTPUT_FOLDER, SEQ, WITNESS

F = TypeVar("F", bound=Callable[..., Any])
SUITES = {"jcs": (JCS,), "rdfc": (RDFC,), "both": (JCS, RDFC)}


def register(group: click.Group) -> None:
    """Add the credential commands to ``group``."""
    for command in (export, status_list, credential):
        group.add_command(command)


def suite_option(default: str) -> Callable[[F], F]:
    """``--suite jcs|rdfc|both``: the Data Integrity cryptosuites to sign with."""
    return click.option(
        "--suite",
        type=click.Choice(sorted(SUITES)),
        default=default,
        show_default=True,
        help="eddsa-jcs-2022, eddsa-rdfc-2022, or a proof set with both.",
    )


def _write(path: Path, document: dict[str, Any], option: str = "-o") -> None:
    """Write a credential as its RFC 8785 form: the bytes the JCS suite signs."""
    write_file(path, canonicalize(document) + b"\n", option)


def _log_key(app: AppContext, bank: CreditBank, seq: int | None) -> SigningKey | None:
    """The log key, only when a fresh checkpoint is needed to prove record ``seq``.

    With ``seq`` None: to prove every record.
    """
    if not bank.needs_checkpoint_for(bank.ledger.size() - 1 if seq is None else seq):
        return None
    return app.load_key(None, app.key_paths.log, "log key")


witnessed_option = click.option(
    "--witnessed",
    type=FILE,
    help="Make the records' ledger proofs at this checkpoint an auditor cosigned "
    "(audit --cosigned), so they carry the cosignature.",
)
"""The export option that makes ledger proofs at a witness's cosigned checkpoint."""


@click.group()
def export() -> None:
    """Export outcomes and accounts as W3C / 1EdTech credentials."""


@export.command("credential")
@click.argument("seq", type=SEQ)
@suite_option("jcs")
@click.option("--key", type=FILE, help="Issuer key (default: the authority key beside the db).")
@click.option("-o", "--out", type=OUTPUT_FILE, required=True, help="Where to write the credential.")
@witnessed_option
@json_option
@pass_app
def export_credential(
    app: AppContext,
    seq: int,
    suite: str,
    key: Path | None,
    out: Path,
    witnessed: Path | None,
    as_json: bool,
) -> None:
    """Export record SEQ (an outcome or conversion) as an Open Badges 3.0 credential.

    Signed by the issuer's key (a school's or organisation's for its outcomes, the
    authority's for conversions), with a status list entry and the tlog-proofs of
    the record and of the key's registration. The first export of a record logs its
    status list entry in the ledger, signed by the same key. Example:

        creditbank export credential 42 --key demo-keys/org-iot.pem --suite both -o c42.json
    """
    bank = app.bank()
    signer = signing_key(app, key, "issuer key")
    if witnessed is None:
        document = bank.export_credential(seq, signer, SUITES[suite], _log_key(app, bank, seq))
    else:
        note = read_note(witnessed)
        document = bank.export_credential(seq, signer, SUITES[suite], None, note)
    _write(out, document)
    emit(
        as_json,
        {"credential": document["id"], "seq": seq, "file": str(out), "suite": suite},
        f"wrote {out}: {document['name']} ({document['id']})",
    )


@export.command("transcript")
@click.argument("account")
@click.option("--key", type=FILE, help="Authority key (default: the one beside the db).")
@click.option("-o", "--out", type=OUTPUT_FILE, required=True, help="Where to write the transcript.")
@witnessed_option
@json_option
@pass_app
def export_transcript(
    app: AppContext,
    account: str,
    key: Path | None,
    out: Path,
    witnessed: Path | None,
    as_json: bool,
) -> None:
    """Export an account as a CLR 2.0 transcript (ClrCredential), signed eddsa-jcs-2022.

    Each outcome and conversion inside is an Open Badges credential; associations
    link each conversion to the outcomes it drew on. Entries of records exported for
    the first time are logged in the ledger, in one record. For example:

        creditbank export transcript acct-0123456789abcdef -o transcript.json
    """
    bank = app.bank()
    authority = signing_key(app, key)
    if witnessed is None:
        document = bank.export_transcript(account, authority, (JCS,), _log_key(app, bank, None))
    else:
        note = read_note(witnessed)
        document = bank.export_transcript(account, authority, (JCS,), None, note)
    _write(out, document)
    count = len(document["credentialSubject"]["verifiableCredential"])
    emit(
        as_json,
        {"credential": document["id"], "account": account, "credentials": count, "file": str(out)},
        f"wrote {out}: {count} credentials of {account}",
    )


@click.group("status-list")
def status_list() -> None:
    """Bitstring Status Lists of exported credentials."""


@status_list.command("publish")
@click.option("-o", "--out", type=OUTPUT_FOLDER, required=True)
@click.option("--key", type=FILE, help="Authority key (default: the one beside the db).")
@suite_option("jcs")
@json_option
@pass_app
def status_list_publish(
    app: AppContext, out: Path, key: Path | None, suite: str, as_json: bool
) -> None:
    """Write every status list credential (revocations as in the ledger) to a folder.

    Serve the folder at https://ORIGIN/status/ (file N.json for list N). Entries
    given before entries were logged (by an older version) are logged first. Example:

        creditbank status-list publish -o public/status
    """
    bank = app.bank()
    published = bank.publish_status_lists(
        signing_key(app, key), SUITES[suite], _log_key(app, bank, None)
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"-o: cannot create {out}: {e}") from e
    for name, document in published.items():
        _write(out / f"{name}.json", document)
    emit(
        as_json,
        {"lists": sorted(published), "folder": str(out)},
        f"wrote {len(published)} status list(s) to {out}",
    )


@click.group()
def credential() -> None:
    """Check credentials."""


@credential.command("verify")
@click.argument("file", type=FILE)
@click.option("--vkey", metavar="VKEY", help="The log's verifier key, pinned.")
@click.option(
    "--status-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of published status lists (N.json for list N).",
)
@click.option("--offline", is_flag=True, help="Do not consult a ledger database.")
@WITNESS
@click.option(
    "--verbose", "-v", is_flag=True, help="A transcript: every check of every credential held."
)
@json_option
@pass_app
def credential_verify(
    app: AppContext,
    file: Path,
    vkey: str | None,
    status_dir: Path | None,
    offline: bool,
    witnesses: tuple[str, ...],
    verbose: bool,
    as_json: bool,
) -> None:
    """Verify a credential offline: proofs, ledger record, issuer key, status, validity.

    Issuer keys are checked against the ledger when a database is at hand (and not
    --offline), else against the key registration proof the credential carries.
    A transcript's own checks are listed, then for the credentials it holds each
    failure, the skips by reason and the count that passed (--verbose: every
    check; --json: every check, each naming the credential held). With --witness,
    the checkpoint of the record's ledger proof must carry that witness's
    cosignature (export credential --witnessed). Exit 0 valid, 1 not. Example:

        creditbank credential verify c42.json --vkey "$(creditbank vkey)" --status-dir public/status
    """
    document = read_json(file)

    def lists(url: str) -> dict[str, Any] | None:
        if status_dir is None:
            return None
        path = status_dir / f"{url.rstrip('/').rsplit('/', 1)[-1]}.json"
        return read_json(path) if path.is_file() else None

    verifier = Verifier(SystemClock().now(), vkey, None, lists)
    if not offline:
        with contextlib.suppress(StoreError):
            verifier = app.bank().credential_verifier(vkey, lists)
    verifier = replace(verifier, witnesses=witnesses)
    report = verifier.verify(document)
    lines = report_lines(report.checks, verbose)
    lines.append("VALID" if report.ok else "NOT VALID")
    emit(as_json, report.to_dict(), "\n".join(lines))
    if not report.ok:
        raise SystemExit(1)


def report_lines(checks: list[Check], verbose: bool) -> list[str]:
    """The text of a verification: one line a check, a transcript's held credentials summed up.

    The document's own checks come one a line. For the credentials a transcript
    holds, each check name gets its failures one a line, its skips one a line per
    reason (with how many credentials it covers), and how many credentials passed;
    ``verbose`` lists every check of every credential instead.
    """

    def line(outcome: str, name: str, detail: str) -> str:
        return f"{outcome.upper():4} {name}: {detail}"

    held = [c for c in checks if c.held is not None]
    lines = [line(c.outcome, c.name, c.detail) for c in checks if verbose or c.held is None]
    if verbose or not held:
        return lines
    count = len({c.held for c in held})
    for name in dict.fromkeys(c.name for c in held):
        these = [c for c in held if c.name == name]
        lines += [line("fail", name, c.detail) for c in these if c.outcome == "fail"]
        skips = Counter(c.reason for c in these if c.outcome == "skip")
        lines += [
            line("skip", name, f"{n} of the {count} credentials held: {why}")
            for why, n in skips.items()
        ]
        passed = sum(c.outcome == "pass" for c in these)
        if passed:
            lines.append(line("pass", name, f"{passed} of the {count} credentials held"))
    return lines
