"""A content-addressed on-disk cache of traces.

The key is a hash of the model file, the tokenizer, the tracing options and the text, so
rebuilding a site after a template change re-runs no model, and any change that could
alter a number (new weights, another window size) misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from attnreport.core.files import atomic_write
from attnreport.core.trace import Trace


def default_cache_dir() -> Path:
    """$ATTNREPORT_CACHE, else $XDG_CACHE_HOME/attnreport, else ~/.cache/attnreport."""
    if os.environ.get("ATTNREPORT_CACHE"):
        return Path(os.environ["ATTNREPORT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "attnreport"


class TraceCache:
    def __init__(self, root: Path, model_key: str, options: dict) -> None:
        self.model_key = hashlib.sha256(
            (model_key + json.dumps(options, sort_keys=True)).encode()
        ).hexdigest()
        self.folder = Path(root) / "traces" / self.model_key[:24]

    def key(self, text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, text: str) -> Trace | None:
        path = self._path(self.key(text))
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return Trace.from_bytes(data)
        except (ValueError, KeyError, OSError):
            return None  # a damaged entry is a miss; it is rewritten

    def put(self, trace: Trace) -> None:
        path = self._path(self.key(trace.text))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, trace.to_bytes())


class ResultCache:
    """JSON results keyed like traces (model, options, text): analysis that ran the model once."""

    def __init__(self, root: Path, namespace: str, model_key: str, options: dict) -> None:
        self.model_key = hashlib.sha256(
            (namespace + model_key + json.dumps(options, sort_keys=True)).encode()
        ).hexdigest()
        self.folder = Path(root) / namespace / self.model_key[:24]

    def _path(self, text: str) -> Path:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / key[:2] / f"{key}.json"

    def get(self, text: str) -> dict | None:
        try:
            return json.loads(self._path(text).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, text: str, value: dict) -> None:
        path = self._path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(value, sort_keys=True, allow_nan=False).encode("utf-8"))
