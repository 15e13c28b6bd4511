"""``creditbank witness``: keep auditors' cosignatures of the log's checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from creditbank.clock import format_time
from creditbank.ledger.checkpoint import open_checkpoint
from creditbank.ledger.witnesses import Witnessed

from .context import AppContext, pass_app
from .output import emit, json_option, read_note, write_file
from .params import FILE, OUTPUT_FILE


@click.group()
def witness() -> None:
    """Witnesses' cosignatures of the log's checkpoints: keep, list, hand out."""


def _view(found: Witnessed) -> dict[str, object]:
    return {
        "size": found.size,
        "witness": found.witness,
        "vkey": found.vkey,
        "signed_at": format_time(found.signed_at),
    }


@witness.command()
@click.argument("file", type=FILE)
@click.option(
    "--witness",
    "cosigner",
    required=True,
    metavar="VKEY",
    help="The witness's cosigner vkey (type 0x04, as audit --auditor-key prints it).",
)
@json_option
@pass_app
def add(app: AppContext, file: Path, cosigner: str, as_json: bool) -> None:
    """Keep the cosignature by --witness on FILE, a checkpoint as the witness returned it.

    FILE is what `audit --cosigned` wrote: one of this log's checkpoints with the
    auditor's cosignature line. A line older than the one kept for that witness and
    checkpoint is not kept.

    For example:

        creditbank witness add cosigned.note --witness "$(cat auditor.vkey)"
    """
    found = app.bank().add_cosignature(read_note(file), cosigner)
    emit(
        as_json,
        _view(found),
        f"kept: checkpoint of {found.size} records witnessed by {found.witness} "
        f"at {format_time(found.signed_at)}",
    )


@witness.command(name="list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the cosignatures kept: checkpoint size, witness, time, vkey.

    For example:

        creditbank witness list --json
    """
    kept = app.bank().cosignatures()
    lines = [f"{c.size}\t{c.witness}\t{format_time(c.signed_at)}\t{c.vkey}" for c in kept] or [
        "no witness cosignatures kept"
    ]
    emit(as_json, {"cosignatures": [_view(c) for c in kept]}, "\n".join(lines))


@witness.command()
@click.option("--size", type=click.IntRange(min=1), help="The checkpoint of this size.")
@click.option("-o", "--output", type=OUTPUT_FILE, help="Write it here instead of stdout.")
@json_option
@pass_app
def show(app: AppContext, size: int | None, output: Path | None, as_json: bool) -> None:
    """Print the latest witnessed checkpoint with every kept cosignature on it.

    Hand it to `proof --to`, `consistency-proof --to` or `export ... --witnessed`,
    so what a learner gets can be checked offline with `--witness`.

    For example:

        creditbank witness show -o witnessed.note
        creditbank proof 42 --to witnessed.note -o record-42.proof
    """
    bank = app.bank()
    witnessed = bank.witnessed_note(size)
    note = witnessed.note
    if output is not None:
        write_file(output, note, "--output")
    if as_json:
        held = open_checkpoint(note, bank.ledger.origin, bank.ledger.log_key)
        document = {
            "size": held.size,
            "root": held.root.hex(),
            "note": note,
            "file": None if output is None else str(output),
            "cosignatures": [_view(c) for c in witnessed.lines],
        }
        emit(True, document)
    elif output is None:
        click.echo(note, nl=False)
