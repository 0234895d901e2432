"""The answer as a value function over the prompt's units, teacher-forced: the attributions' model.

``ForcedAnswer(generator, trace, units)`` is callable on a boolean mask array ``[m, p]`` over the
units of the prompt (True = present; a unit may also hold answer positions: "the answer so far",
which by causality only moves the tokens after it): the absent units' tokens are replaced by the baseline
token, the prompt is followed by the answer the model wrote (teacher forcing), and one pass of the
model scores every answer token at once. So a coalition costs one model pass, whichever and
however many answer tokens are explained: the log-probability of each written token and of its
top-k alternatives (for the contrasts), at every step.

Which graph: ``scorer.onnx`` when the export has it (`attnreport.export.scorer`: no attention or
hidden-state output, logits only at the positions that chose the answer), run in chunks of the
generator's ``prefill_chunk`` positions against its KV cache, so a pass holds the cache and one
chunk's attention scores: memory linear in the prompt. Exports made before it use ``decoder.onnx``
in one run (empty cache), which also computes every layer's ``n x n`` attention and every
position's logits, and so needs memory quadratic in the prompt.

Replacing, not removing: removing tokens would shift every later position, so the answer's
tokens would no longer be read where they were written; the baseline token is declared with
every number in report.json, as the classifiers' mask token is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnreport.core.errors import ConfigError
from attnreport.core.generation import GenerationTrace

#: bytes one batch may hold: with ``decoder.onnx``, its logits (``rows x positions x vocabulary``
#: floats); with ``scorer.onnx``, each row's KV cache (twice: a run returns the grown cache beside
#: the one it read), one chunk's attention scores and weights, and the answer's logits
LOGIT_BUDGET = 256 * 2**20


@dataclass(frozen=True)
class ForcedScores:
    """What one batch of coalitions gives: log-probabilities of the answer's tokens."""

    #: ``[m, T]``: of the token the model wrote at each step
    chosen: np.ndarray
    #: ``[m, T, k]``: of that step's top-k alternatives (`GenerationTrace.top_ids`)
    alternatives: np.ndarray
    #: ``[m, E]``: of each asked-for foil, at its step (`ForcedAnswer.foils`)
    requested: np.ndarray


def baseline_token(card, token_of) -> tuple[str, int]:
    """The token that stands in for an absent one: the model's mask token, else its padding token
    (id 0 when it declares none). `token_of(id)` names a token id."""
    mask_id = card.extra.get("mask_token_id")
    if mask_id is not None:
        return str(card.extra.get("mask_token")), int(mask_id)
    pad = int(card.extra.get("pad_token_id") or 0)
    return token_of(pad) or str(pad), pad


def prompt_players(trace: GenerationTrace) -> list[np.ndarray]:
    """One unit per token of the user's prompt (neither special nor the chat template's)."""
    content = ~(np.asarray(trace.special, dtype=bool) | np.asarray(trace.from_template, dtype=bool))
    return [np.array([i]) for i in np.flatnonzero(content)]


class ForcedAnswer:
    """f(mask) = every answer token's log-probability with the absent units' tokens replaced."""

    def __init__(
        self,
        generator,
        trace: GenerationTrace,
        units: list[np.ndarray] | None = None,
        *,
        foils: Sequence[tuple[int, int]] = (),
        batch_size: int = 32,
    ) -> None:
        if trace.steps == 0:
            raise ConfigError(f"prompt {trace.id!r} has an empty answer: nothing to attribute")
        self.units = (
            prompt_players(trace) if units is None else [np.asarray(u, dtype=np.int64) for u in units]
        )
        self.players = len(self.units)
        covered = np.concatenate(self.units) if self.units else np.zeros(0, dtype=np.int64)
        if len(covered) and (covered.min() < 0 or covered.max() >= trace.n_prompt + trace.steps - 1):
            raise ValueError(f"units must index the prompt and the answer's first {trace.steps - 1} tokens")
        self.generator = generator
        self.ids = np.concatenate([trace.prompt_ids, trace.ids[:-1]]).astype(np.int64)
        self.n = trace.n_prompt
        self.steps = trace.steps
        self.chosen = np.asarray(trace.ids, dtype=np.int64)
        self.top = np.asarray(trace.top_ids, dtype=np.int64).reshape(trace.steps, -1)
        #: (step, token id) pairs whose log-probabilities are also returned: asked-for contrasts
        self.foils = [(int(t), int(i)) for t, i in foils]
        if any(not 0 <= t < trace.steps for t, _ in self.foils):
            raise ValueError(f"foil steps must lie in the answer's {trace.steps} steps")
        self.baseline, self.baseline_id = baseline_token(generator.card, generator.tokenizer.id_to_token)
        self.scorer = generator.scorer
        card, graphs = generator.card, generator.graphs
        n, vocabulary = len(self.ids), graphs.vocab_size
        if self.scorer is not None:
            self.chunk = generator.prefill_chunk
            cache = n * card.layers * 2 * graphs.kv_heads * graphs.head_dim * 4
            scores = card.heads * min(self.chunk, n) * n * 4
            per_row = 2 * cache + 2 * scores + self.steps * vocabulary * 4
        else:
            per_row = n * vocabulary * 4
        self.batch_size = max(1, min(batch_size, LOGIT_BUDGET // per_row))
        self.calls = 0
        self.rows = 0

    def __call__(self, masks: np.ndarray) -> ForcedScores:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.players:
            raise ValueError(f"masks must be [m, {self.players}], got {list(masks.shape)}")
        m, T = len(masks), self.steps
        chosen = np.empty((m, T))
        alternatives = np.empty((m, T, self.top.shape[1]))
        requested = np.empty((m, len(self.foils)))
        foil_steps = np.array([t for t, _ in self.foils], dtype=np.int64)
        foil_ids = np.array([i for _, i in self.foils], dtype=np.int64)
        reading = np.arange(self.n - 1, self.n - 1 + T)  # the positions that chose each answer token
        for start in range(0, m, self.batch_size):
            chunk = masks[start : start + self.batch_size]
            ids = np.repeat(self.ids[None], len(chunk), axis=0)
            for j, unit in enumerate(self.units):
                ids[np.ix_(~chunk[:, j], unit)] = self.baseline_id
            logits = self._logits(ids, reading).astype(np.float64)  # [b, T, V]
            top = logits.max(axis=-1, keepdims=True)
            log_z = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
            rows = slice(start, start + len(chunk))
            chosen[rows] = np.take_along_axis(logits, self.chosen[None, :, None], axis=-1)[..., 0] - log_z
            picked = np.take_along_axis(
                logits, np.broadcast_to(self.top, (len(chunk), *self.top.shape)), axis=-1
            )
            alternatives[rows] = picked - log_z[..., None]
            requested[rows] = logits[:, foil_steps, foil_ids] - log_z[:, foil_steps]
            self.calls += 1
            self.rows += len(chunk)
        return ForcedScores(chosen=chosen, alternatives=alternatives, requested=requested)

    def token_of(self, token_id: int) -> str:
        """A token id as text, decoded as the generation's own tokens and alternatives are."""
        return self.generator.tokenizer.decode([int(token_id)], skip_special_tokens=False)

    def _logits(self, ids: np.ndarray, reading: np.ndarray) -> np.ndarray:
        """The logits ``[b, T, V]`` at the positions `reading` of whole sequences `ids`: one
        decoder.onnx run (an empty cache), or scorer.onnx chunk by chunk against its cache."""
        g = self.generator
        if self.scorer is None:
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), **g.empty_past(len(ids))}
            (logits,) = g.session.run(["logits"], feeds)
            return logits[:, reading]
        past = g.empty_past(len(ids), self.scorer)
        outputs = ["logits", *g.graphs.present_names]
        got = []
        for start in range(0, ids.shape[1], self.chunk):
            end = min(ids.shape[1], start + self.chunk)
            wanted = reading[(reading >= start) & (reading < end)] - start
            # at least one position a run: a chunk before the answer asks for its last, unread
            positions = wanted if len(wanted) else np.array([end - start - 1])
            feeds = {
                "input_ids": ids[:, start:end],
                "attention_mask": np.ones((len(ids), end), dtype=np.int64),
                "logit_positions": positions.astype(np.int64),
                **past,
            }
            logits, *present = self.scorer.run(outputs, feeds)
            past = dict(zip(g.graphs.past_names, present, strict=True))
            if len(wanted):
                got.append(logits)
        return np.concatenate(got, axis=1)
