"""Auditor commands: audit, verify-report, compare-checkpoints, consistency-proof."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from creditbank.audit import (
    AuditReport,
    AuditState,
    compare_checkpoints,
    compare_with_proof,
    held_checkpoint,
    pinned_vkey,
    read_acceptances,
    sign_report,
    verify_report,
)
from creditbank.clock import format_time
from creditbank.documents import read_numbered
from creditbank.errors import CreditBankError
from creditbank.ledger.checkpoint import open_checkpoint
from creditbank.ledger.consistency_file import is_consistency_file
from creditbank.ledger.cosignature import witnessed
from creditbank.ledger.keys import COSIGNATURE_TYPE, SigningKey, VerifyKey, parse_vkey
from creditbank.ledger.log import Ledger

from .context import AppContext, pass_app
from .output import (
    BadInputError,
    CommandError,
    emit,
    json_option,
    progress,
    read_file,
    read_note,
    shown,
    write_file,
)
from .params import FILE, OUTPUT_FILE, WITNESS, proof_writing, public_key


def register(group: click.Group) -> None:
    """Add the auditor commands to ``group``."""
    group.add_command(audit)
    group.add_command(verify_report_command)
    group.add_command(compare_checkpoints_command)
    group.add_command(consistency_proof_command)


@click.command()
@click.option(
    "--since",
    "state",
    type=OUTPUT_FILE,
    metavar="STATE",
    help="Audit state file: pins the log; the next audit checks only what is new.",
)
@click.option("--vkey", metavar="VKEY", help="Pin the log's verifier key on a first audit.")
@click.option("--report", type=OUTPUT_FILE, help="Write a signed Markdown report here.")
@click.option("--auditor-key", type=FILE, help="The auditor's own Ed25519 key (for --report).")
@click.option(
    "--auditor-name",
    default="auditor.creditbank.example",
    show_default=True,
    help="The name the report is signed under.",
)
@click.option(
    "--cosigned",
    type=OUTPUT_FILE,
    help="After a clean audit with --since, write the checkpoint it pinned, cosigned as a "
    "witness by --auditor-key (C2SP cosignature/v1).",
)
@click.option(
    "--accepted",
    type=FILE,
    help="TOML or JSON file of findings the auditor accepted: [[accept]] kind, seq, reason.",
)
@click.option(
    "--status-lists",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the status lists the bank published (N.json): each bit is held to the log.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Processes for signature checks.")
@json_option
@pass_app
def audit(
    app: AppContext,
    state: Path | None,
    vkey: str | None,
    report: Path | None,
    auditor_key: Path | None,
    auditor_name: str,
    cosigned: Path | None,
    accepted: Path | None,
    status_lists: Path | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Audit the bank: integrity, authority, decisions, projections and time.

    Checks every link, signature and checkpoint; that each record's key and the
    issuer's accreditation were valid when it was written and quotas held; that
    every conversion is reproduced by its rule; that the state tables equal a
    replay of the log. With --since STATE, a first run pins the log and later
    runs prove the log only grew, then check only the new records. Exit 0 clean,
    1 problems found, 2 could not run; a record signed under a compromised key and
    revoked since is listed as resolved in the log and leaves the audit clean. For
    example:

        creditbank audit --since audit-state.json --report audit.md --auditor-key auditor.pem

    With --cosigned FILE, the auditor also witnesses the checkpoint a clean audit
    pinned: learners check it with compare-checkpoints --witness. For example:

        creditbank audit --since state.json --auditor-key auditor.pem --cosigned witnessed.note

    With --accepted FILE, the findings it lists (each a kind, a seq and the
    reason the auditor accepts it) are reported as accepted and leave the audit
    clean: for a finding the log cannot undo, such as an account record signed
    under a key later found compromised. For example, accepted.toml:

        [[accept]]
        kind = "key_compromised"
        seq = 14
        reason = "the authority's own rotation, confirmed with the registrar"

    With --status-lists DIR, the lists the bank published are checked too: each
    must be signed by the authority, and no bit may show a standing record revoked
    or hide a revocation the log holds from before the list's validFrom. For example:

        creditbank audit --status-lists public/status
    """
    if report is not None and auditor_key is None:
        raise BadInputError("--report needs --auditor-key: the report is signed by the auditor")
    if cosigned is not None and (state is None or auditor_key is None):
        raise BadInputError(
            "--cosigned needs --since and --auditor-key: a witness cosigns only the "
            "checkpoint a clean audit pinned, with its own key"
        )
    acceptances = [] if accepted is None else read_acceptances(accepted)
    published = None if status_lists is None else read_numbered(status_lists)
    try:
        signer = (
            None if auditor_key is None else app.load_key(auditor_key, auditor_key, "auditor key")
        )
        bank = app.bank()
        pinned = AuditState.load(state).size if state is not None and state.exists() else 0
        with progress(bank.ledger.size() - pinned, "Auditing", as_json) as advance:
            result = bank.audit(state, vkey, workers, advance, acceptances, published)
        if report is not None and signer is not None:
            write_file(report, sign_report(result, auditor_name, signer), "--report")
        written = None
        if cosigned is not None and signer is not None:
            written = _write_witnessed(result, auditor_name, signer, cosigned)
    except CreditBankError as e:
        raise BadInputError(f"audit could not run: {e}") from e
    if as_json:
        emit(True, {**result.to_dict(), **({} if cosigned is None else {"cosigned": written})})
    else:
        click.echo(shown(_summary(result)))
        if cosigned is not None:
            click.echo(
                f"cosigned checkpoint size {written['size']} written to {cosigned} "
                f"(witness vkey {written['cosigner_vkey']})"
                if written is not None
                else "no checkpoint cosigned: the audit did not pin one clean"
            )
    if not result.ok:
        raise SystemExit(1)


def _write_witnessed(
    result: AuditReport, name: str, key: SigningKey, output: Path
) -> dict[str, Any] | None:
    """Write the pinned checkpoint ``key`` cosigned (:meth:`AuditReport.witness`); describe it."""
    note = result.witness(name, key)
    if note is None or result.checkpoint is None:
        return None
    write_file(output, note, "--cosigned")
    return {
        "file": str(output),
        "size": result.checkpoint["size"],
        "cosigner_vkey": key.public.vkey(name, COSIGNATURE_TYPE),
    }


def _summary(result: AuditReport) -> str:
    lines = [f"PROBLEM {p}" for p in result.problems]
    if result.more_problems:
        lines.append(f"... and {result.more_problems} more")
    lines += [f"RESOLVED {p}" for p in result.resolved]
    if result.more_resolved:
        lines.append(f"... and {result.more_resolved} more resolved")
    lines += [f"ACCEPTED {p} (accepted: {p.extra['accepted']})" for p in result.accepted]
    verdict = "OK" if result.ok else f"{len(result.problems) + result.more_problems} problem(s)"
    aside = []
    if result.resolved:
        aside.append(f"{len(result.resolved) + result.more_resolved} resolved in the log")
    if result.accepted:
        aside.append(f"{len(result.accepted)} accepted by the auditor")
    if aside:
        verdict += f" ({', '.join(aside)})"
    scope = (
        f"{result.records} records"
        if result.mode == "full"
        else f"{result.records - result.start} new records of {result.records}"
    )
    end = (
        "no checkpoint"
        if result.checkpoint is None
        else f"checkpoint size {result.checkpoint['size']}"
    )
    lines.append(f"{verdict}: {result.mode} audit of {scope}, ending at {end}")
    lines += [f"note: {n}" for n in result.notes]
    if result.state_saved:
        lines.append("audit state saved")
    return "\n".join(lines)


@click.command("verify-report")
@click.argument("file", type=FILE)
@click.option(
    "--vkey",
    required=True,
    metavar="VKEY|DID|FILE",
    help="The auditor's verifier key, or their did:key (or the .pub file holding it).",
)
@json_option
def verify_report_command(file: Path, vkey: str, as_json: bool) -> None:
    """Check an audit report's signature with the auditor's key (offline).

    Exit 0 when the report is the one the auditor signed, 1 when not. For example,
    with the verifier key the report names, or with the auditor's own .pub file:

        creditbank verify-report audit.md --vkey "auditor.creditbank.example+1a2b3c4d+AR..."
        creditbank verify-report audit.md --vkey auditor.pem.pub
    """
    text = read_file(file)
    key = _auditor_key(vkey)
    try:
        statement = verify_report(text, key)
    except CreditBankError as e:
        raise CommandError(f"report not verified: {e}") from e
    lines = statement.rstrip("\n").split("\n")
    emit(
        as_json,
        {"ok": True, "origin": lines[1], "checkpoint": lines[2], "digest": lines[3]},
        f"OK: report on {lines[1]} signed by the auditor ({lines[2]})",
    )


def _auditor_key(value: str) -> str | VerifyKey:
    """``--vkey`` of verify-report: a C2SP verifier key, a did:key, or a file holding one.

    Raises:
        BadInputError: none of these, or an unreadable file.
    """
    try:
        if value.startswith("did:key:") or ("+" not in value and Path(value).is_file()):
            return public_key(value)
        parse_vkey(value)
    except CreditBankError as e:
        raise BadInputError(f"--vkey: {e}") from e
    return value


@click.command("consistency-proof")
@click.argument("old")
@proof_writing
@json_option
@pass_app
def consistency_proof_command(
    app: AppContext, old: str, output: Path, log_key: Path | None, to: Path | None, as_json: bool
) -> None:
    """Write the proof that the latest checkpoint extends an older one.

    OLD is the file holding the older signed checkpoint (a checkpoint, a proof
    file, an exported credential or transcript, an audit state) or the size it
    covers. The file is
    in the body format of C2SP tlog-witness add-checkpoint: its holder checks it
    with the log's vkey alone (compare-checkpoints). Signs a new checkpoint if the
    latest covers fewer records. For example:

        creditbank consistency-proof learner.checkpoint -o since-learner.proof
        creditbank consistency-proof learner.checkpoint --to witnessed.note -o since.proof
    """
    bank = app.bank()
    size = _old_size(bank.ledger, old)
    target = None if to is None else read_note(to)
    key = None
    if target is None and size <= bank.ledger.size() and bank.needs_checkpoint_for(size - 1):
        key = app.load_key(log_key, app.key_paths.log, "log key")
    proof = bank.consistency(size, key, target)
    write_file(output, proof.render(), "-o")
    document = {"old": size, "size": proof.checkpoint.size, "file": str(output)}
    emit(as_json, document, f"wrote {output}")


def _old_size(ledger: Ledger, old: str) -> int:
    """The size ``old`` names: a decimal number, or a file holding a signed checkpoint."""
    if old.isdigit():
        return int(old)
    path = Path(old)
    if not path.is_file():
        raise BadInputError(f"OLD: {old!r} is neither a size nor a file holding a checkpoint")
    note = held_checkpoint(read_file(path), old)
    return open_checkpoint(note, ledger.origin, ledger.log_key).size


@click.command("compare-checkpoints")
@click.argument("first", type=FILE)
@click.argument("second", type=FILE)
@click.option(
    "--vkey",
    metavar="VKEY",
    help="The log's verifier key as pinned (default: an audit state's, else the db's).",
)
@WITNESS
@json_option
@pass_app
def compare_checkpoints_command(
    app: AppContext,
    first: Path,
    second: Path,
    vkey: str | None,
    witnesses: tuple[str, ...],
    as_json: bool,
) -> None:
    """Prove two signed checkpoints are views of one log, or print the fork's evidence.

    FIRST and SECOND are files holding signed checkpoints (e.g. one a learner
    holds, one the auditor holds): a checkpoint, a proof file (creditbank proof)
    or an exported credential or transcript, whose ledger proof ends in one, or an
    auditor's audit state (the checkpoint it pins, checked with the vkey it pins
    unless --vkey says otherwise). One of them may be a consistency proof
    (creditbank consistency-proof), which holds the newer checkpoint: with a vkey,
    that needs no database. Exit 0 consistent, 1 split view. For example:

        creditbank compare-checkpoints learner.checkpoint auditor.checkpoint
        creditbank compare-checkpoints credential-42.json audit-state.json
        creditbank compare-checkpoints learner.checkpoint since.proof --vkey "$(cat log.vkey)"

    With --witness, the newer checkpoint must also carry a valid cosignature by
    each witness named (an auditor's, from audit --cosigned); one missing is
    refused (exit 1).
    """
    texts = {path: read_file(path) for path in (first, second)}
    pinned = [v for v in map(pinned_vkey, texts.values()) if v is not None]
    vkey = vkey or next(iter(pinned), None)
    proofs = [path for path, text in texts.items() if is_consistency_file(text)]
    if len(proofs) > 1:
        raise BadInputError("give one held checkpoint and one consistency proof, not two proofs")
    if proofs:
        (held,) = (path for path in (first, second) if path != proofs[0])
        note = held_checkpoint(texts[held], str(held))
        result = compare_with_proof(note, texts[proofs[0]], vkey or app.bank().ledger.vkey())
    else:
        first_note, second_note = (held_checkpoint(texts[p], str(p)) for p in (first, second))
        result = compare_checkpoints(app.bank().ledger, first_note, second_note, vkey)
    seen = [witnessed(result.notes[1], w) for w in witnesses] if result.consistent else []
    if as_json:
        found = [{"witness": name, "signed_at": format_time(when)} for name, when in seen]
        emit(True, {**result.to_dict(), "witnessed": found})
    elif result.consistent:
        click.echo(shown(f"CONSISTENT: {result.reason}"))
        for name, when in seen:
            click.echo(shown(f"witnessed by {name} at {format_time(when)}"))
    else:
        click.echo(shown(f"SPLIT VIEW: {result.reason}\n\nEvidence (both signed by the log key):"))
        for note in result.notes:
            click.echo(shown(f"\n{note.rstrip()}"))
    if not result.consistent:
        raise SystemExit(1)
