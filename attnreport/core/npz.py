"""One npz codec for the dataclasses the stages hand on (`Trace`, `GenerationTrace`).

A value is one uncompressed ``.npz`` (fast to write and to read back): a member ``meta`` holds the
plain fields as UTF-8 JSON (a dataclass among them as its fields: the caller makes it again), then
one member per array field, in the order the codec names them; an array field that is None is
left out, and a field missing from a file (written before the field existed) takes its default.
The codec names every field of its class, once, as an array or as meta: a field added to the class
and not to its codec is an error when the module loads, not a value silently dropped from the cache.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, fields, is_dataclass
from typing import Any

import numpy as np


class NpzCodec:
    """`cls`'s instances as npz bytes and back: `arrays` become members, `meta` JSON."""

    def __init__(self, cls: type, *, arrays: tuple[str, ...], meta: tuple[str, ...]) -> None:
        named = [*arrays, *meta]
        known = [f.name for f in fields(cls)]
        missing = [name for name in known if name not in named]
        unknown = [name for name in named if name not in known]
        if missing or unknown or len(set(named)) != len(named):
            raise TypeError(
                f"NpzCodec of {cls.__name__}: every field once as an array or as meta; "
                f"not named: {missing}, not fields: {unknown}"
            )
        self.cls, self.arrays, self.meta = cls, tuple(arrays), tuple(meta)

    def dumps(self, value) -> bytes:
        meta = {name: getattr(value, name) for name in self.meta}
        arrays = {name: getattr(value, name) for name in self.arrays}
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta, default=_fields).encode("utf-8"), dtype=np.uint8),
            **{name: a for name, a in arrays.items() if a is not None},
        )
        return buf.getvalue()

    def loads(self, data: bytes) -> dict[str, Any]:
        """The fields stored in `data` by name (the caller makes the instance: a field that JSON
        cannot hold as it was, such as a tuple, is its to restore)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            stored = json.loads(z["meta"].tobytes().decode("utf-8"))
            arrays = {name: z[name] for name in self.arrays if name in z.files}
        return {name: stored[name] for name in self.meta if name in stored} | arrays


def _fields(value) -> dict:
    """A dataclass instance in a meta field, as JSON writes it: its fields by name."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
