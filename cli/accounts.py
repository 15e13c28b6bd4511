"""``creditbank accounts``: personal learning accounts (个人学习账户)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click

from creditbank.domain.vocab import ACCOUNT_STATUSES, SUSPENSION_REASONS

from .context import AppContext, pass_app, signing_key
from .output import emit, emit_page, json_option, page_options
from .params import FILE, VERSION, Day

KEY_OPTION = click.option("--key", type=FILE, help="Registrar key file (default: authority key).")


@click.group()
def accounts() -> None:
    """Open, show and manage learners' accounts."""


@accounts.command("open")
@click.option("--national-id", required=True, help="居民身份证号码 (18 characters, checked).")
@click.option("--name", required=True)
@KEY_OPTION
@json_option
@pass_app
def open_(app: AppContext, national_id: str, name: str, key: Path | None, as_json: bool) -> None:
    """Open an account; the log holds only salted hashes of the ID and name.

    For example:

        creditbank accounts open --national-id 11010519491231002X --name 张三
    """
    account, record = app.bank().open_account(national_id, name, signing_key(app, key))
    emit(as_json, {"account": account, "seq": record.seq}, account)


@accounts.command()
@click.argument("account")
@json_option
@pass_app
def show(app: AppContext, account: str, as_json: bool) -> None:
    """Show ACCOUNT: status, study period, outcomes (revoked ones marked) and history.

    For example:

        creditbank accounts show acct-0123456789abcdef
    """
    data = app.bank().account(account)
    lines = [
        f"{data['account']}  {data['status']}"
        + ("  (personal data erased)" if data["erased"] else "")
    ]
    if data["personal"]:
        lines.append(f"  {data['personal']['name']}")
    if data["programme"]:
        lines.append(
            f"  programme {data['programme']} v{data['programme_version'] or '-'} "
            f"at {data['school']} since {data['enrolled_on']}, "
            f"at most {data['max_study_years']} years (suspended {data['suspended_days']} days"
            + (f", and since {data['suspended_since'][:10]})" if data["suspended_since"] else ")")
        )
    for o in data["outcomes"]:
        mark = " [REVOKED]" if o["status"] == "revoked" else ""
        lines.append(
            f"  #{o['seq']:<6} {o['kind']:<12} {o['issuer']:<14} {_title(o['details'])}{mark}"
        )
    lines.append("  history:")
    for h in data["history"]:
        change = h["kind"].removeprefix("account.").split("/")[0]
        details = " ".join(f"{k}={v}" for k, v in sorted(h["details"].items()))
        lines.append(f"  #{h['seq']:<6} {h['time'][:10]}  {change} {details}".rstrip())
    emit(as_json, data, "\n".join(lines))


def _title(details: dict[str, Any]) -> str:
    for name in (
        "course_title",
        "certificate_name",
        "programme_name",
        "title",
        "competition",
        "activity",
    ):
        if name in details:
            credits = details.get("credits")
            extra = (
                f"{credits} credits"
                if credits
                else details.get("level") or details.get("rank") or ""
            )
            return f"{details[name]} {extra}".strip()
    return ""


@accounts.command("list")
@click.option("--status", type=click.Choice(ACCOUNT_STATUSES), help="In this state.")
@page_options(click.STRING, "accounts")
@json_option
@pass_app
def list_(
    app: AppContext, status: str | None, after: str | None, limit: int, as_json: bool
) -> None:
    """List accounts (optionally by status), by id, a page at a time.

    For example:

        creditbank accounts list --status suspended
    """
    found = app.bank().accounts(status, after, limit + 1)
    emit_page(
        as_json, "accounts", found, limit, "account", lambda a: f"{a['account']}  {a['status']}"
    )


@accounts.command()
@click.option("--national-id", required=True)
@json_option
@pass_app
def find(app: AppContext, national_id: str, as_json: bool) -> None:
    """Find the account of a national ID number (exit 1 if none).

    For example:

        creditbank accounts find --national-id 11010519491231002X
    """
    account = app.bank().find_account(national_id)
    emit(as_json, {"account": account}, account or "no account")
    if account is None:
        raise SystemExit(1)


@accounts.command()
@click.argument("account")
@click.option(
    "--type",
    "identity_type",
    type=click.Choice(["national_id", "passport", "student_number", "other"]),
    required=True,
)
@click.option("--value", required=True)
@KEY_OPTION
@json_option
@pass_app
def link(
    app: AppContext, account: str, identity_type: str, value: str, key: Path | None, as_json: bool
) -> None:
    """Link a further identity to ACCOUNT.

    For example:

        creditbank accounts link acct-0123456789abcdef --type passport --value E12345678
    """
    record = app.bank().link_identity(account, identity_type, value, signing_key(app, key))
    emit(as_json, {"seq": record.seq, "account": account}, f"seq {record.seq}: identity linked")


def _status_command(
    name: str, kind: str, options: list[Any], build: Any, help_text: str
) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("account")
    @KEY_OPTION
    @json_option
    @pass_app
    def command(
        app: AppContext, /, account: str, key: Path | None, as_json: bool, **values: Any
    ) -> None:
        record = app.bank().change_account(account, kind, build(values), signing_key(app, key))
        emit(
            as_json,
            {"seq": record.seq, "account": account, "kind": kind},
            f"seq {record.seq}: {account} {name}",
        )

    for option in reversed(options):
        command = option(command)
    return command


def _day(value: date) -> str:
    return value.isoformat()


def _stated(field: str, values: dict[str, Any]) -> dict[str, str]:
    """``{field: day}`` when the option for ``field`` was given, else nothing."""
    day = values[field]
    return {} if day is None else {field: _day(day)}


for _command in (
    _status_command(
        "enroll",
        "account.enrolled/1",
        [
            click.option("--programme", required=True),
            click.option("--school", required=True),
            click.option("--on", "enrolled_on", type=Day(), required=True),
            click.option("--max-years", type=click.IntRange(1, 12), required=True),
        ],
        lambda v: {
            "programme": v["programme"],
            "school": v["school"],
            "enrolled_on": _day(v["enrolled_on"]),
            "max_study_years": v["max_years"],
        },
        "Enrol ACCOUNT in a programme with its maximum study years (弹性学制).\n\nFor example:"
        "\n\n    creditbank accounts enroll ACCOUNT --programme P510201 --school sch-szpt"
        " --on 2026-09-01 --max-years 5",
    ),
    _status_command(
        "suspend",
        "account.suspended/1",
        [
            click.option("--reason", type=click.Choice(SUSPENSION_REASONS), required=True),
            click.option(
                "--on",
                "suspended_on",
                type=Day(),
                help="The day study stopped (default: today, UTC); not before the enrolment "
                "or the end of the last suspension.",
            ),
            click.option("--note"),
        ],
        lambda v: {
            "reason": v["reason"],
            **_stated("suspended_on", v),
            **({"note": v["note"]} if v["note"] else {}),
        },
        "Suspend study with status kept (保留学籍休学); the days suspended extend the "
        "study period.\n\nFor example, a suspension decided on 1 September and "
        "recorded later:\n\n"
        "    creditbank accounts suspend ACCOUNT --reason innovation_entrepreneurship "
        "--on 2026-09-01",
    ),
    _status_command(
        "resume",
        "account.resumed/1",
        [
            click.option(
                "--on",
                "resumed_on",
                type=Day(),
                help="The day study resumed (default: today, UTC); not before the suspension.",
            )
        ],
        lambda v: _stated("resumed_on", v),
        "Resume a suspended ACCOUNT.\n\nFor example:\n\n"
        "    creditbank accounts resume ACCOUNT --on 2027-03-01",
    ),
    _status_command(
        "move",
        "account.programme_moved/1",
        [
            click.option("--programme", required=True),
            click.option("--version", "programme_version", type=VERSION, required=True),
            click.option("--reason", required=True),
        ],
        lambda v: {
            "programme": v["programme"],
            "programme_version": v["programme_version"],
            "reason": v["reason"],
        },
        "Move ACCOUNT to another published version of its programme.\n\nFor example:\n\n"
        "    creditbank accounts move ACCOUNT --programme P510201 --version 2 --reason revised",
    ),
    _status_command(
        "graduate",
        "account.graduated/1",
        [
            click.option("--programme", required=True),
            click.option("--on", "graduated_on", type=Day(), required=True),
        ],
        lambda v: {"programme": v["programme"], "graduated_on": _day(v["graduated_on"])},
        "Record that ACCOUNT completed its programme: refused unless the account is\n"
        "enrolled in it and, on the day given, meets its diploma's conditions (see\n"
        "'creditbank eligibility').\n\nFor example:\n\n"
        "    creditbank accounts graduate ACCOUNT --programme P510201 --on 2029-06-30",
    ),
    _status_command(
        "withdraw",
        "account.withdrawn/1",
        [click.option("--reason", required=True)],
        lambda v: {"reason": v["reason"]},
        "Record that ACCOUNT left its programme.\n\nFor example:\n\n"
        '    creditbank accounts withdraw ACCOUNT --reason "moved abroad"',
    ),
):
    accounts.add_command(_command)


@accounts.command()
@click.argument("account")
@click.option("--yes", is_flag=True, help="Confirm: the name and ID cannot be recovered.")
@KEY_OPTION
@json_option
@pass_app
def erase(app: AppContext, account: str, yes: bool, key: Path | None, as_json: bool) -> None:
    """Erase ACCOUNT's personal data (right to be forgotten); the ledger stays verifiable.

    For example:

        creditbank accounts erase acct-0123456789abcdef --yes
    """
    if not yes:
        raise click.BadParameter("erasure cannot be undone: add --yes", param_hint="--yes")
    bank = app.bank()
    size = bank.ledger.size()
    record = bank.erase_personal_data(account, signing_key(app, key))
    appended = record.seq >= size
    text = f"seq {record.seq}: personal data erased"
    if not appended:
        text += " again (what came back after that erasure; nothing appended)"
    emit(as_json, {"seq": record.seq, "account": account, "appended": appended}, text)
