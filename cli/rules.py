"""``creditbank rules`` and ``creditbank convert``: conversion rules as data, and running them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from creditbank.schemas.fields import decimal_text

from creditbank.documents import read_document
from creditbank.domain.conversion import Evaluation
from creditbank.errors import RuleError
from creditbank.ledger.record import Record

from .context import AppContext, pass_app, signing_key
from .output import emit, json_option
from .params import FILE, VERSION


@click.group()
def rules() -> None:
    """Conversion and exemption rules (转换规则): load, list, show."""


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", type=FILE, help="Authority key file.")
@json_option
@pass_app
def load(app: AppContext, file: Path, key: Path | None, as_json: bool) -> None:
    """Load the rule in FILE (TOML or JSON), or its next version, signed by the authority.

    For example:

        creditbank rules load R-IOT-EXEMPT.toml
    """
    record = app.bank().load_rule(read_document(file), signing_key(app, key))
    rule, version = record.payload["id"], record.payload["version"]
    emit(
        as_json,
        {"seq": record.seq, "rule": rule, "version": version},
        f"seq {record.seq}: rule {rule} version {version} loaded",
    )


@rules.command("list")
@click.option("--programme", help="Only this programme's rules.")
@json_option
@pass_app
def list_(app: AppContext, programme: str | None, as_json: bool) -> None:
    """List every loaded rule version.

    For example:

        creditbank rules list --programme P510201
    """
    found = [
        {
            "rule": r["id"],
            "version": r["version"],
            "kind": r["kind"],
            "programme": r.get("programme"),
            "title": r["title"],
            "effective_from": r["effective_from"],
            "effective_until": r.get("effective_until"),
        }
        for r in app.bank().rules(programme)
    ]
    text = "\n".join(
        f"{r['rule']:<16} v{r['version']:<3} {r['kind']:<18} {r['programme'] or '-':<10} "
        f"{r['title']}"
        for r in found
    )
    emit(as_json, {"rules": found}, text or "no rules")


@rules.command()
@click.argument("rule")
@click.option("--version", type=VERSION, help="A given version (default: newest).")
@json_option
@pass_app
def show(app: AppContext, rule: str, version: int | None, as_json: bool) -> None:
    """Show RULE as loaded (its conditions and what it grants).

    For example:

        creditbank rules show R-IOT-EXEMPT
    """
    versions = [r for r in app.bank().rules() if r["id"] == rule]
    chosen = [r for r in versions if version is None or r["version"] == version]
    if not chosen:
        raise RuleError(f"no rule {rule}" + ("" if version is None else f" version {version}"))
    document = chosen[-1]
    emit(as_json, document, json.dumps(document, ensure_ascii=False, indent=2))


def convert_document(evaluation: Evaluation, records: list[Record]) -> dict[str, Any]:
    """The ``convert --json`` document: granted (with record seqs when written) and refused."""
    seqs: list[int | None] = [r.seq for r in records] or [None] * len(evaluation.granted)
    return {
        "granted": [
            {
                "seq": seq,
                "rule": g.rule,
                "version": g.version,
                "kind": g.kind,
                "credits": decimal_text(g.credits),
                "requirement": g.requirement,
                "title": g.title,
                "inputs": [{"seq": s, "hash": h} for s, h in g.inputs],
            }
            for seq, g in zip(seqs, evaluation.granted, strict=True)
        ],
        "refused": [
            {"rule": r.rule, "version": r.version, "reason": r.reason} for r in evaluation.refused
        ],
        "converted_before": decimal_text(evaluation.converted_before),
        "cap": decimal_text(evaluation.cap),
    }


@click.command()
@click.argument("account")
@click.option("--programme", required=True, help="The programme to convert toward.")
@click.option("--what-if", is_flag=True, help="Show what would be granted and why; write nothing.")
@click.option("--key", type=FILE, help="Registrar (authority) key file.")
@json_option
@pass_app
def convert(
    app: AppContext, account: str, programme: str, what_if: bool, key: Path | None, as_json: bool
) -> None:
    """Run the conversion rules in force for ACCOUNT and a programme; record each grant.

    Each exemption (免修) or conversion becomes a signed record naming the rule version
    and the leaf hashes of its source outcomes. Example:

        creditbank convert acct-0123456789abcdef --programme P510201 --what-if
    """
    bank = app.bank()
    evaluation, records = bank.convert(
        account, programme, None if what_if else signing_key(app, key)
    )
    document = convert_document(evaluation, records)
    verb = "would grant" if what_if else "granted"
    lines = [
        f"{verb}: {g['title']} ({g['credits']} credits, rule {g['rule']} v{g['version']}, "
        f"from record(s) {', '.join(str(i['seq']) for i in g['inputs'])})"
        for g in document["granted"]
    ]
    lines += [
        f"not granted: rule {r['rule']} v{r['version']}: {r['reason']}" for r in document["refused"]
    ]
    if not lines:
        lines.append(f"no conversion rule is loaded for {programme}: 'creditbank rules list'")
    lines.append(f"cap {document['cap']} credits; {document['converted_before']} converted before")
    emit(as_json, document, "\n".join(lines))


@click.command()
@click.argument("account")
@click.option("--programme", required=True, help="The programme whose diploma is checked.")
@json_option
@pass_app
def eligibility(app: AppContext, account: str, programme: str, as_json: bool) -> None:
    """Credits ACCOUNT has toward a programme (with provenance) and what its diploma still needs.

    Also lists the certificate exam modules (免试) the learner may skip. Example:

        creditbank eligibility acct-0123456789abcdef --programme P510201
    """
    bank = app.bank()
    found = bank.eligibility(account, programme)
    exemptions, _ = bank.exam_exemptions(account)
    exam = [
        {
            "certificate_category": e.certificate_category,
            "modules": list(e.modules),
            "rule": e.rule,
            "version": e.version,
            "inputs": [s for s, _ in e.inputs],
        }
        for e in exemptions
    ]
    document = {
        "account": account,
        "programme": found.programme,
        "version": found.version,
        "eligible": found.eligible,
        "earned": decimal_text(found.earned),
        "exempted": decimal_text(found.exempted),
        "converted": decimal_text(found.converted),
        "pending": decimal_text(found.pending),
        "total_required": decimal_text(found.total_required),
        "study_deadline": found.study_deadline,
        "missing": list(found.missing),
        "credits": [
            {
                "requirement": ln.requirement,
                "credits": decimal_text(ln.credits),
                "source": ln.source,
                "seq": ln.seq,
                "status": ln.status,
                "title": ln.title,
            }
            for ln in found.lines
        ],
        "exam_exemptions": exam,
    }
    lines = [
        f"{account} in {found.programme} v{found.version}: "
        + ("ELIGIBLE for the diploma" if found.eligible else "not yet eligible"),
        f"  {document['earned']} credits by courses, "
        f"{document['exempted']} by exemption, {document['converted']} by conversion"
        f" ({document['pending']} pending review) of {document['total_required']}"
        + (f"; study period ends {found.study_deadline}" if found.study_deadline else ""),
        *(f"  missing: {m}" for m in found.missing),
        *(
            f"  exam exemption: {e.certificate_category} {', '.join(e.modules)} (rule {e.rule})"
            for e in exemptions
        ),
    ]
    emit(as_json, document, "\n".join(lines))
