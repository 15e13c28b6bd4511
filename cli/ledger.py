"""Ledger commands: init, vkey, checkpoint, proof, verify-proof, verify, log show, db upgrade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from creditbank.bank import CreditBank
from creditbank.clock import format_time
from creditbank.errors import CreditBankError, KeyFileError, ProofError
from creditbank.ledger.checkpoint import open_checkpoint
from creditbank.ledger.cosignature import witnessed
from creditbank.ledger.keys import SIGNATURE_SIZE, SigningKey
from creditbank.ledger.proof_file import TlogProof, verify_proof_file
from creditbank.store.engine import open_engine
from creditbank.store.schema import current_revision, upgrade

from .context import AppContext, pass_app
from .output import (
    BadInputError,
    CommandError,
    emit,
    json_option,
    progress,
    read_note,
    shown,
    write_file,
)
from .params import FILE, OUTPUT_FILE, SEQ, WITNESS, proof_writing


def register(group: click.Group) -> None:
    """Add the ledger commands to ``group``."""
    for command in (init, info, vkey, checkpoint, proof, verify_proof, verify, log, db):
        group.add_command(command)


def create_bank(
    app: AppContext,
    origin: str,
    key_out: Path | None,
    log_key_out: Path | None,
    passphrase: bytes | None = None,
) -> tuple[CreditBank, SigningKey]:
    """Create the ledger with fresh authority and log keys written to encrypted files.

    Returns the bank and the authority key. If creating the ledger fails, the key
    files just written are removed again.

    Raises:
        KeyFileError: a key file exists already or cannot be written.
        LedgerStateError: the database already holds a ledger.
    """
    authority_path = key_out or app.key_paths.authority
    log_path = log_key_out or app.key_paths.log
    for path in (authority_path, log_path):
        if path.exists():
            raise KeyFileError(f"{path}: key file already exists; refusing to overwrite")
    passphrase = passphrase or app.passphrase("new keys", confirm=True)
    authority, log_key = SigningKey.generate(), SigningKey.generate()
    authority.save(authority_path, passphrase)
    try:
        log_key.save(log_path, passphrase)
        bank = CreditBank.create(app.db, origin, authority, log_key)
    except CreditBankError:
        authority_path.unlink(missing_ok=True)
        if log_path.exists() and SigningKey.load(log_path, passphrase).key_id == log_key.key_id:
            log_path.unlink()
        raise
    app._bank = bank
    return bank, authority


@click.command()
@click.option(
    "--origin", required=True, help="The log's name, e.g. creditbank.example.edu.cn/city."
)
@click.option("--key-out", type=OUTPUT_FILE, help="Where to write the authority key.")
@click.option("--log-key-out", type=OUTPUT_FILE, help="Where to write the log (checkpoint) key.")
@json_option
@pass_app
def init(
    app: AppContext, origin: str, key_out: Path | None, log_key_out: Path | None, as_json: bool
) -> None:
    """Create the ledger, its log key, authority key and genesis record; print the vkey.

    Both keys are written as passphrase-encrypted PKCS#8 PEM files, by default
    beside the SQLite database. Example:

        creditbank init --origin creditbank.example.edu.cn/demo
    """
    bank, authority = create_bank(app, origin, key_out, log_key_out)
    paths = app.key_paths
    document = {
        "origin": origin,
        "vkey": bank.ledger.vkey(),
        "authority_key": authority.key_id,
        "authority_key_file": str(key_out or paths.authority),
        "log_key_file": str(log_key_out or paths.log),
    }
    emit(as_json, document, document["vkey"])


@click.command()
@json_option
@pass_app
def info(app: AppContext, as_json: bool) -> None:
    """Show the bank at a glance: its log, latest checkpoint, accounts, issuers, outcomes.

    Counts come from the state tables (accounts by status, issuers by kind, outcomes
    by kind and status, conversions by status); 'creditbank verify' checks the log
    itself. For example:

        creditbank info --json
    """
    summary = app.bank().summary()
    emit(as_json, summary, _summary_text(summary))


def _summary_text(summary: dict[str, Any]) -> str:
    checkpoint = summary["checkpoint"]
    signed = (
        "no checkpoint signed yet"
        if checkpoint is None
        else f"latest checkpoint at size {checkpoint['size']}, signed {checkpoint['created']}"
    )

    def listed(counts: dict[str, int]) -> str:
        total = sum(counts.values())
        return f"{total}" + (
            f" ({', '.join(f'{k} {n}' for k, n in counts.items())})" if counts else ""
        )

    witnessed = summary["witnessed"]
    witnesses = (
        "no witness cosignature kept"
        if witnessed is None
        else f"checkpoint at size {witnessed['size']} witnessed by "
        + ", ".join(witnessed["witnesses"])
    )
    outcomes = summary["outcomes"]
    by_kind = {kind: sum(statuses.values()) for kind, statuses in outcomes.items()}
    revoked = sum(statuses.get("revoked", 0) for statuses in outcomes.values())
    return "\n".join(
        [
            f"ledger {summary['origin']} (schema {summary['schema']})",
            f"vkey {summary['vkey']}",
            f"records {summary['records']}; {signed}; "
            f"{summary['records_after_checkpoint']} records after it",
            witnesses,
            f"accounts {listed(summary['accounts'])}",
            f"issuers {listed(summary['issuers'])}",
            f"outcomes {listed(by_kind)}; {revoked} revoked",
            f"conversions {listed(summary['conversions'])}",
        ]
    )


@click.command()
@json_option
@pass_app
def vkey(app: AppContext, as_json: bool) -> None:
    """Print the log's C2SP verifier key (give it to auditors and verifiers).

    For example:

        creditbank vkey > log.vkey
    """
    value = app.bank().ledger.vkey()
    emit(as_json, {"vkey": value}, value)


@click.command()
@click.option("--log-key", type=FILE, help="The log key file (default: beside the database).")
@json_option
@pass_app
def checkpoint(app: AppContext, log_key: Path | None, as_json: bool) -> None:
    """Sign and print the current checkpoint (a C2SP signed note).

    Refuses if the log is not consistent with the latest checkpoint.

    For example:

        creditbank checkpoint > checkpoint.note
    """
    bank = app.bank()
    key = app.load_key(log_key, app.key_paths.log, "log key")
    row = bank.checkpoint(key)
    signed_at = open_checkpoint(row.note, bank.ledger.origin, key.public).signed_at
    document = {
        "size": row.size,
        "root": row.root.hex(),
        "signed_at": None if signed_at is None else format_time(signed_at),
        "note": row.note,
    }
    emit(as_json, document, row.note.rstrip("\n"))


@click.command()
@click.argument("seq", type=SEQ)
@proof_writing
@json_option
@pass_app
def proof(
    app: AppContext, seq: int, output: Path, log_key: Path | None, to: Path | None, as_json: bool
) -> None:
    """Write the C2SP tlog-proof of record SEQ (extra = the record's leaf bytes).

    Uses the latest checkpoint if it covers SEQ, else signs a new one; with --to,
    the checkpoint an auditor cosigned (audit --cosigned), so the proof carries the
    witness's cosignature (verify-proof --witness). Example:

        creditbank proof 42 -o record-42.tlog-proof
        creditbank proof 42 --to witnessed.note -o record-42.tlog-proof
    """
    bank = app.bank()
    key = None
    if to is None and bank.needs_checkpoint_for(seq):
        key = app.load_key(log_key, app.key_paths.log, "log key")
    target = None if to is None else read_note(to)
    write_file(output, bank.proof(seq, key, target).render(), "-o")
    emit(as_json, {"seq": seq, "file": str(output)}, f"wrote {output}")


@click.command("verify-proof")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vkey", "vkey_text", required=True, help="The log's vkey, or a file holding it.")
@WITNESS
@json_option
def verify_proof(file: Path, vkey_text: str, witnesses: tuple[str, ...], as_json: bool) -> None:
    """Check a tlog-proof offline against the log's vkey; no database needed.

    Exit 0 when the record is in the log under the signed checkpoint, 1 if not (or
    if a --witness did not cosign the checkpoint).

    For example:

        creditbank verify-proof r42.tlog-proof --vkey "$(cat log.vkey)"
        creditbank verify-proof r42.tlog-proof --vkey "$(cat log.vkey)" --witness "$(cat w.vkey)"
    """
    vkey_path = Path(vkey_text)
    if "+" not in vkey_text and vkey_path.is_file():
        vkey_text = vkey_path.read_text(encoding="utf-8").strip()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{file}: cannot read the proof file") from e
    try:
        parsed = TlogProof.parse(text)
    except ProofError as e:
        if text.lstrip().startswith("{"):
            hint = f"a credential is checked with 'creditbank credential verify {file}'"
            raise BadInputError(f"{file}: JSON, not a proof file ({hint})") from e
        raise BadInputError(f"{file}: malformed proof file: {e}") from e
    try:
        result = verify_proof_file(text, vkey_text)
        seen = [witnessed(parsed.checkpoint_note, w) for w in witnesses]
    except CreditBankError as e:
        if as_json:
            emit(True, {"ok": False, "reason": str(e)})
            raise SystemExit(1) from e
        raise CommandError(f"{file}: invalid proof: {e}") from e
    signed_at = result.checkpoint.signed_at
    body = result.leaf[:-SIGNATURE_SIZE]
    document = {
        "ok": True,
        "index": result.index,
        "size": result.checkpoint.size,
        "root": result.checkpoint.root.hex(),
        "origin": result.checkpoint.origin,
        "signed_at": None if signed_at is None else format_time(signed_at),
        "witnessed": [{"witness": name, "signed_at": format_time(when)} for name, when in seen],
        "leaf": json.loads(body) if _is_json(body) else None,
    }
    emit(
        as_json,
        document,
        f"OK: record {result.index} is in {result.checkpoint.origin} "
        f"at tree size {result.checkpoint.size}"
        + ("" if signed_at is None else f" (checkpoint signed at {format_time(signed_at)})")
        + "".join(f"\nwitnessed by {name} at {format_time(when)}" for name, when in seen),
    )


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@click.command()
@click.option("--workers", type=click.IntRange(min=1), help="Processes for signature checks.")
@json_option
@pass_app
def verify(app: AppContext, workers: int | None, as_json: bool) -> None:
    """Verify the whole log: links, signatures, account chains, Merkle tree, checkpoints.

    Exit 0 when clean, 1 when problems are found.

    For example:

        creditbank verify --json
    """
    bank = app.bank()
    with progress(bank.ledger.size(), "Verifying", as_json) as advance:
        report = bank.verify(workers, advance)
    if as_json:
        emit(True, report.to_dict())
    else:
        for problem in report.problems:
            click.echo(shown(f"PROBLEM {problem}"))
        state = "OK" if report.ok else f"{len(report.problems) + report.more_problems} problem(s)"
        click.echo(
            f"{state}: {report.records} records, {report.checkpoints} checkpoints, "
            f"root {report.root.hex()}"
        )
    if not report.ok:
        raise SystemExit(1)


@click.group()
def log() -> None:
    """Read records."""


@log.command("show")
@click.argument("seq", type=SEQ, required=False)
@click.option("--tail", type=click.IntRange(min=1), help="Show the last N records.")
@click.option("--account", help="Show this account's chain: the records that name it.")
@json_option
@pass_app
def log_show(
    app: AppContext, seq: int | None, tail: int | None, account: str | None, as_json: bool
) -> None:
    """Show records as decoded JSON: one SEQ, the last N (--tail), or the last 10.

    With --account, the records of that account's chain in its order (all of
    them, or the last N with --tail): its opening, enrolment, every outcome
    issued to it and every conversion made for it.

    For example:

        creditbank log show --tail 5
        creditbank log show --account ACCOUNT --json
    """
    ledger = app.bank().ledger
    if seq is not None and (tail is not None or account is not None):
        raise BadInputError("give SEQ, or --tail and --account, not both")
    if seq is not None:
        records = [ledger.record(seq)]
    elif account is not None:
        chain = ledger.account_records(account)
        records = chain if tail is None else chain[-tail:]
    else:
        size = ledger.size()
        records = list(ledger.records(max(0, size - (tail or 10)), size))
    document = {"records": [r.to_dict() for r in records]}
    if as_json:
        emit(True, document)
    else:
        for r in records:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True))


@click.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
@json_option
@pass_app
def db_upgrade(app: AppContext, as_json: bool) -> None:
    """Create or upgrade the database schema to this version of creditbank.

    For example:

        creditbank --db postgresql+psycopg://creditbank@db.internal/creditbank db upgrade
    """
    engine = open_engine(app.url, must_exist=True)
    upgrade(engine)
    emit(as_json, {"revision": current_revision(engine)}, "schema is current")
    engine.dispose()


@db.command("backup")
@click.argument("target", type=OUTPUT_FILE)
@json_option
@pass_app
def db_backup(app: AppContext, target: Path, as_json: bool) -> None:
    """Copy the SQLite ledger to TARGET, a new file, while the bank goes on working.

    The copy is one snapshot of everything the database holds, the off-log personal
    data included (keep it as safe as the database). Back PostgreSQL up with
    pg_dump. For example, a copy and its verification:

        creditbank db backup backups/creditbank-2026-12-04.db
        creditbank --db sqlite:///backups/creditbank-2026-12-04.db verify
    """
    done = app.bank().backup(target)
    checkpoint = done.checkpoint
    emit(
        as_json,
        {
            "file": str(done.file),
            "records": done.records,
            "checkpoint": None
            if checkpoint is None
            else {"size": checkpoint.size, "root": checkpoint.root.hex()},
        },
        f"backed up {done.records} records to {done.file}"
        + ("" if checkpoint is None else f" (latest checkpoint at size {checkpoint.size})"),
    )
