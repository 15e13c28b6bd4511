"""``creditbank demo``: build a sample bank so a newcomer sees it work."""

from __future__ import annotations

import click

from creditbank.demo_bank import build as build_demo_bank
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
@click.option("--learners", type=click.IntRange(min=0), default=200, show_default=True)
@click.option(
    "--records",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="About how many learning outcomes to issue.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Sample data seed.")
@json_option
@pass_app
def demo(app: AppContext, learners: int, records: int, seed: int, as_json: bool) -> None:
    """Build a sample credit bank (creating the ledger if there is none).

    Registers schools (中职/高职/本科) and training-evaluation organisations with
    accreditations, opens LEARNERS accounts with course credits, diplomas and 1+X
    certificates (some revoked), shows one out-of-scope issuance being refused, then
    signs a checkpoint. Issuer keys go to demo-keys/ beside the database. Example:

        creditbank demo --learners 300 --records 2000
    """
    try:
        bank = app.bank()
        passphrase = app.passphrase("bank's keys")
    except StoreError:
        passphrase = app.passphrase("new keys", confirm=True)
        bank, _ = create_bank(app, DEMO_ORIGIN, None, None, passphrase)
    authority = SigningKey.load(app.key_paths.authority, passphrase)
    log_key = SigningKey.load(app.key_paths.log, passphrase)
    key_dir = app.key_paths.authority.parent / "demo-keys"
    with progress(learners, "Adding sample learners", as_json) as advance:
        report = build_demo_bank(
            bank, authority, learners, records, key_dir, passphrase, advance, seed
        )
    checkpoint = bank.checkpoint(log_key)
    document = {
        "learners_added": report.learners,
        "outcomes_added": report.outcomes,
        "revoked": report.revoked,
        "conversions": report.conversions,
        "eligible_learner": report.eligible,
        "refused": report.refused,
        "records": bank.ledger.size(),
        "checkpoint": {"size": checkpoint.size, "root": checkpoint.root.hex()},
        "vkey": bank.ledger.vkey(),
        "issuer_keys": str(key_dir),
        "db": app.url,
    }
    lines = [
        f"added {report.learners} learners and {report.outcomes} outcomes "
        f"({report.revoked} revoked); the ledger holds {document['records']} records",
        f"{report.conversions} exemptions granted by conversion rules",
        *(
            [
                f"{report.eligible} completed programme P710201 through exemptions and "
                f"graduated (creditbank eligibility {report.eligible} --programme P710201)"
            ]
            if report.eligible
            else []
        ),
        *(f"refused, as it should be: {r}" for r in report.refused),
        f"checkpoint at size {checkpoint.size}; issuer keys in {key_dir}",
        f"vkey: {document['vkey']}",
    ]
    emit(as_json, document, "\n".join(lines))
