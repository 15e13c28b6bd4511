"""The documentation's worked examples are what the code produces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docs_example import example
from .shell import Session, blocks

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_ledger_format_worked_example_is_current() -> None:
    assert example() in (DOCS / "ledger-format.md").read_text(encoding="utf-8")


def test_worked_example_verifies_from_the_document_alone() -> None:
    """An independent check of the example with hashlib and the vkey only."""
    import base64
    import hashlib

    from creditbank.ledger.proof_file import verify_proof_file

    text = (DOCS / "ledger-format.md").read_text(encoding="utf-8")
    vkey = text.split("log vkey", 1)[1].split()[0]
    proof = text.rsplit("```text\nc2sp.org/tlog-proof@v1", 1)[1].split("```", 1)[0]
    result = verify_proof_file("c2sp.org/tlog-proof@v1" + proof, vkey)
    leaf_hash = re.search(r"record \d+ leaf hash\s+(\S+)", text).group(1)  # type: ignore[union-attr]
    assert hashlib.sha256(b"\x00" + result.leaf).hexdigest() == leaf_hash
    extra = proof.split("extra ", 1)[1].split()[0]
    assert base64.b64decode(extra) == result.leaf


def test_school_guide_python_example_runs(
    tmp_path: Path, monkeypatch: object, capsys: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.chdir(tmp_path)
    text = (DOCS / "guide-schools-and-registrars.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "guide-schools-and-registrars.md", "exec"), {})
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "acc-szpt" in out
    assert "refused: accreditation acc-szpt does not cover programme P460305" in out
    assert "['course']" in out


def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> Session:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'creditbank.db'}"
    return Session(tmp_path, url, {"CREDITBANK_PASSPHRASE": "docs passphrase"}, **kwargs)  # type: ignore[arg-type]


def test_auditor_guide_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shell = session(tmp_path, monkeypatch)
    assert shell.creditbank("demo", "--learners", "3", "--records", "12")[0] == 0
    shell.run(blocks((DOCS / "guide-auditors.md").read_text(encoding="utf-8"))[0])


def test_credentials_guide_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import fetch

    url = f"sqlite:///{tmp_path / 'creditbank.db'}"

    def resolve(word: str) -> str:
        if word != "ACCOUNT":
            return word
        return str(fetch(url, "SELECT account FROM outcomes WHERE seq = 25")[0][0])

    shell = session(tmp_path, monkeypatch, resolve=resolve)
    shell.run(blocks((DOCS / "credentials.md").read_text(encoding="utf-8"))[0])


def test_registrar_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from creditbank.ledger.keys import VerifyKey

    from .conftest import fetch

    url = f"sqlite:///{tmp_path / 'creditbank.db'}"

    def resolve(word: str) -> str:
        if word == "ACCOUNT":
            return str(fetch(url, "SELECT account FROM accounts")[0][0])
        if word == "SEQ":
            return str(fetch(url, "SELECT seq FROM outcomes")[0][0])
        if word == "KEY_ID":
            did = (tmp_path / "school-2027.pem.pub").read_text().strip()
            return VerifyKey.from_did_key(did).key_id
        return word

    shell = session(tmp_path, monkeypatch, resolve=resolve)
    assert shell.creditbank("init", "--origin", "guide.example.edu.cn/ledger")[0] == 0
    text = (DOCS / "guide-schools-and-registrars.md").read_text(encoding="utf-8")
    shell.run(blocks(text)[0])
    assert shell.creditbank("audit")[0] == 0
