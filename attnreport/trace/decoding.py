"""The decoding rules the generation loop asks at each step, and the options that choose them.

Small composable objects in the spirit of `transformers`' ``LogitsProcessor`` and
``StoppingCriteria``: logits processors change the scores the choice sees, a chooser picks the
token, stopping criteria name the reason an answer ends. The loop (`trace.generate.Generator`)
knows none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from attnreport.core.errors import ConfigError


class LogitsProcessor(Protocol):
    """Changes the scores the chooser sees: ``(ids [B, t] generated so far, logits [B, V]) -> logits``."""

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray: ...


class Chooser(Protocol):
    """Picks the next token of each row: ``logits [B, V] -> ids [B]``."""

    def __call__(self, logits: np.ndarray) -> np.ndarray: ...


class StoppingCriterion(Protocol):
    """Says why a row stops after its latest token (a `STOP_REASONS` value), or None."""

    def __call__(self, ids: Sequence[int], text: str) -> str | None: ...


class Greedy:
    """The most likely token; ties go to the smallest id (deterministic)."""

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return np.argmax(logits, axis=-1)


@dataclass(frozen=True)
class SuppressTokens:
    """Never choose these ids (e.g. a pad token)."""

    ids: tuple[int, ...]

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        logits = logits.copy()
        logits[:, list(self.ids)] = -np.inf
        return logits


@dataclass(frozen=True)
class MaxNewTokens:
    limit: int

    def __call__(self, ids: Sequence[int], text: str) -> str | None:
        return "max_new_tokens" if len(ids) >= self.limit else None


@dataclass(frozen=True)
class EosToken:
    ids: tuple[int, ...]

    def __call__(self, ids: Sequence[int], text: str) -> str | None:
        return "eos" if ids and ids[-1] in self.ids else None


@dataclass(frozen=True)
class StopStrings:
    """Stop once the decoded answer contains one of `strings` (the token that completes it is kept,
    as in `transformers`' ``stop_strings``)."""

    strings: tuple[str, ...]

    def __call__(self, ids: Sequence[int], text: str) -> str | None:
        return "stop_string" if any(s in text for s in self.strings) else None


@dataclass(frozen=True)
class GenerationOptions:
    """How prompts are answered. Every field changes results, so all of them key the cache."""

    max_new_tokens: int = 32
    #: stop once the answer contains one of these
    stop: tuple[str, ...] = ()
    #: stop at the model's end-of-sequence tokens (the manifest's ``eos_token_ids``)
    eos: bool = True
    #: alternatives kept per step (and per layer in the logit lens)
    top_k: int = 5
    #: keep the prompt's own n x n attention for prompts of at most this many tokens
    prompt_attention_limit: int = 512
    #: wrap each prompt in the checkpoint's chat template (a user message + generation prompt)
    chat_template: bool = False
    #: a system message before the user's, with `chat_template` (a chat's own system message wins)
    system: str | None = None
    #: read the logit lens (needs lm_head.onnx)
    lens: bool = True
    #: token ids never chosen (their scores still count in probability, rank and entropy)
    suppress: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "suppress", tuple(int(i) for i in self.suppress))
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.prompt_attention_limit < 0:
            raise ConfigError("prompt_attention_limit must be 0 or more")
        if self.system is not None and not self.chat_template:
            raise ConfigError("a system message needs chat_template = true")

    def processors(self) -> list[LogitsProcessor]:
        """The logits processors, applied in order before the choice."""
        return [SuppressTokens(self.suppress)] if self.suppress else []

    def stopping(self, eos_ids: Sequence[int]) -> list[StoppingCriterion]:
        """The stopping criteria, in the order that names the reason when several fire at once."""
        rules: list[StoppingCriterion] = []
        if self.eos and eos_ids:
            rules.append(EosToken(tuple(int(i) for i in eos_ids)))
        if self.stop:
            rules.append(StopStrings(self.stop))
        rules.append(MaxNewTokens(self.max_new_tokens))
        return rules

    def to_dict(self) -> dict:
        return asdict(self)
