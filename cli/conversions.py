"""``creditbank conversions``: the conversions the bank no longer vouches for, and revoking one."""

from __future__ import annotations

from pathlib import Path

import click

from creditbank.transcript import conversion_suspicion_text

from .context import AppContext, pass_app, signing_key
from .output import emit, json_option
from .params import FILE, SEQ


@click.group()
def conversions() -> None:
    """Granted exemptions and credit conversions (免修, 学分转换) after the fact."""


@conversions.command()
@click.argument("seq", type=SEQ)
@click.option("--reason", required=True)
@click.option(
    "--key", type=FILE, help="The authority key file (default: the one beside the database)."
)
@json_option
@pass_app
def revoke(app: AppContext, seq: int, reason: str, key: Path | None, as_json: bool) -> None:
    """Revoke the conversion granted at SEQ; it stays in the log, marked revoked.

    For a suspect or flagged conversion whose inputs still stand: revoke it, then
    run convert again to grant its requirement anew under a sound key. For example:

        creditbank conversions revoke 97 --reason "granted under a leaked authority key"
    """
    record = app.bank().revoke_conversion(seq, reason, signing_key(app, key))
    assert record.account is not None
    emit(
        as_json,
        {"seq": record.seq, "revoked": seq, "account": record.account.account},
        f"seq {record.seq}: conversion {seq} revoked",
    )


@conversions.command("suspect")
@json_option
@pass_app
def suspect(app: AppContext, as_json: bool) -> None:
    """List standing conversions the bank no longer vouches for, bank-wide.

    Those granted under an authority key after the compromise its revocation
    states, and those drawn on outcomes whose key was compromised. None counts
    toward a diploma, none is exported, and their status bits are set. For example,
    after revoking a key:

        creditbank conversions suspect
    """
    found = app.bank().suspect_conversions()
    lines = [
        f"{c['seq']:>8}  {c['account']}  {c['programme']} {c['requirement']}  "
        f"{c['credits']} credits: {conversion_suspicion_text(c['suspect'])}"
        for c in found
    ]
    emit(as_json, {"conversions": found}, "\n".join(lines) or "no suspect conversions")
