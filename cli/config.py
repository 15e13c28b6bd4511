"""The optional configuration file: defaults for the global options.

``creditbank.toml`` in the working folder, or the file ``$CREDITBANK_CONFIG``
names, may set ``db`` (a database URL) and ``passphrase_file``. Flags win over
environment variables, which win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from creditbank.documents import read_toml
from creditbank.errors import InputError

from .output import BadInputError

CONFIG_ENV = "CREDITBANK_CONFIG"
CONFIG_FILE = "creditbank.toml"
KEYS = ("db", "passphrase_file")


def load_config() -> dict[str, Any]:
    """The configuration in force (empty when there is no file).

    Raises:
        BadInputError: an unreadable file, bad TOML, or an unknown or non-text key.
    """
    named = os.environ.get(CONFIG_ENV)
    path = Path(named) if named else Path(CONFIG_FILE)
    if not path.exists():
        if named:
            raise BadInputError(f"${CONFIG_ENV}: no file {path}")
        return {}
    try:
        config = read_toml(path)
    except InputError as e:
        raise BadInputError(f"cannot read the configuration: {e}") from e
    for key, value in config.items():
        if key not in KEYS:
            raise BadInputError(f"{path}: unknown setting {key!r} (known: {', '.join(KEYS)})")
        if not isinstance(value, str):
            raise BadInputError(f"{path}: {key} must be text")
    return config
