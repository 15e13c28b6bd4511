"""Query and trace (可查询、可追溯): ``transcript`` and ``trace``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from creditbank.transcript import (
    conversion_suspicion_text,
    render_html,
    shown_status,
    suspect_notes,
)

from .context import AppContext, pass_app
from .output import emit, json_option, write_file
from .params import OUTPUT_FILE, SEQ


def register(group: click.Group) -> None:
    """Add the query commands to ``group``."""
    group.add_command(transcript)
    group.add_command(trace)


@click.command()
@click.argument("account")
@click.option(
    "--html",
    "html_file",
    type=OUTPUT_FILE,
    help="Also write a printable HTML page here.",
)
@json_option
@pass_app
def transcript(app: AppContext, account: str, html_file: Path | None, as_json: bool) -> None:
    """Show an account's transcript: outcomes, credits, exemptions, conversions, revocations.

    It names the checkpoint it was produced at, so every line can be proven with
    `creditbank proof SEQ`. Example:

        creditbank transcript acct-0123456789abcdef --html transcript.html
    """
    document = app.bank().transcript(account)
    if html_file is not None:
        write_file(html_file, render_html(document), "--html")
    emit(as_json, document, _table(document))


_GRANTED = {"course_exemption": "exemption", "credit_conversion": "conversion"}
"""How the transcript's kind column names a conversion record's rule kind."""


def _table(document: dict[str, Any]) -> str:
    lines = [
        f"account {document['account']} ({document['status']}), programme "
        f"{document['programme'] or '-'} at {document['school'] or '-'}",
        "",
        f"{'seq':>6}  {'kind':<11} {'credits':>7}  {'grade':<5} {'status':<8} title",
    ]
    for o in document["outcomes"]:
        lines.append(
            f"{o['seq']:>6}  {o['kind']:<11} {o['credits'] or '':>7}  {o['grade'] or '':<5} "
            f"{shown_status(o):<8} {o['title']} ({o['issuer']}, {o['achieved']})"
        )
    for c in document["conversions"]:
        lines.append(
            f"{c['seq']:>6}  {_GRANTED.get(c['kind'], c['kind']):<11} {c['credits']:>7}  "
            f"{'':<5} {shown_status(c):<8} "
            f"{c['title']} by rule {c['rule']} from {', '.join(map(str, c['from']))}"
        )
    lines += [f"\n{note}" for note in suspect_notes(document)]
    for p in document["programmes"]:
        lines.append(
            f"\n{p['programme']} v{p['version']}: earned {p['earned']} + exempted {p['exempted']}"
            f" + converted {p['converted']} of {p['required']} credits"
            f"{'; eligible to graduate' if p['eligible'] else ''}"
        )
    checkpoint = document["checkpoint"]
    lines.append(
        "\nno signed checkpoint yet"
        if checkpoint is None
        else f"\nproduced at checkpoint {checkpoint['size']} of {checkpoint['origin']} "
        f"(root {checkpoint['root'][:16]}…)"
    )
    return "\n".join(lines)


@click.command()
@click.argument("seq", type=SEQ)
@json_option
@pass_app
def trace(app: AppContext, seq: int, as_json: bool) -> None:
    """Show the provenance of record SEQ: issuer, key, accreditation, derivations, proof.

    An exported record also shows its status list entry and the record that logged it.

    For example:

        creditbank trace 42 --json
    """
    document = app.bank().trace(seq)
    signer = document["signer"]
    lines = [
        f"record {seq}: {document['kind']} at {document['time']}"
        + (f" in account {document['account']}" if document["account"] else ""),
        f"signed by {signer['issuer'] or 'the log'} with key {signer['key']}"
        + (f" ({signer['key_state']})" if signer["key_state"] else ""),
    ]
    if "accreditation" in document:
        a = document["accreditation"]
        lines.append(
            f"under accreditation {a['accreditation']} ({a['status_then']} at {a['judged_at']}, "
            f"{a['status_now']} now; valid {a['valid']})"
        )
    if "reissue_of" in document:
        lines.append(
            f"issues again record {document['reissue_of']}, signed under a compromised key"
        )
    if "reissued_as" in document:
        lines.append(f"issued again as record {document['reissued_as']}")
    if document.get("converted_from"):
        lines.append(
            f"converted from records {', '.join(map(str, document['converted_from']))} "
            f"by rule {document['rule']}"
        )
    for c in document.get("converted_into", []):
        lines.append(f"converted into record {c['seq']} by rule {c['rule']} ({shown_status(c)})")
    if "status" in document:
        lines.append(f"status: {shown_status(document)}")
    if document.get("suspect"):
        lines.append(f"suspect: {conversion_suspicion_text(document['suspect'])}")
    if "revoked" in document:
        lines.append(
            f"revoked by record {document['revoked']['seq']}: {document['revoked']['reason']}"
        )
    if "status_entry" in document:
        e = document["status_entry"]
        logged = (
            f"logged by record {e['logged_by']}"
            if e["logged_by"] is not None
            else "not logged yet (creditbank status-list publish)"
        )
        lines.append(f"exported: status list {e['list']}, bit {e['position']} ({logged})")
    lines.append(
        "inclusion proof:\n" + document["inclusion_proof"]
        if document["inclusion_proof"]
        else "no signed checkpoint covers it yet (creditbank checkpoint)"
    )
    emit(as_json, document, "\n".join(lines))
