"""Tokenisation with the `tokenizers` library alone, special tokens added by us.

We add the special tokens ourselves (the prefix and suffix the tokenizer's own
post-processor would add) so that a long text can be cut into windows that each
carry them, exactly as the model saw them in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.trace.sessions import load_tokenizer


@dataclass(frozen=True)
class Encoded:
    """A text's content tokens (no special tokens yet)."""

    ids: np.ndarray
    tokens: list[str]
    offsets: np.ndarray


class TextTokenizer:
    def __init__(self, folder: Path) -> None:
        self._tok = load_tokenizer(folder)
        probe = self._tok.encode("a", add_special_tokens=True)
        mask = probe.special_tokens_mask
        lead = 0
        while lead < len(mask) and mask[lead]:
            lead += 1
        tail = 0
        while tail < len(mask) - lead and mask[len(mask) - 1 - tail]:
            tail += 1
        self.prefix_ids = list(probe.ids[:lead])
        self.prefix_tokens = list(probe.tokens[:lead])
        self.suffix_ids = list(probe.ids[len(mask) - tail :]) if tail else []
        self.suffix_tokens = list(probe.tokens[len(mask) - tail :]) if tail else []

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=False)

    @property
    def largest_id(self) -> int:
        """The largest token id the tokenizer can produce (added tokens included)."""
        return max(self._tok.get_vocab(with_added_tokens=True).values())

    @property
    def special_ids(self) -> list[int]:
        """Ids of the tokenizer's added special tokens (never drawn as random probe tokens)."""
        return sorted(i for i, t in self._tok.get_added_tokens_decoder().items() if t.special)

    @property
    def n_special(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    def encode(self, text: str) -> Encoded:
        enc = self._tok.encode(text, add_special_tokens=False)
        return Encoded(
            ids=np.asarray(enc.ids, dtype=np.int64),
            tokens=list(enc.tokens),
            offsets=np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2),
        )

    @property
    def unk_token(self) -> str | None:
        """The token that stands for characters the vocabulary cannot spell ([UNK]); None for
        tokenizers that can spell anything (byte-level BPE)."""
        return getattr(self._tok.model, "unk_token", None) or None

    def token_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(int(token_id))
