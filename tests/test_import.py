"""Bulk import from CSV and XLSX: every bad row reported, all-or-nothing, idempotent."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.errors import InputError, RuleError
from creditbank.importing import Importer
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import COURSE, ORG, SCHOOL, accredited_bank, national_id
from .conftest import dump

COLUMNS = ["account", "course_code", "course_title", "programme", "credits", "grade", "term"]


@pytest.fixture
def learners(bank: CreditBank, authority: SigningKey) -> list[str]:
    first = accredited_bank(bank, authority)
    others = [bank.open_account(national_id(10 + i), f"学生{i}", authority)[0] for i in range(3)]
    return [first, *others]


def write_csv(
    path: Path, rows: list[list[str]], header: list[str] = COLUMNS, encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def course_row(account: str, code: str = "CS301", credits: str = "3") -> list[str]:
    return [account, code, "软件工程", "P510201", credits, "A", "2026-2027-1"]


def test_every_bad_row_is_reported_and_nothing_written(
    bank: CreditBank, learners: list[str], tmp_path: Path, db_url: str
) -> None:
    path = write_csv(
        tmp_path / "class.csv",
        [
            course_row(learners[0]),
            course_row(learners[1], credits="4.5.1"),
            course_row("acct-nope"),
            course_row(learners[2], code=""),
            course_row(learners[3]),
            [learners[3], "CS302", "软件\x07工程", "P510201", "3", "A", "2026-2027-1"],
        ],
    )
    before = dump(db_url)
    report = Importer(bank, SCHOOL, "course").run(path)
    assert [(e.row, e.column) for e in report.rejected] == [
        (3, "credits"),
        (4, None),
        (5, "course_code"),
        (7, "course_title"),
    ]
    assert "no account acct-nope" in report.rejected[1].reason
    assert "holds the control character U+0007" in report.rejected[3].reason
    assert report.issued == [] and dump(db_url) == before


def test_skip_invalid_then_a_second_import_issues_nothing(
    bank: CreditBank, learners: list[str], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "class.csv",
        [course_row(a) for a in learners] + [course_row("acct-nope")],
    )
    first = Importer(bank, SCHOOL, "course").run(path, skip_invalid=True)
    assert len(first.issued) == 4 and [e.row for e in first.rejected] == [6]
    issued = bank.ledger.record(first.issued[0]).payload
    assert issued["source_ref"].startswith("row-")
    again = Importer(bank, SCHOOL, "course").run(path, skip_invalid=True)
    assert again.issued == [] and again.already == 4
    with pytest.raises(RuleError, match="already issued"):
        bank.issue("course", learners[0], {**COURSE, "source_ref": issued["source_ref"]}, SCHOOL)


def test_rows_signed_under_a_compromised_key_are_issued_again_under_new_references(
    bank: CreditBank, learners: list[str], authority: SigningKey, tmp_path: Path
) -> None:
    """After the school's key is revoked as compromised and replaced, the same file issues
    nothing again (its references are taken, even by revoked outcomes); the rows are
    issued again with the new key once they carry references of their own."""
    rows = [course_row(a) for a in learners[:2]]
    leaked = bank.clock.now()
    first = Importer(bank, SCHOOL, "course").run(write_csv(tmp_path / "class.csv", rows))
    bank.revoke_key("sch-szpt", SCHOOL.key_id, leaked, "leaked", authority)
    new_key = SigningKey.from_seed(bytes([31]) * 32)
    bank.rotate_key("sch-szpt", SCHOOL.key_id, new_key.public, authority)
    for seq in first.issued:
        bank.revoke_outcome(seq, "signed with a leaked key", authority)
    again = Importer(bank, new_key, "course").run(tmp_path / "class.csv")
    assert again.issued == [] and again.already == 2
    referenced = [[*row, f"2026-1-{n}-r1"] for n, row in enumerate(rows)]
    path = write_csv(tmp_path / "again.csv", referenced, [*COLUMNS, "source_ref"])
    reissued = Importer(bank, new_key, "course").run(path)
    assert [bank.ledger.record(s).signer for s in reissued.issued] == [new_key.key_id] * 2
    report = bank.audit()  # the first import was signed from the compromise on, and revoked
    assert report.ok
    assert {(p.kind, p.seq) for p in report.resolved} == {
        ("key_compromised", seq) for seq in first.issued
    }


def test_xlsx_with_chinese_headers_identifies_learners_by_national_id(
    bank: CreditBank, learners: list[str], tmp_path: Path
) -> None:
    from datetime import datetime

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["身份证号", "证书代码", "证书名称", "证书类别", "等级", "发证日期", "来源编号"])
    for i in range(3):
        sheet.append(
            [
                national_id(10 + i),
                "IOT-INST",
                "物联网安装调试",
                "iot-install",
                "中级",
                datetime(2026, 8, 10),
                f"EXAM-2026-10-{i}",
            ]
        )
    path = tmp_path / "exam.xlsx"
    book.save(path)
    report = Importer(bank, ORG, "certificate").run(path)
    assert report.rejected == [] and len(report.issued) == 3
    payload = bank.ledger.record(report.issued[0]).payload
    assert (payload["level"], payload["issued_on"], payload["source_ref"]) == (
        "intermediate",
        "2026-08-10",
        "EXAM-2026-10-0",
    )
    assert bank.ledger.record(report.issued[0]).account.account == learners[1]  # type: ignore[union-attr]


def test_rules_refuse_rows_before_anything_is_written(
    bank: CreditBank, learners: list[str], tmp_path: Path, db_url: str
) -> None:
    header = [
        "account",
        "kind",
        "certificate_code",
        "certificate_name",
        "category",
        "level",
        "issued_on",
    ]
    rows = [
        [
            learners[0],
            "certificate",
            "IOT-INST",
            "物联网",
            "iot-install",
            "intermediate",
            "2026-08-10",
        ],
        [learners[1], "certificate", "IOT-INST", "物联网", "iot-install", "senior", "2026-08-10"],
        [learners[2], "certificate", "WELD", "焊接", "welding", "junior", "2026-08-10"],
        [learners[2], "certificate", "IOT-INST", "物联网", "iot-install", "junior", "2099-01-01"],
        [learners[2], "certificate", "IOT-INST", "物联网", "iot-install", "junior", "0026-08-10"],
    ]
    path = write_csv(tmp_path / "exam.csv", rows, header)
    before = dump(db_url)
    report = Importer(bank, ORG).run(path)
    assert [e.row for e in report.rejected] == [3, 4, 5, 6]
    assert "levels junior, intermediate, not senior" in report.rejected[0].reason
    assert "issued_on: 2099-01-01 is after the day it is recorded" in report.rejected[2].reason
    assert "issued_on: 0026-08-10 is before 1900-01-01" in report.rejected[3].reason
    assert dump(db_url) == before


def test_unknown_columns_and_missing_kind_are_refused(
    bank: CreditBank, learners: list[str], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "x.csv", [[*course_row(learners[0]), "1"]], [*COLUMNS, "bonus"])
    with pytest.raises(InputError, match="column 'bonus'"):
        Importer(bank, SCHOOL, "course").run(path)
    with pytest.raises(InputError, match="--kind"):
        Importer(bank, SCHOOL).run(write_csv(tmp_path / "y.csv", [course_row(learners[0])]))
    with pytest.raises(InputError, match=r"\.csv or \.xlsx"):
        Importer(bank, SCHOOL, "course").run(tmp_path / "class.txt")
    both = write_csv(tmp_path / "z.csv", [[*course_row(learners[0]), "5"]], [*COLUMNS, "学分"])
    with pytest.raises(InputError, match="column 'credits' appears twice"):
        Importer(bank, SCHOOL, "course").run(both)


def test_cli_import(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    import json

    from .conftest import fetch
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "3", "--records", "9").exit_code == 0
    accounts = [a for (a,) in fetch(db_url, "SELECT account FROM accounts ORDER BY 1")]
    path = write_csv(tmp_path / "c.csv", [course_row(a) for a in accounts] + [course_row("acct-x")])
    key = "demo-keys/sch-szpt.pem"
    refused = run(runner, db_url, "import", "c.csv", "--kind", "course", "--key", key)
    one_line_error(refused, 2, "nothing was imported")
    assert "REFUSED row 6: no account acct-x" in refused.stdout
    ok = run(
        runner,
        db_url,
        "import",
        "c.csv",
        "--kind",
        "course",
        "--key",
        key,
        "--skip-invalid",
        "--rejected",
        "bad.csv",
        "--json",
    )
    assert ok.exit_code == 0 and json.loads(ok.stdout)["issued"] == len(accounts)
    rejected = (tmp_path / "bad.csv").read_bytes()
    assert rejected.startswith(b"\xef\xbb\xbf") and b"acct-x" in rejected
    assert path.exists() and run(runner, db_url, "audit").exit_code == 0


CHINESE_COLUMNS = ["账户", "课程代码", "课程名称", "专业", "学分", "成绩", "学期"]


def test_cli_import_of_a_gbk_file(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    """As Excel on Chinese Windows saves CSV: refused as UTF-8 with a hint, read with
    --encoding gbk, and the refused rows written back in GBK."""
    import json

    from .conftest import fetch
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "6").exit_code == 0
    accounts = [a for (a,) in fetch(db_url, "SELECT account FROM accounts ORDER BY 1")]
    rows = [CHINESE_COLUMNS, *(course_row(a) for a in accounts), course_row("acct-x")]
    (tmp_path / "c.csv").write_bytes("".join(",".join(r) + "\r\n" for r in rows).encode("gbk"))
    args = ["import", "c.csv", "--kind", "course", "--key", "demo-keys/sch-szpt.pem"]
    before = dump(db_url)
    one_line_error(
        run(runner, db_url, *args),
        2,
        "c.csv: not utf-8 text: byte 0xd5 at offset 0 (--encoding gbk",
    )
    assert dump(db_url) == before
    more = ["--encoding", "gbk", "--skip-invalid", "--rejected", "bad.csv", "--json"]
    done = run(runner, db_url, *args, *more)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["issued"] == len(accounts)
    titles = {t for (t,) in fetch(db_url, "SELECT data FROM outcomes") if "软件工程" in t}
    assert len(titles) == len(accounts)
    rejected = list(csv.reader((tmp_path / "bad.csv").read_text(encoding="gbk").splitlines()))
    assert rejected[0] == [*COLUMNS, "error"] and rejected[1][:3] == ["acct-x", "CS301", "软件工程"]


@given(
    st.lists(
        st.lists(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
            min_size=len(COLUMNS),
            max_size=len(COLUMNS),
        ),
        max_size=4,
    )
)
def test_a_csv_reads_back_the_same_in_either_encoding(rows: list[list[str]]) -> None:
    """Any text a cell holds (stripped, as the reader strips it) reads back as written,
    from UTF-8 (with or without a byte order mark) and from GB18030."""
    import tempfile

    from creditbank.importing import read_table

    cells = [[c.strip() or "x" for c in row] for row in rows]
    with tempfile.TemporaryDirectory() as folder:
        for encoding, codec in (("utf-8", "utf-8"), ("utf-8", "utf-8-sig"), ("gbk", "gb18030")):
            path = Path(folder) / f"{codec}.csv"
            write_csv(path, cells, CHINESE_COLUMNS, codec)
            header, table = read_table(path, encoding)
            assert header == COLUMNS
            assert [row for _, row in table] == cells
            assert [n for n, _ in table] == list(range(2, len(cells) + 2))
        with pytest.raises(InputError, match="encoding: 'latin-1' is not one of utf-8, gbk"):
            read_table(path, "latin-1")


@given(st.decimals(min_value=0, max_value=60, places=2, allow_nan=False, allow_infinity=False))
def test_a_spreadsheet_number_reads_as_the_decimal_typed(value: Decimal) -> None:
    from creditbank.importing import _cell

    assert Decimal(_cell(float(value))) == value
    assert _cell(None) == "" and _cell(" A ") == "A"


def _workbook_bytes() -> bytes:
    import io

    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook()
    book.active.append(COLUMNS)
    book.active.append(["acct-1", "CS301", "数据结构", "P510201", "3", "90", "2026-1"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


WORKBOOK = _workbook_bytes()


def _members_damaged(how: str) -> list[tuple[str, bytes]]:
    """The workbook with each archive member in turn replaced by bad XML or left out."""
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(WORKBOOK))
    damaged = []
    for victim in source.namelist():
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for name in source.namelist():
                if name != victim:
                    archive.writestr(name, source.read(name))
                elif how == "garbled":
                    archive.writestr(name, b"<unclosed")
        damaged.append((victim, out.getvalue()))
    return damaged


@pytest.mark.parametrize("how", ["garbled", "missing"])
def test_a_damaged_workbook_member_is_an_input_error(tmp_path: Path, how: str) -> None:
    from creditbank.importing import read_table

    path = tmp_path / "class.xlsx"
    for _victim, blob in _members_damaged(how):
        path.write_bytes(blob)
        try:
            header, _rows = read_table(path)
        except InputError as e:
            assert str(e).startswith(f"{path}: ")
        else:
            assert header == COLUMNS


@given(
    st.lists(st.tuples(st.integers(0, len(WORKBOOK) - 1), st.integers(0, 255)), max_size=6),
    st.integers(1, len(WORKBOOK)),
)
def test_a_corrupted_workbook_reads_or_is_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], length: int
) -> None:
    """Bytes changed or cut anywhere: the table reads, or one InputError names the file."""
    from creditbank.importing import read_table

    blob = bytearray(WORKBOOK)
    for position, value in flips:
        blob[position] = value
    path = tmp_path_factory.mktemp("xlsx") / "class.xlsx"
    path.write_bytes(bytes(blob[:length]))
    try:
        read_table(path)
    except InputError as e:
        assert str(e).startswith(f"{path}: ")


def test_cli_import_of_a_damaged_workbook(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "4").exit_code == 0
    (tmp_path / "class.xlsx").write_bytes(WORKBOOK[: len(WORKBOOK) // 2])
    key = "demo-keys/sch-szpt.pem"
    result = run(runner, db_url, "import", "class.xlsx", "--kind", "course", "--key", key)
    one_line_error(result, 2, "class.xlsx: not a readable XLSX workbook")
