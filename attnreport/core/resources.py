"""Where the shipped templates, themes and examples are: inside the wheel, or in a checkout."""

from __future__ import annotations

from pathlib import Path

from attnreport.core.errors import BuildError

_PACKAGE = Path(__file__).resolve().parent.parent


def bundled(name: str) -> Path:
    """The folder `name` (templates, themes, examples) of this installation."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise BuildError(f"the {name}/ folder of attnreport is missing; reinstall attnreport")
