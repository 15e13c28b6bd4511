"""``creditbank outcomes``: issue, revoke and list learning outcomes (学习成果)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.ledger.record import Record
from creditbank.projector import AUTHORITY

from .context import AppContext, pass_app, signing_key
from .output import emit, emit_page, json_option, page_options
from .params import FILE, SEQ, UtcDateTime, parse_fields


@click.group()
def outcomes() -> None:
    """Learning outcomes: course credits, diplomas, certificates, awards and more."""


@outcomes.command()
@click.argument("kind", type=click.Choice(OUTCOME_KINDS))
@click.argument("account")
@click.option("-f", "--field", "pairs", multiple=True, help="A field as name=value (repeat).")
@click.option("--data", help="Fields as a JSON object, or @FILE holding one.")
@click.option("--key", type=FILE, required=True, help="The issuer's key file.")
@json_option
@pass_app
def issue(
    app: AppContext,
    kind: str,
    account: str,
    pairs: tuple[str, ...],
    data: str | None,
    key: Path,
    as_json: bool,
) -> None:
    r"""Issue a KIND outcome into ACCOUNT, signed with the issuer's key.

    For example:

        creditbank outcomes issue course acct-1234 --key school.pem \
          -f course_code=CS101 -f course_title=程序设计基础 -f programme=P510201 \
          -f credits=4.5 -f grade=A -f term=2026-2027-1
    """
    record = app.bank().issue(kind, account, parse_fields(pairs, data), signing_key(app, key))
    emit(
        as_json,
        {"seq": record.seq, "account": account, "kind": kind},
        f"seq {record.seq}: {kind} issued to {account}",
    )


@outcomes.command()
@click.argument("seq", type=SEQ)
@click.option("--reason", required=True)
@click.option("--key", type=FILE, help="The issuer's key file (default: authority key).")
@click.option(
    "--cascade",
    "and_cascade",
    is_flag=True,
    help="Also revoke the conversions derived from it (signed with the authority key).",
)
@click.option(
    "--authority-key",
    type=FILE,
    help="With --cascade: the authority key file (default: --key if it is the authority's, "
    "else the one beside the database).",
)
@json_option
@pass_app
def revoke(
    app: AppContext,
    seq: int,
    reason: str,
    key: Path | None,
    and_cascade: bool,
    authority_key: Path | None,
    as_json: bool,
) -> None:
    """Revoke the outcome recorded at SEQ; it stays in the log, marked revoked.

    Conversions derived from it are flagged; --cascade revokes them too, in the
    same transaction.

    For example:

        creditbank outcomes revoke 42 --reason "details in error" --key org-iot.pem --cascade
    """
    bank = app.bank()
    signer = signing_key(app, key)
    cascaded: list[Record] = []
    if not and_cascade:
        record = bank.revoke_outcome(seq, reason, signer)
    else:
        found = bank.key(signer.key_id) if authority_key is None and key is not None else None
        authority = (
            signer
            if found is not None and found["issuer"] == AUTHORITY
            else signing_key(app, authority_key)
        )
        record, cascaded = bank.revoke_with_cascade(seq, reason, signer, authority)
    revoked = [r.payload["conversion"] for r in cascaded]
    emit(
        as_json,
        {"seq": record.seq, "revoked": seq, "revoked_conversions": revoked},
        f"seq {record.seq}: outcome {seq} revoked"
        + (f"; {len(revoked)} derived conversion(s) revoked" if and_cascade else ""),
    )


@outcomes.command()
@click.argument("seq", type=SEQ)
@click.option(
    "--key",
    type=FILE,
    required=True,
    help="A valid key file of the outcome's issuer: signs it anew.",
)
@click.option(
    "--authority-key",
    type=FILE,
    help="Signs the revocations of the outcome and of the conversions drawn on it "
    "(default: the one beside the db).",
)
@json_option
@pass_app
def reissue(
    app: AppContext, seq: int, key: Path, authority_key: Path | None, as_json: bool
) -> None:
    """Issue again, with the issuer's new key, the outcome at SEQ signed under a compromised key.

    In one transaction the outcome is revoked (unless it was already), with the
    conversions drawn on it, and issued anew with the same fields and accreditation,
    judged as it stood when the outcome was first issued (see outcomes suspect); run
    convert again afterwards. For example:

        creditbank outcomes reissue 25 --key org-iot-new.pem
    """
    bank = app.bank()
    signer = signing_key(app, key)
    revocation, cascaded, again = bank.reissue(seq, signer, signing_key(app, authority_key))
    revoked = [r.payload["conversion"] for r in cascaded]
    emit(
        as_json,
        {
            "seq": again.seq,
            "revoked": seq,
            "revocation": None if revocation is None else revocation.seq,
            "revoked_conversions": revoked,
        },
        f"seq {again.seq}: outcome {seq} issued again ("
        + ("revoked before" if revocation is None else f"revoked at seq {revocation.seq}")
        + (
            f"; {len(revoked)} derived conversion(s) revoked: run convert again)"
            if revoked
            else ")"
        ),
    )


@outcomes.command("suspect")
@click.option("--issuer", help="Of this issuer only, e.g. org-iot.")
@json_option
@pass_app
def suspect(app: AppContext, issuer: str | None, as_json: bool) -> None:
    """List standing outcomes a key signed after the compromise its revocation states.

    The bank no longer vouches for them: it exports none, counts none toward a
    conversion or diploma, and sets their status bits. Revoke each, or issue it
    again with a valid key. For example, after revoking a key of org-iot:

        creditbank outcomes suspect --issuer org-iot
    """
    found = app.bank().suspect_outcomes(issuer)
    lines = [
        f"{o['seq']:>8}  {o['kind']:<11} {o['issuer']}  {o['account']}  signed {o['issued']}"
        f" by key {o['signer']}"
        for o in found
    ]
    emit(as_json, {"outcomes": found}, "\n".join(lines) or "no suspect outcomes")


@outcomes.command("list")
@click.option("--account", help="Issued to this account.")
@click.option("--issuer", help="Issued by this issuer, e.g. sch-szpt.")
@click.option("--kind", type=click.Choice(OUTCOME_KINDS), help="Of this kind.")
@click.option("--since", type=UtcDateTime(), help="Issued at or after this time.")
@click.option("--until", type=UtcDateTime(), help="Issued before this time.")
@click.option("--certificate", help="A certificate code, e.g. IOT-INST.")
@click.option("--programme", help="A programme code, e.g. P510201.")
@page_options(SEQ, "outcomes")
@json_option
@pass_app
def list_(
    app: AppContext,
    account: str | None,
    issuer: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    certificate: str | None,
    programme: str | None,
    after: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List outcomes by account, issuer, kind, issue time, certificate or programme.

    In log order, a page at a time. For example, the 2026 IoT certificates:

        creditbank outcomes list --certificate IOT-INST --since 2026-01-01T00:00:00Z
    """
    found = app.bank().outcomes(
        account, issuer, kind, since, until, certificate, programme, after, limit + 1
    )
    emit_page(
        as_json,
        "outcomes",
        found,
        limit,
        "seq",
        lambda o: (
            f"#{o['seq']:<6} {o['account']:<22} {o['kind']:<12} {o['issuer']:<14} {o['status']}"
        ),
    )


@outcomes.command()
@click.argument("seq", type=SEQ)
@click.option("--key", type=FILE, help="Registrar (authority) key file.")
@json_option
@pass_app
def cascade(app: AppContext, seq: int, key: Path | None, as_json: bool) -> None:
    """Revoke every conversion derived from the revoked outcome at SEQ (registrar).

    For example:

        creditbank outcomes cascade 42
    """
    records = app.bank().cascade(seq, signing_key(app, key))
    revoked = [r.payload["conversion"] for r in records]
    emit(
        as_json,
        {"outcome": seq, "revoked_conversions": revoked, "seqs": [r.seq for r in records]},
        f"revoked {len(revoked)} conversion(s) derived from outcome {seq}"
        + (f": {', '.join(map(str, revoked))}" if revoked else ""),
    )
