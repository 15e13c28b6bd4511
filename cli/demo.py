"""``creditbank demo``: build a sample bank so a newcomer sees it work."""

from __future__ import annotations

import click

from creditbank import demo as demo_data
from creditbank.errors import StoreError
from creditbank.ledger.keys import SigningKey

from .context import AppContext, pass_app
from .ledger import create_bank
from .output import emit, json_option, progress

DEMO_ORIGIN = "demo.creditbank.example/ledger"


def register(group: click.Group) -> None:
    """Add the demo command to ``group``."""
    group.add_command(demo)


@click.command()
@click.option("--records", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--learners", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Sample data seed.")
@json_option
@pass_app
def demo(app: AppContext, records: int, learners: int, seed: int, as_json: bool) -> None:
    """Fill the ledger with sample signed records (creating the ledger if there is none).

    A new ledger gets the origin demo.creditbank.example/ledger and its keys beside
    the database, encrypted with the passphrase you give. Example:

        creditbank demo --records 5000 --learners 300
    """
    try:
        bank = app.bank()
        authority: SigningKey = app.load_key(None, app.key_paths.authority, "authority key")
        log_key = app.load_key(None, app.key_paths.log, "log key")
    except StoreError:
        bank, authority = create_bank(app, DEMO_ORIGIN, None, None)
        log_key = app.load_key(None, app.key_paths.log, "log key")
    with progress(records, "Appending sample records", as_json) as advance:
        written = demo_data.fill(bank.ledger, authority, records, learners, advance, seed)
    checkpoint = bank.checkpoint(log_key)
    document = {
        "records_added": written,
        "records": bank.ledger.size(),
        "checkpoint": {"size": checkpoint.size, "root": checkpoint.root.hex()},
        "vkey": bank.ledger.vkey(),
        "db": app.url,
    }
    emit(
        as_json,
        document,
        f"added {written} records; the ledger now holds {document['records']} "
        f"(checkpoint at size {checkpoint.size})\nvkey: {document['vkey']}",
    )
