"""``creditbank import``: bulk issuance from CSV or XLSX."""

from __future__ import annotations

from pathlib import Path

import click

from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.importing import ENCODINGS, Importer, read_table, write_rejected

from .context import AppContext, pass_app, signing_key
from .output import BadInputError, emit, json_option, progress
from .params import FILE, OUTPUT_FILE


def register(group: click.Group) -> None:
    """Add the import command to ``group``."""
    group.add_command(import_file)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", type=FILE, required=True, help="The issuer's key file.")
@click.option(
    "--kind", type=click.Choice(OUTCOME_KINDS), help="Kind of every row (else a kind column)."
)
@click.option(
    "--skip-invalid", is_flag=True, help="Import the good rows; report and skip the rest."
)
@click.option(
    "--rejected", type=OUTPUT_FILE, help="With --skip-invalid: write refused rows here (CSV)."
)
@click.option(
    "--encoding",
    type=click.Choice(list(ENCODINGS)),
    default="utf-8",
    show_default=True,
    help="A CSV file's text encoding (gbk: as Excel on Chinese Windows saves CSV).",
)
@json_option
@pass_app
def import_file(
    app: AppContext,
    file: Path,
    key: Path,
    kind: str | None,
    skip_invalid: bool,
    rejected: Path | None,
    encoding: str,
    as_json: bool,
) -> None:
    """Issue the outcomes in a CSV or XLSX file (see docs/import-columns.md).

    Every row is checked first (fields, account, accreditation, quota); by default
    nothing is written unless all rows pass, and every bad row is listed with its
    row number, column and reason. Rows already imported (same source reference)
    are skipped, so a file imported twice issues once. Example:

        creditbank import class-2026-1.csv --kind course --key sch-szpt.pem
    """
    if rejected is not None and not skip_invalid:
        raise BadInputError("--rejected needs --skip-invalid")
    bank = app.bank()
    importer = Importer(bank, signing_key(app, key, f"key {key}"), kind)
    header, table = read_table(file, encoding)
    with progress(len(table), "Importing", as_json) as advance:
        report = importer.run_table(header, table, skip_invalid, advance)
    if rejected is not None and report.rejected:
        write_rejected(rejected, header, table, report.rejected, encoding)
    lines = [f"REFUSED {e}" for e in report.rejected]
    lines.append(
        f"{len(report.issued)} issued, {report.already} already imported, "
        f"{len(report.rejected)} refused, of {report.rows} rows"
    )
    emit(as_json, report.to_dict(), "\n".join(lines))
    if report.rejected and not skip_invalid:
        raise BadInputError(
            f"{len(report.rejected)} of {report.rows} rows refused; nothing was imported"
        )
