"""`Trace`: everything the later stages know about one run of the model on one text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport.core.npz import NpzCodec


@dataclass
class Trace:
    """One text run through the model.

    Shapes, with ``n`` tokens, ``L`` layers, ``H`` heads and hidden size ``d``:
    ``attentions [L, H, n, n]`` (rows sum to 1 over the keys the query could see),
    ``hidden [L+1, n, d]`` (embeddings first), ``offsets [n, 2]`` (character span of each
    token in ``text``; ``(0, 0)`` for special tokens), ``special [n]``.

    ``logits`` is the model's output at the read position (``[C]`` for classifiers,
    ``[V]`` for causal LMs), or None for a model without a head.
    ``windows`` lists ``(start, stop)`` token ranges when the text was longer than the
    model and was run in overlapping windows; each query row then comes from the window
    in which it sits most centrally, and keys outside that window have weight 0.

    ``queries`` and ``keys`` ``[L, H, n, head_dim]`` are the vectors the attention scores are made
    from (`ModelCard.qk`: after rotary encoding, keys repeated to the query heads), kept only for
    a ``--with-qk`` export and a text of one window within ``[model] neuron_view_max_tokens``;
    None otherwise.
    """

    id: str
    text: str
    tokens: list[str]
    offsets: np.ndarray
    special: np.ndarray
    attentions: np.ndarray
    hidden: np.ndarray
    logits: np.ndarray | None = None
    label: str | None = None
    windows: list[tuple[int, int]] = field(default_factory=list)
    #: the row's data group (`[data] group_column`); like `label` and `id`, a fact of the row, not
    #: of the model run: a cached trace takes the row's
    group: str | None = None
    queries: np.ndarray | None = None
    keys: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.tokens)
        self.offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2)
        self.special = np.asarray(self.special, dtype=bool)
        self.attentions = np.asarray(self.attentions, dtype=np.float32)
        self.hidden = np.asarray(self.hidden, dtype=np.float32)
        checks = [
            ("offsets", self.offsets.shape[0], n),
            ("special", self.special.shape[0], n),
        ]
        for name, got, want in checks:
            if got != want:
                raise ValueError(f"Trace {self.id!r}: {name} has {got} rows for {want} tokens")
        if self.attentions.ndim != 4 or self.attentions.shape[2:] != (n, n):
            raise ValueError(
                f"Trace {self.id!r}: attentions must be [L, H, {n}, {n}], got {list(self.attentions.shape)}"
            )
        if self.hidden.ndim != 3 or self.hidden.shape[1] != n:
            raise ValueError(
                f"Trace {self.id!r}: hidden must be [L+1, {n}, d], got {list(self.hidden.shape)}"
            )
        if self.hidden.shape[0] != self.attentions.shape[0] + 1:
            raise ValueError(
                f"Trace {self.id!r}: hidden has {self.hidden.shape[0]} states for "
                f"{self.attentions.shape[0]} layers (want layers + 1)"
            )
        if self.logits is not None:
            self.logits = np.asarray(self.logits, dtype=np.float32).reshape(-1)
        self._check_qk()

    def _check_qk(self) -> None:
        if (self.queries is None) != (self.keys is None):
            raise ValueError(f"Trace {self.id!r}: queries and keys come together or not at all")
        if self.queries is None:
            return
        self.queries = np.asarray(self.queries, dtype=np.float32)
        self.keys = np.asarray(self.keys, dtype=np.float32)
        want = [*self.attentions.shape[:3]]
        for name, values in (("queries", self.queries), ("keys", self.keys)):
            if values.ndim != 4 or list(values.shape[:3]) != want:
                raise ValueError(
                    f"Trace {self.id!r}: {name} must be [{want[0]}, {want[1]}, {want[2]}, head_dim] "
                    f"like the attentions, got {list(values.shape)}"
                )
        if self.queries.shape != self.keys.shape:
            raise ValueError(
                f"Trace {self.id!r}: queries {list(self.queries.shape)} and keys "
                f"{list(self.keys.shape)} differ in shape"
            )

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    def to_bytes(self) -> bytes:
        """Serialise to an uncompressed .npz (`core.npz`: fast to write and to read back)."""
        return _CODEC.dumps(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Trace:
        stored = _CODEC.loads(data)
        stored["windows"] = [tuple(w) for w in stored.get("windows", ())]
        return cls(**stored)

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> Trace:
        return cls.from_bytes(Path(path).read_bytes())


_CODEC = NpzCodec(
    Trace,
    arrays=("offsets", "special", "attentions", "hidden", "logits", "queries", "keys"),
    meta=("id", "text", "tokens", "label", "group", "windows"),
)
