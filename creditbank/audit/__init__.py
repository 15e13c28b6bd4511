"""The auditor (督导评估): full and incremental audits that replay every decision.

An audit checks integrity (:mod:`creditbank.ledger.verify`), authority and
decisions record by record (:mod:`creditbank.audit.replay`), projection drift
(:mod:`creditbank.audit.drift`) and, from a pinned state
(:mod:`creditbank.audit.state`), that the log only grew. :mod:`creditbank.audit.report`
renders and signs what it found; :mod:`creditbank.audit.acceptance` sets apart the
findings the auditor has accepted.
"""

from creditbank.audit.acceptance import Acceptance, read_acceptances
from creditbank.audit.report import AuditReport, sign_report, verify_report
from creditbank.audit.run import Audit
from creditbank.audit.split_view import (
    SplitView,
    compare_checkpoints,
    compare_with_proof,
    held_checkpoint,
    pinned_vkey,
)
from creditbank.audit.state import AuditState

__all__ = [
    "Acceptance",
    "Audit",
    "AuditReport",
    "AuditState",
    "SplitView",
    "compare_checkpoints",
    "compare_with_proof",
    "held_checkpoint",
    "pinned_vkey",
    "read_acceptances",
    "sign_report",
    "verify_report",
]
