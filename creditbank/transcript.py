"""A learner's transcript (成绩单).

Outcomes, credits per programme, exemptions and conversions with their rules,
revocations, and the checkpoint it was produced at. The document is built from
the projections and named by the latest signed checkpoint, so any line can be
proven against the ledger; :func:`render_html` makes a printable page of it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from creditbank.domain.dates import STATED_DAYS
from creditbank.domain.issuers import IssuerKey
from creditbank.errors import RuleError

if TYPE_CHECKING:
    from creditbank.bank import CreditBank

TITLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "course": lambda d: f"{d['course_code']} {d['course_title']}",
    "diploma": lambda d: f"{d['programme_name']} ({d['level']})",
    "certificate": lambda d: f"{d['certificate_code']} {d['certificate_name']} ({d['level']})",
    "training": lambda d: d["title"],
    "award": lambda d: f"{d['competition']} {d['rank']}",
    "innovation": lambda d: d["activity"],
    "other": lambda d: d["title"],
}


def achieved(kind: str, details: dict[str, Any], issued: str) -> str:
    """When an outcome was achieved, as a transcript shows it.

    The day its payload states (a diploma's graduation, a certificate's issue, an
    award, a completed training or activity), a course's term, or else the day it
    was recorded (``issued``, a UTC time).
    """
    field = STATED_DAYS.get(kind)
    stated = details.get(field) if field else details.get("term")
    return str(stated) if stated else issued[:10]


def suspect(outcome: dict[str, Any], key: dict[str, Any] | None) -> dict[str, Any] | None:
    """Why a projected outcome is suspect: its ``key`` signed it after a stated compromise.

    None when the key was not revoked, or revoked from a time after the outcome.
    """
    found = None if key is None else IssuerKey.from_dict(key)
    if found is None or not found.compromised(outcome["issued"]):
        return None
    return {"key": outcome["signer"], "compromised_from": found.revoked_at}


def outcome_line(outcome: dict[str, Any], key: dict[str, Any] | None = None) -> dict[str, Any]:
    """One transcript line for a projected outcome (``key``: the bank's view of its signer)."""
    details = outcome["details"]
    return {
        "seq": outcome["seq"],
        "kind": outcome["kind"],
        "title": TITLES[outcome["kind"]](details),
        "issuer": outcome["issuer"],
        "issued": outcome["issued"],
        "achieved": achieved(outcome["kind"], details, outcome["issued"]),
        "credits": details.get("credits"),
        "grade": details.get("grade"),
        "term": details.get("term"),
        "status": outcome["status"],
        "revoked": (
            None
            if outcome["status"] != "revoked"
            else {"seq": outcome.get("revoked_seq"), "reason": outcome.get("revoke_reason")}
        ),
        "suspect": suspect(outcome, key),
    }


def conversion_line(conversion: dict[str, Any]) -> dict[str, Any]:
    """One transcript line for a conversion as :meth:`CreditBank.conversions` gives it."""
    return {
        "seq": conversion["seq"],
        "kind": conversion["kind"],
        "title": conversion["title"],
        "programme": conversion["programme"],
        "requirement": conversion["requirement"],
        "credits": conversion["credits"],
        "rule": f"{conversion['rule']} v{conversion['rule_version']}",
        "from": [i["seq"] for i in conversion["inputs"]],
        "status": conversion["status"],
        "suspect": conversion.get("suspect"),
    }


def transcript(bank: CreditBank, account: str) -> dict[str, Any]:
    """The transcript document of ``account``.

    Raises:
        RuleError: no such account.
    """
    state = bank.account(account)
    conversions = bank.conversions(account)
    programmes = []
    if state.get("programme"):
        try:
            found = bank.eligibility(account, state["programme"])
        except RuleError:
            found = None
        if found is not None:
            programmes.append(
                {
                    "programme": found.programme,
                    "version": found.version,
                    "earned": str(found.earned),
                    "exempted": str(found.exempted),
                    "converted": str(found.converted),
                    "required": str(found.total_required),
                    "eligible": found.eligible,
                    "missing": list(found.missing),
                    "study_deadline": found.study_deadline,
                }
            )
    latest = bank.ledger.latest_checkpoint()
    keys = {signer: bank.key(signer) for signer in {o["signer"] for o in state["outcomes"]}}
    outcomes = [outcome_line(o, keys[o["signer"]]) for o in state["outcomes"]]
    valid_credits = sum(
        (Decimal(o["credits"]) for o in outcomes if o["credits"] and o["status"] == "valid"),
        Decimal(0),
    )
    return {
        "account": account,
        "status": state["status"],
        "programme": state.get("programme"),
        "school": state.get("school"),
        "erased": state.get("erased", False),
        "outcomes": outcomes,
        "conversions": [conversion_line(c) for c in conversions],
        "credits_earned": str(valid_credits),
        "programmes": programmes,
        "checkpoint": None
        if latest is None
        else {"size": latest.size, "root": latest.root.hex(), "origin": bank.ledger.origin},
        "records_after_checkpoint": bank.ledger.size() - (0 if latest is None else latest.size),
    }


def shown_status(line: dict[str, Any]) -> str:
    """A transcript line's status as a reader should see it: ``suspect`` over ``valid``."""
    return "suspect" if line.get("suspect") and line["status"] == "valid" else str(line["status"])


def suspect_notes(document: dict[str, Any]) -> list[str]:
    """One sentence for each suspect outcome and conversion of a transcript document."""
    notes = [
        f"record {o['seq']} is suspect: {_signed_under(o['suspect'])} "
        "(to be revoked, or issued again with a valid key)"
        for o in document["outcomes"]
        if shown_status(o) == "suspect"
    ]
    for c in document["conversions"]:
        if shown_status(c) != "suspect":
            continue
        notes.append(
            f"conversion {c['seq']} is suspect: {conversion_suspicion_text(c['suspect'])} "
            "(to be revoked, or its inputs revoked with --cascade)"
        )
    return notes


def conversion_suspicion_text(suspicion: dict[str, Any]) -> str:
    """Why a conversion is suspect, in words (``suspicion`` from :meth:`CreditBank.conversions`)."""
    reasons = [_signed_under(suspicion)] if "key" in suspicion else []
    if suspicion.get("inputs"):
        drawn = ", ".join(str(seq) for seq in suspicion["inputs"])
        reasons.append(f"granted from record(s) {drawn}, signed under a compromised key")
    return "; ".join(reasons)


def _signed_under(suspicion: dict[str, Any]) -> str:
    return f"signed by key {suspicion['key']}, compromised from {suspicion['compromised_from']}"


def render_html(document: dict[str, Any]) -> str:
    """A printable HTML page of a transcript document."""

    def cell(value: Any) -> str:
        return html.escape("" if value is None else str(value))

    rows = "".join(
        f"<tr><td>{o['seq']}</td><td>{cell(o['kind'])}</td><td>{cell(o['title'])}</td>"
        f"<td>{cell(o['issuer'])}</td><td>{cell(o['achieved'])}</td>"
        f"<td>{cell(o['credits'])}</td><td>{cell(o['grade'])}</td>"
        f"<td>{cell(shown_status(o))}</td></tr>"
        for o in document["outcomes"]
    )
    conversions = "".join(
        f"<tr><td>{c['seq']}</td><td>{cell(c['title'])}</td><td>{cell(c['requirement'])}</td>"
        f"<td>{cell(c['credits'])}</td><td>{cell(c['rule'])}</td>"
        f"<td>{cell(', '.join(map(str, c['from'])))}</td><td>{cell(shown_status(c))}</td></tr>"
        for c in document["conversions"]
    )
    programmes = "".join(
        f"<li>{cell(p['programme'])} v{p['version']}: earned {cell(p['earned'])}, exempted "
        f"{cell(p['exempted'])}, converted {cell(p['converted'])} of {cell(p['required'])}"
        f" credits; {'eligible to graduate' if p['eligible'] else 'not yet eligible'}</li>"
        for p in document["programmes"]
    )
    notes = "".join(f"<p>{cell(note)}</p>" for note in suspect_notes(document))
    checkpoint = document["checkpoint"]
    proof = (
        "no signed checkpoint yet"
        if checkpoint is None
        else f"ledger {cell(checkpoint['origin'])}, checkpoint size {checkpoint['size']}, "
        f"root {cell(checkpoint['root'])}"
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>成绩单 Transcript {cell(document["account"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:4px;text-align:left}}@media print{{a{{color:black}}}}</style>
</head><body>
<h1>学分银行成绩单 Credit bank transcript</h1>
<p>Account {cell(document["account"])} · status {cell(document["status"])} ·
programme {cell(document["programme"])} · school {cell(document["school"])}</p>
<h2>学习成果 Learning outcomes</h2>
<table><tr><th>seq</th><th>kind</th><th>title</th><th>issuer</th><th>achieved</th><th>credits</th>
<th>grade</th><th>status</th></tr>{rows}</table>{notes}
<h2>免修与学分转换 Exemptions and conversions</h2>
<table><tr><th>seq</th><th>title</th><th>requirement</th><th>credits</th><th>rule</th>
<th>from records</th><th>status</th></tr>{conversions}</table>
<h2>学分累计 Credits per programme</h2><ul>{programmes}</ul>
<p>Produced at {proof}. Each line names its ledger record (seq);
<code>creditbank proof SEQ</code> proves it offline.</p>
</body></html>
"""
