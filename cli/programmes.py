"""``creditbank programmes``: publish and show programmes (专业) and their credit rules."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from creditbank.schemas.fields import decimal_text

from creditbank.documents import read_document

from .context import AppContext, pass_app, signing_key
from .output import emit, json_option
from .params import FILE, VERSION


def _plain(value: Any) -> Any:
    """Decimals as strings, recursively, for JSON output."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@click.group()
def programmes() -> None:
    """Programmes (专业): required courses, elective groups, credits, caps."""


@programmes.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", type=FILE, help="The school's key file (default: authority key).")
@json_option
@pass_app
def publish(app: AppContext, file: Path, key: Path | None, as_json: bool) -> None:
    """Publish the programme in FILE (TOML or JSON), or its next version.

    Numbers with fractions are strings ("4.5"); see docs for the fields. Example:

        creditbank programmes publish P510201.toml --key school.pem
    """
    record = app.bank().publish_programme(read_document(file), signing_key(app, key))
    code, version = record.payload["code"], record.payload["version"]
    emit(
        as_json,
        {"seq": record.seq, "programme": code, "version": version},
        f"seq {record.seq}: programme {code} version {version} published",
    )


@programmes.command()
@click.argument("code")
@click.option("--version", type=VERSION, help="A given version (default: newest).")
@json_option
@pass_app
def show(app: AppContext, code: str, version: int | None, as_json: bool) -> None:
    """Show programme CODE: credits, required courses, elective groups, conversion cap.

    For example:

        creditbank programmes show P510201 --version 1
    """
    found = app.bank().programme(code, version)
    lines = [
        f"{found.code} v{found.version} {found.name} ({found.level}, {found.school})",
        f"  {decimal_text(found.total_credits)} credits, at most {found.max_study_years} years, "
        f"at most {decimal_text(found.conversion_cap)} credits by exemption or conversion",
        *(
            f"  required {c.course_code:<10} {decimal_text(c.credits):>5}  {c.title}"
            for c in found.required
        ),
    ]
    for group in found.electives:
        lines.append(f"  electives {group.group}: at least {decimal_text(group.min_credits)} of")
        lines.extend(
            f"    {c.course_code:<10} {decimal_text(c.credits):>5}  {c.title}"
            for c in group.courses
        )
    emit(as_json, _plain(asdict(found)), "\n".join(lines))


@programmes.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List programmes with their newest version.

    For example:

        creditbank programmes list
    """
    found = [{"programme": c, "version": v, "school": s} for c, v, s in app.bank().programmes()]
    emit(
        as_json,
        {"programmes": found},
        "\n".join(f"{p['programme']:<12} v{p['version']}  {p['school']}" for p in found)
        or "no programmes",
    )
