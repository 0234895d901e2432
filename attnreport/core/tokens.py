"""What a reader sees of a token: the text it covers, read from its offsets; shared by both traces
(a classifier's `Trace` and a generation trace's prompt)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def display_tokens(text: str, tokens: Sequence[str], offsets: Iterable, special: Iterable) -> list[str]:
    """Each token as the span of `text` its offsets ``(start, stop)`` cover (a byte-level BPE's
    "Ġw" reads " w"); a special token, or one that covers no text, as its own name."""
    return [
        token if is_special or stop <= start else text[start:stop]
        for token, (start, stop), is_special in zip(tokens, offsets, special, strict=True)
    ]
