"""`GenerationTrace`: everything the later stages know about one prompt run through a causal LM.

A generation report asks, for every token of the answer, "when the model wrote this, what was it
looking at, and how sure was it?". So a generation trace keeps, per step, the attention row of
the position that chose the token (not the n×n of a long prompt), the step's scores, and the
hidden state the logit lens reads; the prompt's own n×n attention only up to a length limit.

Positions: the prompt has ``n`` tokens and the answer ``T``; step ``t`` (0-based) chose answer
token ``t`` from the logits at position ``n - 1 + t``, whose query attends to keys
``0 .. n - 1 + t``. Rows are stored over all ``n + T - 1`` keys, zero past the query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport.core.npz import NpzCodec

#: why generation stopped
STOP_REASONS = ("eos", "max_new_tokens", "stop_string", "forced")
#: who wrote a turn of a chat
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One message of the chat the chat template wrapped: its role and where its content sits in
    the trace's `text` (``text[start:stop]``); `injected` for a system prompt the template put in
    itself because the chat had none (its default system prompt)."""

    role: str
    start: int
    stop: int
    injected: bool = False

    def to_dict(self) -> dict:
        return {"role": self.role, "start": self.start, "stop": self.stop, "injected": self.injected}


@dataclass
class GenerationTrace:
    """One prompt and its answer. Shapes, with ``L`` layers, ``H`` heads, hidden size ``d`` and
    ``k`` alternatives kept per step:

    - prompt: ``prompt_ids [n]``, ``prompt_offsets [n, 2]`` (character spans in `text`, ``(0, 0)``
      for special tokens), ``special [n]``, ``from_template [n]`` (the token came from the chat
      template, not from the user's prompt);
    - answer: ``ids [T]``, ``tokens`` (each token's own text), ``answer`` (the decoded answer);
    - per step: ``probability [T]`` and ``rank [T]`` of the chosen token (rank 0: the most likely),
      ``entropy [T]`` (nats) of the step's distribution, ``top_ids``/``top_probabilities [T, k]``
      and ``top_tokens`` (the alternatives, most likely first);
    - ``attentions [L, H, T, n + T - 1]``: the choosing position's attention rows;
    - ``prompt_attentions [L, H, n, n]`` or None (prompt longer than the trace's limit);
    - ``hidden [L + 1, T, d]``: hidden states of the choosing positions (embeddings first);
    - ``value_norms [L, H, n + T - 1]`` or None (an export without them): the norm ``‖v_j^h W_O^h‖``
      of what each key carries through each head (Kobayashi et al., 2020; the output projection's
      bias left out), so ``attentions * value_norms[:, :, None]`` is norm-weighted attention;
    - logit lens (None without ``lm_head.onnx``): ``lens_probability``/``lens_rank [L + 1, T]`` of
      the chosen token read at each hidden state, ``lens_top_ids``/``lens_top_probabilities
      [L + 1, T, k]`` and ``lens_top_tokens``.
    """

    id: str
    #: the user's prompt, as given
    prompt: str
    #: the text the tokenizer read: the prompt, wrapped by the chat template when there is one
    text: str
    prompt_tokens: list[str]
    prompt_ids: np.ndarray
    prompt_offsets: np.ndarray
    special: np.ndarray
    from_template: np.ndarray
    tokens: list[str]
    ids: np.ndarray
    answer: str
    probability: np.ndarray
    entropy: np.ndarray
    rank: np.ndarray
    top_ids: np.ndarray
    top_probabilities: np.ndarray
    top_tokens: list[list[str]]
    attentions: np.ndarray
    hidden: np.ndarray
    prompt_attentions: np.ndarray | None = None
    lens_probability: np.ndarray | None = None
    lens_rank: np.ndarray | None = None
    lens_top_ids: np.ndarray | None = None
    lens_top_probabilities: np.ndarray | None = None
    lens_top_tokens: list[list[list[str]]] | None = None
    value_norms: np.ndarray | None = None
    #: the answer was given (teacher-forced), not generated
    forced: bool = False
    stop_reason: str = "max_new_tokens"
    #: the chat template that wrapped the prompt (its name or source), None without one
    template: str | None = None
    label: str | None = None
    extra: dict = field(default_factory=dict)
    #: the chat's messages in `text`, in order (an injected default system prompt first, the last
    #: user turn's content last); empty without a chat template (and in traces older than turns)
    turns: list[Turn] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, t = len(self.prompt_tokens), len(self.tokens)
        self.prompt_ids = np.asarray(self.prompt_ids, dtype=np.int64).reshape(-1)
        self.prompt_offsets = np.asarray(self.prompt_offsets, dtype=np.int64).reshape(-1, 2)
        self.special = np.asarray(self.special, dtype=bool).reshape(-1)
        self.from_template = np.asarray(self.from_template, dtype=bool).reshape(-1)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        for name in ("probability", "entropy"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32).reshape(-1))
        self.rank = np.asarray(self.rank, dtype=np.int64).reshape(-1)
        self.top_ids = np.asarray(self.top_ids, dtype=np.int64).reshape(t, -1)
        self.top_probabilities = np.asarray(self.top_probabilities, dtype=np.float32).reshape(t, -1)
        self.attentions = np.asarray(self.attentions, dtype=np.float32)
        self.hidden = np.asarray(self.hidden, dtype=np.float32)
        where = f"GenerationTrace {self.id!r}"
        for name, got, want in [
            ("prompt_ids", len(self.prompt_ids), n),
            ("prompt_offsets", len(self.prompt_offsets), n),
            ("special", len(self.special), n),
            ("from_template", len(self.from_template), n),
            ("ids", len(self.ids), t),
            ("probability", len(self.probability), t),
            ("entropy", len(self.entropy), t),
            ("rank", len(self.rank), t),
            ("top_tokens", len(self.top_tokens), t),
        ]:
            if got != want:
                raise ValueError(f"{where}: {name} has {got} entries for {want} tokens")
        if n < 1:
            raise ValueError(f"{where}: the prompt has no tokens")
        keys = n + t - 1
        if self.attentions.ndim != 4 or self.attentions.shape[2:] != (t, keys):
            raise ValueError(
                f"{where}: attentions must be [L, H, {t}, {keys}] (steps x keys), "
                f"got {list(self.attentions.shape)}"
            )
        layers = self.attentions.shape[0]
        if self.hidden.ndim != 3 or self.hidden.shape[:2] != (layers + 1, t):
            raise ValueError(f"{where}: hidden must be [{layers + 1}, {t}, d], got {list(self.hidden.shape)}")
        if self.prompt_attentions is not None:
            self.prompt_attentions = np.asarray(self.prompt_attentions, dtype=np.float32)
            want = (layers, self.attentions.shape[1], n, n)
            if self.prompt_attentions.shape != want:
                got = list(self.prompt_attentions.shape)
                raise ValueError(f"{where}: prompt_attentions must be {list(want)}, got {got}")
        if self.value_norms is not None:
            self.value_norms = np.asarray(self.value_norms, dtype=np.float32)
            want = (layers, self.attentions.shape[1], keys)
            if self.value_norms.shape != want:
                got = list(self.value_norms.shape)
                raise ValueError(
                    f"{where}: value_norms must be {list(want)} (layers x heads x keys), got {got}"
                )
        if self.lens_probability is not None:
            self.lens_probability = np.asarray(self.lens_probability, dtype=np.float32)
            self.lens_rank = np.asarray(self.lens_rank, dtype=np.int64)
            self.lens_top_ids = np.asarray(self.lens_top_ids, dtype=np.int64)
            self.lens_top_probabilities = np.asarray(self.lens_top_probabilities, dtype=np.float32)
            for name in ("lens_probability", "lens_rank"):
                if getattr(self, name).shape != (layers + 1, t):
                    raise ValueError(f"{where}: {name} must be [{layers + 1}, {t}]")
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"{where}: stop_reason {self.stop_reason!r}; one of {', '.join(STOP_REASONS)}")
        self.turns = [Turn(**t) if isinstance(t, dict) else t for t in self.turns]
        for i, turn in enumerate(self.turns):
            if turn.role not in ROLES or not 0 <= turn.start <= turn.stop <= len(self.text):
                raise ValueError(
                    f"{where}: turn {i} is {turn.role!r} at {turn.start}..{turn.stop}; a role of "
                    f"{', '.join(ROLES)} inside the text's {len(self.text)} characters"
                )
            if i and turn.start < self.turns[i - 1].stop:
                raise ValueError(f"{where}: turn {i} starts before turn {i - 1} ends")

    @property
    def n_prompt(self) -> int:
        return len(self.prompt_tokens)

    @property
    def steps(self) -> int:
        return len(self.tokens)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    def to_bytes(self) -> bytes:
        """Serialise to an uncompressed .npz, like `Trace` (`core.npz`)."""
        return _CODEC.dumps(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> GenerationTrace:
        return cls(**_CODEC.loads(data))

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> GenerationTrace:
        return cls.from_bytes(Path(path).read_bytes())


_CODEC = NpzCodec(
    GenerationTrace,
    arrays=(
        "prompt_ids",
        "prompt_offsets",
        "special",
        "from_template",
        "ids",
        "probability",
        "entropy",
        "rank",
        "top_ids",
        "top_probabilities",
        "attentions",
        "hidden",
        # optional: left out when None
        "prompt_attentions",
        "lens_probability",
        "lens_rank",
        "lens_top_ids",
        "lens_top_probabilities",
        "value_norms",
    ),
    meta=(
        "id",
        "prompt",
        "text",
        "prompt_tokens",
        "tokens",
        "answer",
        "top_tokens",
        "lens_top_tokens",
        "forced",
        "stop_reason",
        "template",
        "label",
        "extra",
        "turns",
    ),
)
