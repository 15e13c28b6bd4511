"""Bulk issuance from CSV and XLSX files.

A class's course credits, an exam session's certificates, a cohort's diplomas.
Columns are the outcome fields of ``schemas/`` (``course_code``, ``credits``...),
in English or with the Chinese headers in :data:`HEADER_ALIASES`, plus: ``account``
or ``national_id`` (who), ``kind`` (unless given for the whole file) and
``source_ref`` (the school's own reference; when absent, one is derived from the
row's content). Every row is validated first — fields by the payload schema, then
the bank's own rules — and a report names every bad row, column and reason. By
default nothing is written unless every row is good; rows already imported (same
issuer and source reference) are skipped, so importing a file twice issues once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.errors import InputError, RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.projector import Projector
from creditbank.schemas import OUTCOME_SCHEMAS
from creditbank.store.projections import Projections

if TYPE_CHECKING:
    from creditbank.bank import CreditBank

BATCH = 2_000
META_COLUMNS = ("account", "national_id", "kind", "source_ref")
HEADER_ALIASES = {
    "账户": "account",
    "学习账户": "account",
    "身份证号": "national_id",
    "身份证号码": "national_id",
    "类别": "kind",
    "来源编号": "source_ref",
    "课程代码": "course_code",
    "课程名称": "course_title",
    "专业": "programme",
    "专业代码": "programme",
    "学分": "credits",
    "成绩": "grade",
    "分数": "score",
    "学期": "term",
    "证书代码": "certificate_code",
    "证书名称": "certificate_name",
    "证书类别": "category",
    "等级": "level",
    "发证日期": "issued_on",
    "有效期至": "valid_until",
    "专业名称": "programme_name",
    "毕业日期": "graduated_on",
    "培训名称": "title",
    "学时": "hours",
    "完成日期": "completed_on",
    "竞赛": "competition",
    "名次": "rank",
    "获奖日期": "awarded_on",
    "评价机构": "accreditation",
}
"""Chinese column headers accepted for the English field names."""


@dataclass(frozen=True)
class RowError:
    """A refused row: its number in the file (the header is row 1), the column, why."""

    row: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        """``row N, column C: reason``."""
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did (or, refused, would have done)."""

    rows: int = 0
    issued: list[int] = field(default_factory=list)
    already: int = 0
    rejected: list[RowError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``import --json`` document."""
        return {
            "rows": self.rows,
            "issued": len(self.issued),
            "first_seq": self.issued[0] if self.issued else None,
            "last_seq": self.issued[-1] if self.issued else None,
            "already_imported": self.already,
            "rejected": [
                {"row": e.row, "column": e.column, "reason": e.reason} for e in self.rejected
            ],
        }


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


ENCODINGS = {"utf-8": "utf-8-sig", "gbk": "gb18030", "gb18030": "gb18030"}
"""The text encodings a CSV file may be read in, and the codec that reads each.

GB18030 contains GBK and GB2312, so it reads what Excel on Chinese Windows saves
as "CSV"; a UTF-8 file may start with a byte order mark."""


def read_table(
    path: Path, encoding: str = "utf-8"
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows of a CSV or XLSX file (first sheet).

    A CSV file is read in ``encoding`` (one of :data:`ENCODINGS`). Rows are numbered
    as in the file (the header is row 1).

    Raises:
        InputError: unreadable, not in ``encoding``, not CSV or XLSX, or empty; or
            ``encoding`` is none of :data:`ENCODINGS`.
    """
    if encoding not in ENCODINGS:
        raise InputError(f"encoding: {encoding!r} is not one of {', '.join(ENCODINGS)}")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            table = _read_workbook(path)
        elif path.suffix.lower() == ".csv":
            with path.open(encoding=ENCODINGS[encoding], newline="") as f:
                table = [[c.strip() for c in row] for row in csv.reader(f)]
        else:
            raise InputError(f"{path}: import reads .csv or .xlsx files")
    except UnicodeDecodeError as e:
        hint = " (--encoding gbk reads the GBK that Excel saves)" if encoding == "utf-8" else ""
        raise InputError(
            f"{path}: not {encoding} text: byte {e.object[e.start]:#04x} at offset {e.start}{hint}"
        ) from e
    except (OSError, csv.Error, ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot read ({e})") from e
    if not table or not any(table[0]):
        raise InputError(f"{path}: no header row")
    header = [HEADER_ALIASES.get(h, h) for h in table[0]]
    return header, [(n, row) for n, row in enumerate(table[1:], start=2) if any(row)]


def _read_workbook(path: Path) -> list[list[str]]:
    """The cells of an XLSX workbook's first sheet, as text.

    Raises:
        InputError: the file is not a workbook openpyxl can read (a damaged archive
            or damaged XML inside it).
        OSError: the file cannot be read.
    """
    from openpyxl import load_workbook  # type: ignore[import-untyped]
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    except (InvalidFileException, zipfile.BadZipFile, zlib.error, SyntaxError, IndexError) as e:
        # SyntaxError covers the XML parsers' errors (ElementTree's and lxml's).
        raise InputError(f"{path}: not a readable XLSX workbook ({e})") from e


def _reference(kind: str, account: str, details: dict[str, Any]) -> str:
    """A source reference derived from a row's content (when the file gives none)."""
    text = json.dumps([kind, account, details], sort_keys=True, ensure_ascii=False)
    return "row-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass
class _Row:
    number: int
    kind: str
    account: str
    details: dict[str, Any]


class Importer:
    """Reads, checks and issues one file's rows with one issuer key."""

    def __init__(self, bank: CreditBank, key: SigningKey, kind: str | None = None) -> None:
        """Import into ``bank`` signed by ``key``; ``kind`` applies to rows without one.

        Raises:
            InputError: an unknown kind.
        """
        if kind is not None and kind not in OUTCOME_KINDS:
            raise InputError(f"--kind: must be one of {', '.join(OUTCOME_KINDS)}")
        self.bank = bank
        self.key = key
        self.kind = kind

    def run(
        self,
        path: Path,
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
        encoding: str = "utf-8",
    ) -> ImportReport:
        """Import ``path``; with ``skip_invalid``, issue the good rows and report the rest.

        A CSV file is read in ``encoding`` (see :func:`read_table`).

        Raises:
            InputError: the file cannot be read, or a column is unknown.
            RuleError: the key is not a valid issuer key.
        """
        return self.run_table(*read_table(path, encoding), skip_invalid, progress)

    def run_table(
        self,
        header: list[str],
        table: list[tuple[int, list[str]]],
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import rows :func:`read_table` read, as :meth:`run` does.

        Raises:
            InputError: a column is unknown.
            RuleError: the key is not a valid issuer key.
        """
        report = ImportReport(rows=len(table))
        rows = self._parse(header, table, report)
        rows = self._skip_imported(rows, report)
        self._check(rows, report)
        if report.rejected and not skip_invalid:
            return report
        refused = {e.row for e in report.rejected}
        good = [r for r in rows if r.number not in refused]
        for start in range(0, len(good), BATCH):
            batch = good[start : start + BATCH]
            records = self.bank.issue_many(
                [(r.kind, r.account, r.details) for r in batch], self.key
            )
            report.issued.extend(r.seq for r in records)
            if progress is not None:
                progress(len(batch))
        return report

    def _parse(
        self, header: list[str], table: list[tuple[int, list[str]]], report: ImportReport
    ) -> list[_Row]:
        known = {
            name for kind in OUTCOME_KINDS for name in OUTCOME_SCHEMAS[kind]._declared_fields
        } | set(META_COLUMNS)
        unknown = [h for h in header if h and h not in known]
        if unknown:
            raise InputError(
                f"column {unknown[0]!r} is not an outcome field (see docs/import-columns.md)"
            )
        twice = sorted({h for h in header if h and header.count(h) > 1})
        if twice:
            raise InputError(f"column {twice[0]!r} appears twice (under its own or another name)")
        if "account" not in header and "national_id" not in header:
            raise InputError("the file needs an account or a national_id column")
        if self.kind is None and "kind" not in header:
            raise InputError("give --kind or a kind column")
        rows = []
        lookups: dict[str, str | None] = {}
        for number, values in table:
            cells = {h: v for h, v in zip(header, values, strict=False) if h and v != ""}
            kind = cells.pop("kind", self.kind or "")
            if kind not in OUTCOME_KINDS:
                report.rejected.append(RowError(number, "kind", f"unknown kind {kind!r}"))
                continue
            account = cells.pop("account", "")
            national_id = cells.pop("national_id", "")
            if not account and national_id:
                if national_id not in lookups:
                    try:
                        lookups[national_id] = self.bank.find_account(national_id)
                    except InputError as e:
                        report.rejected.append(RowError(number, "national_id", str(e)))
                        continue
                account = lookups[national_id] or ""
                if not account:
                    report.rejected.append(
                        RowError(number, "national_id", "no account for this national ID")
                    )
                    continue
            if not account:
                report.rejected.append(RowError(number, "account", "missing"))
                continue
            details: dict[str, Any] = dict(cells)
            details.setdefault("source_ref", _reference(kind, account, details))
            rows.append(_Row(number, kind, account, details))
        return rows

    def _skip_imported(self, rows: list[_Row], report: ImportReport) -> list[_Row]:
        with self.bank.ledger.store.reading() as conn:
            issuer = Projector(conn).key(self.key.key_id)
            if issuer is None:
                raise RuleError(f"key {self.key.key_id} is not registered to any issuer")
            done = Projections.imported(
                conn, issuer.issuer, [str(r.details["source_ref"]) for r in rows]
            )
        report.already = sum(1 for r in rows if r.details["source_ref"] in done)
        return [r for r in rows if r.details["source_ref"] not in done]

    def _check(self, rows: Sequence[_Row], report: ImportReport) -> None:
        items = [(r.kind, r.account, r.details) for r in rows]
        for position, error in self.bank.refusals(items, self.key):
            column, reason = None, str(error)
            if isinstance(error, InputError):
                field, _, why = reason.partition(": ")
                column, reason = (field, why) if why else (None, reason)
            report.rejected.append(RowError(rows[position].number, column, reason))
        report.rejected.sort(key=lambda e: e.row)


def write_rejected(
    path: Path,
    header: list[str],
    table: list[tuple[int, list[str]]],
    errors: Sequence[RowError],
    encoding: str = "utf-8",
) -> None:
    """Write the rejected rows of a table to ``path`` (CSV) with an ``error`` column.

    The file is written in the ``encoding`` the table was read in (see
    :data:`ENCODINGS`), so it opens as the original did.

    Raises:
        InputError: the file cannot be written.
    """
    by_row = {e.row: str(e) for e in errors}
    try:
        with path.open("w", encoding=ENCODINGS[encoding], newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*header, "error"])
            for number, values in table:
                if number in by_row:
                    writer.writerow([*values, by_row[number]])
    except OSError as e:
        raise InputError(f"--rejected: cannot write {path}: {e}") from e
