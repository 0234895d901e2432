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


def unique_slugs(identifiers: list[str]) -> list[str]:
    """One slug per id, unique even under case-insensitive file systems."""
    result = []
    seen: set[str] = set()
    for identifier in identifiers:
        slug = slugify(identifier)
        if not slug or slug in RESERVED or slug != identifier or slug in seen:
            digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            slug = f"{slug or 'example'}-{digest}"
        while slug in seen:
            slug = f"{slug}-x"
        seen.add(slug)
        result.append(slug)
    return result
