"""Safe, unique file names for example pages, whatever the example ids are.

Ids come from user data: they may hold slashes, dots, reserved device names or differ
only in case. A slug is lower-case ASCII letters, digits and dashes; when that loses
information, a short hash of the id keeps it unique.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    "index",
    "report",
    "assets",
    "examples",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}
MAX_LENGTH = 48


def slugify(identifier: str) -> str:
    text = unicodedata.normalize("NFKD", identifier).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_LENGTH].strip("-")
    return slug


class SlugMaker:
    """Hands out slugs one id at a time (ids stream in), each unique among those given."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, identifier: str) -> str:
        slug = slugify(identifier)
        if not slug or slug in RESERVED or slug != identifier or slug in self._seen:
            digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            slug = f"{slug or 'example'}-{digest}"
        while slug in self._seen:
            slug = f"{slug}-x"
        self._seen.add(slug)
        return slug
