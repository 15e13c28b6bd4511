"""The audit report: a JSON document for scripts and a signed Markdown page for a board.

The Markdown report ends in a signature section: a C2SP signed note, by the
auditor's own key, over the SHA-256 of everything above it, naming the log's
origin and the checkpoint the audit ended at. :func:`verify_report` checks it with
the auditor's verifier key and nothing else.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from creditbank.clock import parse_time
from creditbank.errors import ProofError
from creditbank.ledger.cosignature import witness
from creditbank.ledger.keys import SigningKey, VerifyKey, parse_vkey
from creditbank.ledger.note import parse_note, sign_note
from creditbank.ledger.verify import Problem

SIGNATURE_MARK = "<!-- creditbank audit report signature -->\n"
_REPORT_LINE = "creditbank audit report"


@dataclass(frozen=True)
class AuditReport:
    """What an audit found, over which records, ending at which checkpoint."""

    origin: str
    mode: str
    start: int
    records: int
    checkpoint: Mapping[str, Any] | None
    problems: tuple[Problem, ...]
    more_problems: int
    counts: Mapping[str, Mapping[str, int]]
    audited_at: str
    state_saved: bool = False
    notes: tuple[str, ...] = field(default=())
    resolved: tuple[Problem, ...] = field(default=())
    """Problems the log itself has resolved since: a record signed under a compromised
    key that was revoked later in the log. Reported with their evidence; they leave
    the audit clean."""
    more_resolved: int = 0
    accepted: tuple[Problem, ...] = field(default=())
    """Problems the auditor accepted, each with the reason in ``accepted``; they leave
    the audit clean (:mod:`creditbank.audit.acceptance`)."""

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong (problems resolved in the log or accepted aside)."""
        return not self.problems

    def witness(self, name: str, key: SigningKey) -> str | None:
        """The checkpoint this audit pinned, cosigned by ``key`` as the witness ``name``.

        The cosignature (C2SP ``cosignature/v1``, dated the audit's own time) states
        that this is the largest tree of the log the auditor has seen consistent with
        every earlier one. None unless the audit was clean and pinned a checkpoint.

        Raises:
            InputError: ``name`` is not a valid note name.
        """
        if not (self.ok and self.state_saved and self.checkpoint is not None):
            return None
        return witness(str(self.checkpoint["note"]), name, key, parse_time(self.audited_at))

    def problem_counts(self) -> dict[str, dict[str, int]]:
        """Problems per kind, per issuer and per rule (``more_problems`` not included)."""
        kinds: Counter[str] = Counter(p.kind for p in self.problems)
        issuers: Counter[str] = Counter(
            str(p.extra["issuer"]) for p in self.problems if "issuer" in p.extra
        )
        rules: Counter[str] = Counter(
            str(p.extra["rule"]) for p in self.problems if "rule" in p.extra
        )
        return {"by_kind": dict(kinds), "by_issuer": dict(issuers), "by_rule": dict(rules)}

    def to_dict(self) -> dict[str, Any]:
        """The ``audit --json`` document."""
        return {
            "ok": self.ok,
            "records": self.records,
            "audited": self.records - self.start,
            "mode": self.mode,
            "start": self.start,
            "origin": self.origin,
            "checkpoint": None if self.checkpoint is None else dict(self.checkpoint),
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.more_problems,
            "counts": {k: dict(v) for k, v in self.counts.items()},
            "problem_counts": self.problem_counts(),
            "audited_at": self.audited_at,
            "state_saved": self.state_saved,
            "notes": list(self.notes),
            "resolved": [p.to_dict() for p in self.resolved],
            "more_resolved": self.more_resolved,
            "accepted": [p.to_dict() for p in self.accepted],
        }

    def markdown(self) -> str:
        """The human-readable report (Markdown), without its signature."""
        verdict = "clean" if self.ok else f"{len(self.problems) + self.more_problems} problems"
        if self.resolved:
            verdict += f", {len(self.resolved) + self.more_resolved} resolved in the log"
        if self.accepted:
            verdict += f", {len(self.accepted)} accepted by the auditor"
        scope = (
            f"all {self.records} records"
            if self.mode == "full"
            else f"records {self.start}..{self.records - 1} (from the pinned checkpoint)"
        )
        lines = [
            f"# Audit report: {self.origin}",
            "",
            f"- Result: **{verdict}**",
            f"- Audited at: {self.audited_at}",
            f"- Scope: {scope} ({self.mode} audit)",
        ]
        if self.checkpoint is not None:
            lines += [
                f"- Ends at checkpoint: size {self.checkpoint['size']}, "
                f"root `{self.checkpoint['root']}`",
            ]
        lines += [f"- Note: {n}" for n in self.notes]
        lines += ["", "## Checkpoint", ""]
        if self.checkpoint is None:
            lines.append("The ledger holds no signed checkpoint.")
        else:
            lines += ["```", str(self.checkpoint["note"]).rstrip("\n"), "```"]
        titles = {"records": "Records by kind", "issuers": "Outcomes by issuer"}
        titles["rules"] = "Conversions by rule"
        for name, title in titles.items():
            lines += ["", f"## {title}", ""]
            lines += _table(("", "count"), sorted(self.counts.get(name, {}).items()))
        counted = self.problem_counts()
        for name, title in (
            ("by_kind", "Problems by kind"),
            ("by_issuer", "Problems by issuer"),
            ("by_rule", "Problems by rule"),
        ):
            lines += ["", f"## {title}", ""]
            lines += _table(("", "count"), sorted(counted[name].items()))
        lines += ["", "## Problems with evidence", ""]
        lines += _evidence(self.problems)
        if self.more_problems:
            lines.append(f"- … and {self.more_problems} more problems")
        lines += ["", "## Resolved in the log", ""]
        lines += _evidence(self.resolved)
        if self.more_resolved:
            lines.append(f"- … and {self.more_resolved} more resolved")
        lines += ["", "## Accepted by the auditor", ""]
        lines += _evidence(self.accepted)
        return "\n".join(lines) + "\n"


def _evidence(problems: tuple[Problem, ...]) -> list[str]:
    """One Markdown item per problem, its evidence beneath (``None.`` for no problem)."""
    if not problems:
        return ["None."]
    lines = []
    for problem in problems:
        where = "—" if problem.seq is None else f"seq {problem.seq}"
        lines.append(f"- **{problem.kind}** at {where}: {_cell(problem.detail)}")
        for key, value in sorted(problem.extra.items()):
            lines.append(f"  - {_cell(key)}: `{_code(str(value))}`")
    return lines


_LITERAL = str.maketrans({**{c: "\\" + c for c in "\\`*[]<>|!"}, "\n": " ", "\r": " "})


def _cell(text: str) -> str:
    """``text`` (which may come from a forged record) as literal Markdown on one line.

    Raw HTML, links, images, emphasis, code spans and table pipes are escaped, so a
    review board's viewer shows the text rather than rendering it.
    """
    return text.translate(_LITERAL)


def _code(text: str) -> str:
    """``text`` inside a code span (already literal): one line, no backtick to end it."""
    return text.replace("`", "'").replace("\n", " ").replace("\r", " ")


def _table(header: tuple[str, str], rows: list[tuple[str, int]]) -> list[str]:
    if not rows:
        return ["None."]
    return [
        f"| {header[0]} | {header[1]} |",
        "|---|---:|",
        *(f"| {_cell(k)} | {v} |" for k, v in rows),
    ]


def _statement(origin: str, body: str, checkpoint: Mapping[str, Any] | None) -> str:
    size = "none" if checkpoint is None else f"{checkpoint['size']} {checkpoint['root']}"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"{_REPORT_LINE}\n{origin}\ncheckpoint {size}\nsha256 {digest}\n"


def sign_report(report: AuditReport, auditor: str, key: SigningKey) -> str:
    """The Markdown report followed by its signature section, signed as ``auditor``.

    Raises:
        ProofError: ``auditor`` is not a valid note name (no spaces or ``+``).
    """
    body = report.markdown()
    note = sign_note(_statement(report.origin, body, report.checkpoint), auditor, key)
    return (
        f"{body}\n{SIGNATURE_MARK}## Signature\n\n"
        f"Signed by {auditor} (verifier key `{key.public.vkey(auditor)}`):\n\n"
        f"```\n{note.render()}```\n"
    )


def verify_report(text: str, vkey: str | VerifyKey) -> str:
    """Check a signed report against the auditor's key; return its statement.

    ``vkey`` is the auditor's C2SP verifier key (name and key), or their public key
    alone (as ``keys generate`` writes it, a ``did:key``): then a signature under any
    name will do, the name being part of what the key signed.

    Raises:
        ProofError: no signature section, a damaged one, no signature by that key, a
            signature that does not verify, or a body that is not the one signed.
        InputError: a malformed verifier key.
    """
    cut = text.rfind("\n" + SIGNATURE_MARK)
    if cut < 0:
        raise ProofError("report: no signature section")
    body, section = text[:cut], text[cut + 1 + len(SIGNATURE_MARK) :]
    start = section.find("```\n")
    end = section.rfind("```")
    if start < 0 or end <= start:
        raise ProofError("report: the signature section holds no signed note")
    note = parse_note(section[start + 4 : end])
    if isinstance(vkey, VerifyKey):
        key = vkey
        names = [s.name for s in note.signatures if s.key_hash == key.note_key_hash(s.name)]
        if not names:
            raise ProofError(f"report: no signature by the key {key.did_key}")
        name = names[0]
    else:
        name, key = parse_vkey(vkey)
    note.verify(name, key)
    lines = note.text.split("\n")
    if len(lines) < 4 or lines[0] != _REPORT_LINE:
        raise ProofError("report: the signed note is not a creditbank audit report statement")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    if lines[3] != f"sha256 {digest}":
        raise ProofError("report: the report text differs from the text that was signed")
    return note.text
