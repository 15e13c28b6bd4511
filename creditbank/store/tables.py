"""The ledger's tables (SQLAlchemy Core).

``records`` holds the leaf bytes and, for queries, columns copied from the leaf;
verification checks every copied column against the leaf. Its ``nodes`` column
holds the hashes of the complete subtrees (level 1 up) the record's append
completed, so proofs need O(log n) reads, a verifier compares them in log order,
and an append writes one row. ``ledger_keys`` is a projection of the keys records
introduced (rebuilt and compared by verification). ``checkpoints`` keeps every
signed checkpoint.

Each projection table's ``info["document"]`` names the members every row's JSON
document holds; a row read without them is reported as damaged.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(255), nullable=False),
    Column("log_key", LargeBinary, nullable=False),
    Column("created", String(32), nullable=False),
)

SEQ = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit seq; on SQLite ``INTEGER PRIMARY KEY``, so the seq is the rowid (one B-tree)."""

records = Table(
    "records",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("time", String(32), nullable=False),
    Column("signer", String(32), nullable=False),
    Column("account", String(64), nullable=True),
    Column("account_seq", BigInteger, nullable=True),
    Column("nodes", LargeBinary, nullable=True),
    Index("ix_records_account", "account", "account_seq", unique=True),
)
"""``nodes``: the 32-byte hashes of the subtrees the append of ``seq`` completed, level 1
first (as many as ``seq`` has trailing one bits); NULL when it completed none."""

ledger_keys = Table(
    "ledger_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("public", LargeBinary, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("created", String(32), nullable=False),
)

cosignatures = Table(
    "cosignatures",
    metadata,
    Column("checkpoint_id", Integer, primary_key=True, autoincrement=False),
    Column("vkey", String(512), primary_key=True),
    Column("witness", String(255), nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("signed_at", String(32), nullable=False),
)
"""Witnesses' ``cosignature/v1`` lines on stored checkpoints, one per checkpoint and
witness (its latest), with the cosigner vkey that checked it."""

# -- the credit bank's projections (rebuilt from the log by the audit) ----------------

bank_secrets = Table(
    "bank_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
"""Off-log secrets: the key of the identity lookup index. Never in the log."""

personal_data = Table(
    "personal_data",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("salt", LargeBinary, nullable=False),
    Column("national_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
)
"""Erasable personal data. The log holds only hashes salted with ``salt``: erasing
the row crypto-shreds them (they can no longer be linked to a person)."""

identity_index = Table(
    "identity_index",
    metadata,
    Column("lookup", LargeBinary, primary_key=True),
    Column("account", String(64), nullable=False, index=True),
)
"""Keyed hashes of national ID numbers -> account, to refuse a second account and to
find an account by ID. Off the log; erased with the personal data."""

accounts = Table(
    "accounts",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("opened_seq", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    info={
        "document": (
            "account",
            "status",
            "opened_seq",
            "opened_at",
            "programme",
            "school",
            "enrolled_on",
            "max_study_years",
            "suspended_days",
            "suspended_since",
            "identities",
            "erased",
        )
    },
)

issuers = Table(
    "issuers",
    metadata,
    Column("issuer", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("data", Text, nullable=False),
    info={"document": ("issuer", "kind", "name_zh", "name_en", "registered_seq", "school_level")},
)

issuer_keys = Table(
    "issuer_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("issuer", String(64), nullable=False, index=True),
    Column("data", Text, nullable=False),
    info={
        "document": (
            "key_id",
            "issuer",
            "public",
            "registered_at",
            "registered_seq",
            "retired_at",
            "revoked_at",
            "revoke_reason",
        )
    },
)

accreditations = Table(
    "accreditations",
    metadata,
    Column("accreditation", String(64), primary_key=True),
    Column("issuer", String(64), nullable=False, index=True),
    Column("data", Text, nullable=False),
    info={
        "document": (
            "accreditation",
            "issuer",
            "outcome_kinds",
            "valid_from",
            "valid_until",
            "granted_seq",
            "programmes",
            "certificate_categories",
            "levels",
            "quota_count",
            "quota_period",
            "changes",
        )
    },
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("account", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("issuer", String(64), nullable=False),
    Column("accreditation", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("source_ref", String(128), nullable=True),
    Column("certificate_code", String(64), nullable=True),
    Column("programme", String(64), nullable=True),
    Index("ix_outcomes_account", "account", "seq"),
    Index("ix_outcomes_source_ref", "issuer", "source_ref", unique=True),
    Index("ix_outcomes_issuer", "issuer", "seq"),
    Index("ix_outcomes_accreditation", "accreditation", "issued"),
    Index("ix_outcomes_certificate_code", "certificate_code", "seq"),
    Index("ix_outcomes_programme", "programme", "seq"),
    Index("ix_outcomes_kind_status", "kind", "status"),
    info={
        "document": (
            "seq",
            "account",
            "kind",
            "issuer",
            "accreditation",
            "status",
            "issued",
            "signer",
            "leaf_hash",
            "details",
        )
    },
)

SEARCH_INDEXES = (
    "ix_outcomes_issuer",
    "ix_outcomes_accreditation",
    "ix_outcomes_certificate_code",
    "ix_outcomes_programme",
    "ix_outcomes_kind_status",
)
"""Indexes that serve the service's outcome searches and counts only: replaying the log never reads
by them, so an audit's replay database goes without them (each costs every outcome
an insert into one more B-tree). A migration that drops or alters one must allow for
its absence there."""

programmes = Table(
    "programmes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("school", String(64), nullable=False),
    Column("published_seq", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    info={
        "document": (
            "code",
            "version",
            "name",
            "level",
            "school",
            "total_credits",
            "max_study_years",
            "max_converted_share",
            "required",
        )
    },
)
"""Every published version of every programme (the payload as signed)."""

rules = Table(
    "rules",
    metadata,
    Column("rule", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("programme", String(64), nullable=True, index=True),
    Column("loaded_seq", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    info={"document": ("id", "version", "kind", "title", "effective_from", "when", "grant")},
)
"""Every loaded version of every conversion rule (the payload as signed)."""

conversions = Table(
    "conversions",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("account", String(64), nullable=False),
    Column("programme", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_conversions_account", "account", "programme"),
    info={
        "document": (
            "seq",
            "status",
            "granted",
            "signer",
            "leaf_hash",
            "programme",
            "programme_version",
            "rule",
            "rule_version",
            "requirement",
            "credits",
            "inputs",
            "title",
        )
    },
)
"""Granted exemptions and conversions, with their status."""

quota_usage = Table(
    "quota_usage",
    metadata,
    Column("accreditation", String(64), primary_key=True),
    Column("period_start", String(32), primary_key=True),
    Column("used", BigInteger, nullable=False),
)
"""Outcomes issued per accreditation with a quota and per quota period (by its start)."""

status_entries = Table(
    "status_entries",
    metadata,
    Column("list", Integer, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("assigned_seq", BigInteger),
)
"""The Bitstring Status List entry (list number, bit position) of each exported record.

``assigned_seq`` is the ``credential.status_assigned/1`` record that logged it; null
for an entry given before entries were logged, until the authority logs it."""
