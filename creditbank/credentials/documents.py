"""JSON-LD contexts bundled with creditbank, and a document loader that never fetches.

Credentials are canonicalised (RDF Dataset Canonicalization) against these
copies only. Sources, pinned: W3C ``https://www.w3.org/ns/credentials/v2`` and
``.../examples/v2`` (w3c/vc-data-model ``contexts/`` at 979c4af, W3C licence);
1EdTech ``https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json``
(1EdTech/openbadges-specification at 1af145f, 1EdTech licence).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from creditbank.errors import InputError

VC_V2 = "https://www.w3.org/ns/credentials/v2"
VC_EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"

BUNDLED = {
    VC_V2: "credentials-v2.jsonld",
    VC_EXAMPLES_V2: "credentials-examples-v2.jsonld",
    OB_V3: "ob-v3p0-context-3.0.3.json",
}


@cache
def context(url: str) -> dict[str, Any]:
    """The bundled JSON-LD document for a context URL.

    Raises:
        InputError: the context is not bundled (it is never fetched).
    """
    name = BUNDLED.get(url)
    if name is None:
        raise InputError(f"@context: {url} is not a bundled context; creditbank never fetches one")
    folder = resources.files("creditbank.credentials").joinpath("contexts")
    loaded: dict[str, Any] = json.loads(folder.joinpath(name).read_text("utf-8"))
    return loaded


def load_document(url: str, options: Any = None) -> dict[str, Any]:
    """A pyld document loader serving only the bundled contexts.

    Raises:
        InputError: any other URL.
    """
    return {"contextUrl": None, "documentUrl": url, "document": context(url)}
