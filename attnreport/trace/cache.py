"""A content-addressed on-disk cache: traces, and the analysis results computed from them.

The key is a hash of the model file, the tokenizer, the options and the text, so
rebuilding a site after a template change re-runs no model, and any change that could
alter a number (new weights, another window size) misses the cache. An entry is one
file, written atomically; a damaged entry is a miss and is written again.

The layout, which existing caches rely on (changing it invalidates every user's cache)::

    <root>/<namespace>/<24 hex: sha256(salt + model key + options as sorted JSON)>/
        <first 2 hex of sha256(text)>/<sha256(text)>.<suffix>
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Generic, TypeVar

from attnreport.core.files import atomic_write
from attnreport.core.trace import Trace

V = TypeVar("V")


def default_cache_dir() -> Path:
    """$ATTNREPORT_CACHE, else $XDG_CACHE_HOME/attnreport, else ~/.cache/attnreport."""
    if os.environ.get("ATTNREPORT_CACHE"):
        return Path(os.environ["ATTNREPORT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "attnreport"


class ContentCache(Generic[V]):
    """Values of one kind (a namespace) for one model and set of options, one file per text.

    Subclasses say how a value becomes bytes and back (`encode`, `decode`) and which file
    suffix it gets; `decode` raises one of `damaged` for an entry it cannot read.
    """

    suffix = ""
    #: what `decode` raises for an unreadable entry: a miss, not a failed build
    damaged: tuple[type[BaseException], ...] = (ValueError,)

    def __init__(self, root: Path, namespace: str, model_key: str, options: dict, *, salt: str) -> None:
        #: identifies the model and options; `salt` keeps namespaces sharing a model apart
        self.model_key = hashlib.sha256(
            (salt + model_key + json.dumps(options, sort_keys=True)).encode()
        ).hexdigest()
        self.folder = Path(root) / namespace / self.model_key[:24]

    def encode(self, value: V) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> V:
        raise NotImplementedError

    def key(self, text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def path(self, text: str) -> Path:
        """The entry's file for `text` (it may not exist)."""
        key = self.key(text)
        return self.folder / key[:2] / f"{key}{self.suffix}"

    def get(self, text: str) -> V | None:
        """The cached value for `text`, or None (not cached, or damaged)."""
        try:
            data = self.path(text).read_bytes()
        except OSError:
            return None
        try:
            return self.decode(data)
        except self.damaged:
            return None

    def put(self, text: str, value: V) -> None:
        path = self.path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, self.encode(value))


class TraceCache(ContentCache[Trace]):
    """Traces, as npz bytes, under ``traces/``."""

    suffix = ".npz"
    damaged = (ValueError, KeyError, OSError, zipfile.BadZipFile)

    def __init__(self, root: Path, model_key: str, options: dict) -> None:
        # traces were cached before there were other namespaces: their key has no salt
        super().__init__(root, "traces", model_key, options, salt="")

    def encode(self, value: Trace) -> bytes:
        return value.to_bytes()

    def decode(self, data: bytes) -> Trace:
        return Trace.from_bytes(data)

    def put(self, trace: Trace) -> None:  # type: ignore[override]
        """Cache `trace` under its own text."""
        super().put(trace.text, trace)


class ResultCache(ContentCache[dict]):
    """JSON results keyed like traces (model, options, text): analysis that ran the model once."""

    suffix = ".json"
    damaged = (ValueError,)  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors

    def __init__(self, root: Path, namespace: str, model_key: str, options: dict) -> None:
        super().__init__(root, namespace, model_key, options, salt=namespace)

    def encode(self, value: dict) -> bytes:
        return json.dumps(value, sort_keys=True, allow_nan=False).encode("utf-8")

    def decode(self, data: bytes) -> dict:
        return json.loads(data.decode("utf-8"))
