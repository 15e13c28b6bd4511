"""``creditbank issuers``: register, accredit, suspend, reinstate, withdraw, list, show."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from creditbank.domain.vocab import ISSUER_KINDS, OUTCOME_KINDS
from creditbank.errors import RuleError
from creditbank.ledger.keys import VerifyKey

from .context import AppContext, pass_app, signing_key
from .output import emit, json_option
from .params import FILE, PublicKey, UtcDateTime


@click.group()
def issuers() -> None:
    """Schools and training-evaluation organisations, and their accreditation."""


@issuers.command()
@click.argument("issuer")
@click.option(
    "--kind", type=click.Choice([k for k in ISSUER_KINDS if k != "authority"]), required=True
)
@click.option("--school-level", help="For schools: 中职/高职/本科 (or secondary_vocational ...).")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option("--public-key", type=PublicKey(), required=True, help="did:key or a .pub file.")
@click.option("--key", type=FILE, help="Authority key file.")
@json_option
@pass_app
def register(
    app: AppContext,
    issuer: str,
    kind: str,
    school_level: str | None,
    name_zh: str,
    name_en: str,
    public_key: VerifyKey,
    key: Path | None,
    as_json: bool,
) -> None:
    r"""Register ISSUER with its first key.

    For example:

        creditbank issuers register sch-szpt --kind school --school-level 高职 \
            --name-zh 深圳职业技术大学 --name-en "Shenzhen Polytechnic" \
            --public-key school.pem.pub
    """
    record = app.bank().register_issuer(
        issuer, kind, name_zh, name_en, public_key, signing_key(app, key), school_level
    )
    emit(as_json, {"seq": record.seq, "issuer": issuer}, f"seq {record.seq}: registered {issuer}")


@issuers.command()
@click.argument("issuer")
@click.option("--id", "accreditation", required=True, help="Accreditation id.")
@click.option("--kinds", required=True, help=f"Comma-separated: {','.join(OUTCOME_KINDS)}.")
@click.option("--programme", "programmes", multiple=True, help="Programme code (repeat).")
@click.option("--category", "categories", multiple=True, help="Certificate category (repeat).")
@click.option("--level", "levels", multiple=True, help="Certificate level 初级/中级/高级 (repeat).")
@click.option("--from", "valid_from", type=UtcDateTime(), required=True)
@click.option("--until", "valid_until", type=UtcDateTime(), required=True)
@click.option("--quota", help="At most N outcomes per period: N/year or N/month.")
@click.option("--key", type=FILE, help="Authority key file.")
@json_option
@pass_app
def accredit(
    app: AppContext,
    issuer: str,
    accreditation: str,
    kinds: str,
    programmes: tuple[str, ...],
    categories: tuple[str, ...],
    levels: tuple[str, ...],
    valid_from: datetime,
    valid_until: datetime,
    quota: str | None,
    key: Path | None,
    as_json: bool,
) -> None:
    r"""Accredit ISSUER for outcome kinds, a scope and a period.

    For example:

        creditbank issuers accredit org-iot --id acc-iot --kinds certificate \
            --category iot-install --level 初级 --level 中级 \
            --from 2026-01-01 --until 2029-01-01
    """
    limit = None
    if quota:
        count, _, period = quota.partition("/")
        if not count.isdigit() or period not in ("year", "month"):
            raise click.BadParameter("expected N/year or N/month", param_hint="--quota")
        limit = (int(count), period)
    record = app.bank().accredit(
        accreditation,
        issuer,
        [k.strip() for k in kinds.split(",") if k.strip()],
        valid_from,
        valid_until,
        signing_key(app, key),
        programmes,
        categories,
        levels,
        limit,
    )
    emit(
        as_json,
        {"seq": record.seq, "accreditation": accreditation, "issuer": issuer},
        f"seq {record.seq}: accreditation {accreditation} granted to {issuer}",
    )


def _change(action: str) -> click.Command:
    @click.command(
        {"suspended": "suspend", "reinstated": "reinstate", "withdrawn": "withdraw"}[action]
    )
    @click.argument("accreditation")
    @click.option("--reason", required=True)
    @click.option("--key", type=FILE, help="Authority key file.")
    @json_option
    @pass_app
    def command(
        app: AppContext, accreditation: str, reason: str, key: Path | None, as_json: bool
    ) -> None:
        record = app.bank().change_accreditation(
            accreditation, action, reason, signing_key(app, key)
        )
        emit(
            as_json,
            {"seq": record.seq, "accreditation": accreditation, "status": action},
            f"seq {record.seq}: accreditation {accreditation} {action}",
        )

    verb = command.name
    command.help = (
        f"Mark ACCREDITATION {action} (with a reason).\n\nFor example:\n\n"
        f'    creditbank issuers {verb} acc-iot --reason "provincial review"'
    )
    return command


for _action in ("suspended", "reinstated", "withdrawn"):
    issuers.add_command(_change(_action))


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": item["issuer"],
        "kind": item["kind"],
        "name": item["name_zh"],
        "name_en": item["name_en"],
        "school_level": item.get("school_level"),
        "keys": [k["key_id"] for k in item["keys"]],
        "accreditations": [a["accreditation"] for a in item["accreditations"]],
    }


@issuers.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List issuers.

    For example:

        creditbank issuers list --json
    """
    found = [_summary(i) for i in app.bank().issuers()]
    text = "\n".join(
        f"{i['issuer']:<16} {i['kind']:<13} {i['name']} / {i['name_en']}" for i in found
    )
    emit(as_json, {"issuers": found}, text or "no issuers")


@issuers.command()
@click.argument("issuer")
@json_option
@pass_app
def show(app: AppContext, issuer: str, as_json: bool) -> None:
    """Show ISSUER with its keys and accreditations.

    For example:

        creditbank issuers show sch-szpt
    """
    found = next((i for i in app.bank().issuers() if i["issuer"] == issuer), None)
    if found is None:
        raise RuleError(f"no issuer {issuer}")
    lines = [f"{found['issuer']} ({found['kind']}) {found['name_zh']} / {found['name_en']}"]
    for k in found["keys"]:
        state = "revoked" if k["revoked_at"] else "rotated out" if k["retired_at"] else "active"
        lines.append(f"  key {k['key_id']} {state}")
    for a in found["accreditations"]:
        lines.append(
            f"  accreditation {a['accreditation']} {a['status']}: {', '.join(a['outcome_kinds'])} "
            f"{a['valid_from'][:10]}..{a['valid_until'][:10]}"
        )
    emit(as_json, found, "\n".join(lines))
