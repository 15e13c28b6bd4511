"""The root ``creditbank`` group: global options and turning errors into exit codes.

Exit codes: 0 success; 1 refused operation or problems found; 2 usage error or
bad input. Errors are one line on stderr starting ``Error:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from creditbank import __version__
from creditbank.errors import CreditBankError, InputError, RuleError, StoreError
from creditbank.store.engine import ENV_URL, describe_error

from . import audit as audit_commands
from . import credentials as credential_commands
from . import demo as demo_commands
from . import imports as import_commands
from . import ledger as ledger_commands
from . import query as query_commands
from .accounts import accounts
from .config import load_config
from .context import AppContext
from .conversions import conversions
from .help import keep_examples
from .issuers import issuers
from .keys import keys
from .outcomes import outcomes
from .output import BadInputError, CommandError
from .programmes import programmes
from .rules import convert, eligibility, rules
from .witnesses import witness


class CreditBankGroup(click.Group):
    """A group that turns library errors into one-line messages and exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse an argument that is not valid UTF-8 before any command sees it.

        Python hands such bytes on as lone surrogates, which no database, file or
        record of the bank can hold.

        Raises:
            BadInputError: an argument holds bytes that are not UTF-8 (it is named).
        """
        for position, arg in enumerate(args, start=1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError as e:
                raw = arg.encode("utf-8", "surrogateescape")
                raise BadInputError(f"argument {position} ({raw!r}) is not UTF-8 text") from e
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map library errors to exit 1 or 2 and usage errors to one line."""
        try:
            return super().invoke(ctx)
        except CommandError:
            raise
        except click.UsageError as e:
            raise BadInputError(f"{e.format_message()} (see --help)") from e
        except (InputError, StoreError) as e:
            raise BadInputError(str(e)) from e
        except RuleError as e:
            app = ctx.find_object(AppContext)
            message = str(e) if app is None else app.key_hint(str(e))
            raise CommandError(message) from e
        except CreditBankError as e:
            raise CommandError(str(e)) from e
        except SQLAlchemyError as e:
            raise CommandError(f"database error: {describe_error(e)}") from e


@click.group(cls=CreditBankGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    help="Database URL (default: $CREDITBANK_DB, else db in creditbank.toml, "
    "else sqlite:///creditbank.db).",
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read key passphrases from this file (else $CREDITBANK_PASSPHRASE, else a prompt).",
)
@click.version_option(__version__, prog_name="creditbank")
@click.pass_context
def cli(ctx: click.Context, db: str | None, passphrase_file: Path | None) -> None:
    """creditbank: a 1+X credit bank on a signed, Merkle-logged learning-record ledger.

    Start here:

        creditbank demo              build a sample bank in ./creditbank.db
        creditbank verify            check the whole ledger
        creditbank COMMAND --help    explain one command
    """
    config = load_config()
    if db is None and not os.environ.get(ENV_URL):
        db = config.get("db")
    if passphrase_file is None and "passphrase_file" in config:
        passphrase_file = Path(config["passphrase_file"])
    app = AppContext(db, passphrase_file)
    ctx.obj = app
    ctx.call_on_close(app.close)


ledger_commands.register(cli)
demo_commands.register(cli)
audit_commands.register(cli)
credential_commands.register(cli)
import_commands.register(cli)
query_commands.register(cli)
for _group in (
    keys,
    issuers,
    accounts,
    outcomes,
    conversions,
    programmes,
    rules,
    convert,
    eligibility,
    witness,
):
    cli.add_command(_group)
keep_examples(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="creditbank")
