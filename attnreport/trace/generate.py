"""Generation with a KV cache in onnxruntime: one `GenerationTrace` per prompt.

Over 400 lines because the loop, its batching and its cache are one concept; the decoding
rules and options live in `trace.decoding`.

One loop (`Generator`) that knows no decoding rule: a batch of prompts is left-padded (so every
prompt's next token is read from the same last column), prefilled through ``decoder.onnx`` in
chunks, then decoded one token per step against the cache. Each step asks the rules: logits
processors (`LogitsProcessor`: change the scores the choice sees), a chooser (`Greedy`), and
stopping criteria (`StoppingCriterion`: `EosToken`, `StopStrings`, `MaxNewTokens`), in the spirit of
`transformers`' ``LogitsProcessor`` and ``StoppingCriteria``. Scores (probability, rank, entropy,
top-k, the logit lens) are always of the model's own distribution, never the processed one.

Forced decoding (a given `completion`) runs prompt + completion once, teacher-forced, and reads
the same outputs at the positions that choose each completion token.

What is kept per prompt, and so the memory per prompt: the attention rows of the choosing
positions ``[L, H, T, n + T - 1]``, their hidden states, the scores, the keys' value norms ``[L, H,
n + T - 1]`` (each run returns those of the keys it adds to the cache), and the prompt's own ``n x n``
attention only up to `GenerationOptions.prompt_attention_limit`; the KV cache while it runs; and
one prefill chunk's outputs (``[B, L, H, chunk, n]``), so memory grows linearly with the prompt.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport.core.errors import ConfigError, InputError
from attnreport.core.generation import GenerationTrace, Turn
from attnreport.core.modelcard import ModelCard
from attnreport.trace.batching import DEFAULT_BATCH_BYTES, RowCost, plan_batches
from attnreport.trace.cache import ContentCache, default_cache_dir
from attnreport.trace.chat_template import ChatTemplate
from attnreport.trace.decoding import GenerationOptions, Greedy
from attnreport.trace.lens import LogitLens, Scores, step_scores
from attnreport.trace.sessions import default_providers, load_tokenizer, model_file, model_key, open_session

CHUNK = 64


@dataclass(frozen=True)
class Prompt:
    """One prompt to answer; with a `completion` (a text, or token ids exactly as a generation
    chose them), the answer is given and teacher-forced. `history` holds a chat's earlier messages
    as (role, content) pairs, the user's `prompt` being the last message (chat templates only)."""

    id: str
    prompt: str
    completion: str | tuple[int, ...] | None = None
    label: str | None = None
    history: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.completion is not None and not isinstance(self.completion, str):
            object.__setattr__(self, "completion", tuple(int(i) for i in self.completion))
        object.__setattr__(self, "history", tuple((str(r), str(c)) for r, c in self.history))

    def messages(self, system: str | None = None) -> list[dict]:
        """The chat to render: `system` first when the history has no system message of its own."""
        head = [{"role": "system", "content": system}] if system is not None else []
        if self.history and self.history[0][0] == "system":
            head = []
        return [
            *head,
            *({"role": r, "content": c} for r, c in self.history),
            {"role": "user", "content": self.prompt},
        ]


# ---------------------------------------------------------------------------- cache


class GenerationCache(ContentCache[GenerationTrace]):
    """Generation traces, as npz bytes, under ``generations/``: key = model + options + prompt
    (+ completion)."""

    suffix = ".npz"
    damaged = (ValueError, KeyError, OSError, TypeError, zipfile.BadZipFile)

    def __init__(self, root: Path, model_key: str, options: dict) -> None:
        super().__init__(root, "generations", model_key, options, salt="generations")

    @staticmethod
    def text_key(prompt: Prompt) -> str:
        completion = prompt.completion
        key = [prompt.prompt, completion if isinstance(completion, str | None) else list(completion)]
        if prompt.history:  # a plain prompt's key is as it was before chats
            key.append([list(m) for m in prompt.history])
        return json.dumps(key)

    def encode(self, value: GenerationTrace) -> bytes:
        return value.to_bytes()

    def decode(self, data: bytes) -> GenerationTrace:
        return GenerationTrace.from_bytes(data)


# ---------------------------------------------------------------------------- the loop


@dataclass
class GenerationStats:
    generated: int = 0
    cached: int = 0
    #: decoder.onnx runs (prefill chunks + steps)
    runs: int = 0
    new_tokens: int = 0
    providers: list[str] = field(default_factory=list)


@dataclass
class _Encoded:
    prompt: Prompt
    text: str
    ids: np.ndarray
    tokens: list[str]
    offsets: np.ndarray
    special: np.ndarray
    from_template: np.ndarray
    completion: np.ndarray | None
    content_span: tuple[int, int] | None
    turns: list[Turn] = field(default_factory=list)


class _Row:
    """What one prompt keeps while its batch runs."""

    def __init__(self, enc: _Encoded, pad: int, keep_prompt: bool, layers: int, heads: int) -> None:
        self.enc = enc
        self.pad = pad
        n = len(enc.ids)
        self.prompt_attentions = np.zeros((layers, heads, n, n), np.float32) if keep_prompt else None
        self.ids: list[int] = []
        self.attentions: list[np.ndarray] = []
        self.hidden: list[np.ndarray] = []
        #: the value norms of the row's keys, in key order, as runs return them: ``[L, H, k]`` each
        self.value_norms: list[np.ndarray] = []
        self.scores: list[Scores] = []
        self.stop_reason: str | None = None


class Generator:
    """Answers prompts with the generation graphs of `folder` (an attnreport export of a causal LM).

    ``Generator(folder).generate(prompts, options)`` yields one `GenerationTrace` per `Prompt`, in
    input order. Up to `batch_size` prompts of similar length run together, left-padded, within
    `batch_bytes` of estimated memory (`trace.batching`); the prefill
    runs `prefill_chunk` positions at a time (bounding the memory of a long prompt's attention).
    """

    def __init__(
        self,
        folder: Path,
        *,
        batch_size: int = 8,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        prefill_chunk: int = 256,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        #: onnxruntime's intra-op threads (None: its default, every core); a Dask worker sets its own
        self.threads = threads
        self.card = ModelCard.load(self.folder)
        if self.card.generation is None:
            raise ConfigError(
                f"{self.folder}: no generation graphs (decoder.onnx); export a causal LM with "
                f"`attnreport export CHECKPOINT -o DIR` again"
            )
        self.graphs = self.card.generation
        for name in filter(None, (self.graphs.decoder, self.graphs.lm_head, self.graphs.scorer)):
            model_file(self.folder, name)  # inside the folder and a file, or a one-line error
        if batch_size < 1 or prefill_chunk < 1:
            raise ConfigError("batch_size and prefill_chunk must be at least 1")
        self.tokenizer = load_tokenizer(self.folder)
        largest = max(self.tokenizer.get_vocab(with_added_tokens=True).values())
        if largest >= self.graphs.vocab_size:
            raise ConfigError(
                f"{self.folder}: tokenizer.json has token id {largest} but the model's embedding "
                f"has {self.graphs.vocab_size} rows; the tokenizer is not this model's: export it again"
            )
        self.special_ids = {i for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special}
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.prefill_chunk = prefill_chunk
        self.row_cost = RowCost(
            layers=self.card.layers,
            heads=self.card.heads,
            kv_heads=self.graphs.kv_heads,
            head_dim=self.graphs.head_dim,
            vocab=self.graphs.vocab_size,
            chunk=prefill_chunk,
        )
        self.pad_id = int(self.card.extra.get("pad_token_id") or 0)
        self.providers = list(providers) if providers is not None else default_providers()
        self.stats = GenerationStats(providers=self.providers)
        self.use_cache = use_cache
        self.cache_dir = cache_dir
        self._session = None
        self._scorer = None
        self._lens: LogitLens | None = None
        self._template: ChatTemplate | None | bool = False
        self._key: str | None = None

    # -- resources, made on first use (a fully cached build makes no session)

    @property
    def session(self):
        if self._session is None:
            self._session = open_session(
                self.folder,
                self.graphs.decoder,
                providers=self.providers,
                threads=self.threads,
                spin=False,
                arena=False,  # prefill chunks grow with the cache: an arena keeps the largest
            )
            self._outputs = [o.name for o in self._session.get_outputs()]
        return self._session

    @property
    def scorer(self):
        """The session of the attention-free graph for forced runs (``scorer.onnx``: logits at the
        asked positions and the cache, `attnreport.export.scorer`), or None for exports made
        before it: forced runs then use `session`."""
        if self._scorer is None and self.graphs.scorer:
            self._scorer = open_session(
                self.folder,
                self.graphs.scorer,
                providers=self.providers,
                threads=self.threads,
                spin=False,  # the arena kept: without it a forced run's peak was higher
            )
        return self._scorer

    @property
    def lens(self) -> LogitLens | None:
        if self._lens is None and self.graphs.lm_head:
            self._lens = LogitLens(
                self.folder, self.graphs.lm_head, providers=self.providers, threads=self.threads, spin=False
            )
        return self._lens

    @property
    def template(self) -> ChatTemplate | None:
        if self._template is False:
            self._template = ChatTemplate.from_folder(self.folder)
        return self._template  # type: ignore[return-value]

    def model_key(self) -> str:
        """Identifies the graphs, weights, tokenizer and chat template: the cache's model key.
        (External weight files are covered by the manifest's weight hash and dtype.)"""
        if self._key is None:
            graphs = [self.graphs.decoder, self.graphs.lm_head, self.graphs.scorer]
            self._key = model_key(self.folder, self.card, graphs)
        return self._key

    def cache_path(self, prompt: Prompt, options: GenerationOptions) -> Path | None:
        """Where `prompt`'s answer under `options` is (or would be) cached; None without a cache."""
        cache = self._cache(options)
        return None if cache is None else cache.path(cache.text_key(prompt))

    def _cache(self, options: GenerationOptions) -> GenerationCache | None:
        if not self.use_cache:
            return None
        return GenerationCache(self.cache_dir or default_cache_dir(), self.model_key(), options.to_dict())

    # -- the public calls

    def generate(
        self, prompts: Iterable[Prompt], options: GenerationOptions | None = None
    ) -> Iterator[GenerationTrace]:
        """Yield a `GenerationTrace` per prompt, in input order, holding at most one chunk of
        `CHUNK` prompts' results in memory."""
        options = options or GenerationOptions()
        if options.lens and self.graphs.lm_head is None:
            options = GenerationOptions(**(options.to_dict() | {"lens": False}))
        if options.chat_template and self.template is None:
            raise ConfigError(
                f"{self.folder}: chat_template = true, but the model has no chat template "
                f"(tokenizer_config.json or chat_template.jinja)"
            )
        cache = self._cache(options)
        chunk: list[Prompt] = []
        for prompt in prompts:
            chunk.append(prompt)
            if len(chunk) >= CHUNK:
                yield from self._chunk(chunk, options, cache)
                chunk = []
        if chunk:
            yield from self._chunk(chunk, options, cache)

    def generate_texts(
        self,
        texts: Sequence[str],
        options: GenerationOptions | None = None,
        *,
        completions: Sequence[str | Sequence[int]] | None = None,
    ) -> list[GenerationTrace]:
        completions = completions if completions is not None else [None] * len(texts)
        prompts = [Prompt(str(i), t, c) for i, (t, c) in enumerate(zip(texts, completions, strict=True))]
        return list(self.generate(prompts, options))

    # -- internals

    def _chunk(self, prompts: list[Prompt], options: GenerationOptions, cache) -> Iterator[GenerationTrace]:
        done: dict[int, GenerationTrace] = {}
        todo: list[tuple[int, _Encoded]] = []
        for i, prompt in enumerate(prompts):
            hit = cache.get(cache.text_key(prompt)) if cache else None
            if hit is not None and hit.template is not None and not hit.turns:
                hit = None  # cached before traces recorded the chat's turns: made again
            if hit is not None:
                hit.id, hit.label = prompt.id, prompt.label
                done[i] = hit
                self.stats.cached += 1
                continue
            todo.append((i, self._encode(prompt, options)))
        # forced and free rows run apart; each by length and within the memory budget (`batching`)
        for forced in (False, True):
            group = [item for item in todo if (item[1].completion is not None) is forced]
            lengths = [
                len(enc.ids) + (0 if enc.completion is None else len(enc.completion)) for _, enc in group
            ]
            for members in plan_batches(
                lengths, batch_size=self.batch_size, budget=self.batch_bytes, cost=self.row_cost
            ):
                batch = [group[k] for k in members]
                traces = self._run([enc for _, enc in batch], options)
                for (i, _), trace in zip(batch, traces, strict=True):
                    if cache:
                        cache.put(cache.text_key(prompts[i]), trace)
                    done[i] = trace
                    self.stats.generated += 1
        for i in range(len(prompts)):
            yield done.pop(i)

    def _encode(self, prompt: Prompt, options: GenerationOptions) -> _Encoded:
        span, turns = None, []
        if prompt.history and not options.chat_template:
            raise InputError(
                f"prompt {prompt.id!r} is a chat (messages); it needs [generate] chat_template = true"
            )
        if options.chat_template:
            rendered = self.template.render_chat(prompt.messages(options.system))
            text, span = rendered.text, (rendered.start, rendered.end)
            turns = [Turn(t.role, t.start, t.end, t.injected) for t in rendered.turns]
            enc = self.tokenizer.encode(text, add_special_tokens=False)
        else:
            text = prompt.prompt
            enc = self.tokenizer.encode(text, add_special_tokens=True)
        ids = np.asarray(enc.ids, dtype=np.int64)
        if len(ids) == 0:
            raise InputError(f"prompt {prompt.id!r} has no tokens; give it some text")
        special = np.asarray(enc.special_tokens_mask, dtype=bool) | np.isin(ids, list(self.special_ids))
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        if span is None:
            from_template = np.zeros(len(ids), dtype=bool)
        else:
            # a token is the template's unless it overlaps a message's content (the last user
            # turn's, or an earlier turn's); an injected system prompt is the template's own
            inside = np.zeros(len(ids), dtype=bool)
            for a, b in [span, *((t.start, t.stop) for t in turns if not t.injected)]:
                inside |= (offsets[:, 1] > a) & (offsets[:, 0] < b)
            from_template = special | ~inside
        offsets[special] = 0
        completion = None
        if isinstance(prompt.completion, str):
            completion = np.asarray(
                self.tokenizer.encode(prompt.completion, add_special_tokens=False).ids, dtype=np.int64
            )
        elif prompt.completion is not None:
            completion = np.asarray(prompt.completion, dtype=np.int64)
        if completion is not None and len(completion) == 0:
            raise InputError(f"prompt {prompt.id!r}: the completion has no tokens")
        total = len(ids) + (len(completion) if completion is not None else options.max_new_tokens)
        if total > self.card.max_positions:
            raise InputError(
                f"prompt {prompt.id!r} has {len(ids)} tokens; with "
                + (
                    f"its completion's {len(completion)}"
                    if completion is not None
                    else f"max_new_tokens {options.max_new_tokens}"
                )
                + f" that exceeds the model's {self.card.max_positions} positions; shorten it"
            )
        return _Encoded(
            prompt=prompt,
            text=text,
            ids=ids,
            tokens=list(enc.tokens),
            offsets=offsets,
            special=special,
            from_template=from_template,
            completion=completion,
            content_span=span,
            turns=turns,
        )

    def _decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def _step(self, ids: np.ndarray, mask: np.ndarray, past: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One decoder.onnx run; `past` is replaced by the grown cache."""
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask, **past})
        self.stats.runs += 1
        got = dict(zip(self._outputs, out, strict=True))
        for p, q in zip(self.graphs.past_names, self.graphs.present_names, strict=True):
            past[p] = got.pop(q)
        return got

    def empty_past(self, batch: int, session=None) -> dict[str, np.ndarray]:
        """An empty KV cache for `batch` rows of `session`'s graph (None: ``decoder.onnx``): a run
        then reads whole sequences from their start."""
        g = self.graphs
        session = session if session is not None else self.session
        first = next(i for i in session.get_inputs() if i.name == g.past_names[0])
        dtype = np.float16 if "float16" in first.type else np.float32
        return {name: np.zeros((batch, g.kv_heads, 0, g.head_dim), dtype) for name in g.past_names}

    def _run(self, encs: list[_Encoded], options: GenerationOptions) -> list[GenerationTrace]:
        forced = encs[0].completion is not None
        seqs = [e.ids if e.completion is None else np.concatenate([e.ids, e.completion]) for e in encs]
        b, width = len(encs), max(len(s) for s in seqs)
        ids = np.full((b, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, width - len(s) :], mask[i, width - len(s) :] = s, 1
        layers, heads = self.card.layers, self.card.heads
        rows = [
            _Row(e, width - len(s), len(e.ids) <= options.prompt_attention_limit, layers, heads)
            for e, s in zip(encs, seqs, strict=True)
        ]
        past = self.empty_past(b)
        got: dict[str, np.ndarray] = {}
        for start in range(0, width, self.prefill_chunk):
            end = min(width, start + self.prefill_chunk)
            got = self._step(ids[:, start:end], mask[:, :end], past)
            self._collect_prefill(rows, got, start, end, options)
        if forced:
            for row in rows:
                row.stop_reason = "forced"
            return [self._finish(row, options) for row in rows]

        norms = self.graphs.value_norms
        stopping = options.stopping(self.graphs.eos_token_ids)
        chooser = Greedy()
        processors = options.processors()
        active = list(range(b))  # rows of the batch still generating, in the cache's order
        logits = got["logits"][:, -1].astype(np.float32)
        attentions, hidden = got["attentions"][:, :, :, -1], got["hidden_states"][:, :, -1]
        while True:
            history = np.asarray([rows[i].ids for i in active], dtype=np.int64).reshape(len(active), -1)
            scores = logits
            for proc in processors:
                scores = proc(history, scores)
            chosen = chooser(scores)
            self._record([rows[i] for i in active], chosen, logits, attentions, hidden, options)
            still = []
            for j, i in enumerate(active):
                row = rows[i]
                text = self._decode(row.ids, skip_special=True) if options.stop else ""
                for rule in stopping:
                    if (reason := rule(row.ids, text)) is not None:
                        row.stop_reason = reason
                        break
                else:
                    still.append(j)
            if not still:
                break
            keep = np.asarray(still)
            if len(keep) < len(active):
                past = {k: v[keep] for k, v in past.items()}
                mask = mask[keep]
                chosen = chosen[keep]
                active = [active[j] for j in still]
            mask = np.concatenate([mask, np.ones((len(active), 1), np.int64)], axis=1)
            got = self._step(chosen[:, None].astype(np.int64), mask, past)
            if norms is not None:  # the key this step added to the cache
                for j, i in enumerate(active):
                    rows[i].value_norms.append(got[norms][j, :, :, -1:])
            logits = got["logits"][:, -1].astype(np.float32)
            attentions, hidden = got["attentions"][:, :, :, -1], got["hidden_states"][:, :, -1]
        return [self._finish(row, options) for row in rows]

    def _collect_prefill(
        self, rows: list[_Row], got, start: int, end: int, options: GenerationOptions
    ) -> None:
        """Keep what a prefill chunk (global positions ``start .. end - 1``) holds for each row:
        its prompt's attention rows, its keys' value norms, and in forced mode the choosing
        positions' outputs."""
        forced_rows, forced_at = [], []
        norms = self.graphs.value_norms
        for i, row in enumerate(rows):
            n = len(row.enc.ids)
            first = max(start, row.pad)
            if norms is not None and first < end:
                row.value_norms.append(got[norms][i, :, :, first - start : end - start])
            if row.prompt_attentions is not None:
                for g in range(first, min(end, row.pad + n)):
                    r = g - row.pad
                    row.prompt_attentions[:, :, r, : r + 1] = got["attentions"][
                        i, :, :, g - start, row.pad : g + 1
                    ]
            if row.enc.completion is not None:
                for t in range(len(row.enc.completion)):
                    g = row.pad + n - 1 + t
                    if start <= g < end:
                        forced_rows.append((i, t))
                        forced_at.append(g - start)
        if not forced_rows:
            return
        idx = np.asarray([i for i, _ in forced_rows])
        at = np.asarray(forced_at)
        chosen = np.asarray([rows[i].enc.completion[t] for i, t in forced_rows])
        self._record(
            [rows[i] for i, _ in forced_rows],
            chosen,
            got["logits"][idx, at].astype(np.float32),
            got["attentions"][idx, :, :, at],
            got["hidden_states"][idx, :, at],
            options,
        )

    def _record(
        self, rows: list[_Row], chosen, logits, attentions, hidden, options: GenerationOptions
    ) -> None:
        """One step of each of `rows`: the chosen token and its scores, the attention row over the
        row's own keys (padding cut) and the hidden states (the lens is read from them when the
        answer is done: `_finish`)."""
        scores = step_scores(logits, chosen, options.top_k)
        for j, row in enumerate(rows):
            row.ids.append(int(chosen[j]))
            row.attentions.append(np.asarray(attentions[j, :, :, row.pad :], dtype=np.float32))
            row.hidden.append(np.asarray(hidden[j], dtype=np.float32))
            row.scores.append(Scores(*(getattr(scores, f)[j] for f in Scores.__dataclass_fields__)))
        self.stats.new_tokens += len(rows)

    def _finish(self, row: _Row, options: GenerationOptions) -> GenerationTrace:
        enc, steps = row.enc, len(row.ids)
        n = len(enc.ids)
        attentions = np.zeros((self.card.layers, self.card.heads, steps, n + steps - 1), np.float32)
        for t, a in enumerate(row.attentions):
            attentions[:, :, t, : n + t] = a[:, :, : n + t]
        decode = self._decode

        def field_of(name: str, of: list[Scores] = row.scores, axis: int = 0) -> np.ndarray:
            return np.stack([getattr(s, name) for s in of], axis=axis)

        hidden = np.stack(row.hidden, axis=1)  # [L + 1, T, d]
        value_norms = None
        if row.value_norms:  # forced rows ran their last token too, which no step reads
            value_norms = np.concatenate(row.value_norms, axis=-1)[..., : n + steps - 1]
        lens = {}
        if options.lens:
            # layers 0 .. L - 1 read through lm_head.onnx, all steps at once; layer L is the answer's own
            read = self.lens.read(hidden[: self.card.layers], np.asarray(row.ids), options.top_k)

            def stack(name: str) -> np.ndarray:  # per layer, then step
                return np.concatenate([getattr(read, name), field_of(name)[None]], axis=0)

            top = stack("top_ids")
            lens = {
                "lens_probability": stack("probability"),
                "lens_rank": stack("rank"),
                "lens_top_ids": top,
                "lens_top_probabilities": stack("top_probabilities"),
                "lens_top_tokens": [
                    [[decode([i]) for i in step] for step in layer] for layer in top.tolist()
                ],
            }
        top_ids = field_of("top_ids")
        extra = {"content_span": list(enc.content_span)} if enc.content_span else {}
        if row.prompt_attentions is None:  # the limit that dropped it, for the page to name
            extra["prompt_attention_limit"] = options.prompt_attention_limit
        return GenerationTrace(
            id=enc.prompt.id,
            prompt=enc.prompt.prompt,
            text=enc.text,
            prompt_tokens=enc.tokens,
            prompt_ids=enc.ids,
            prompt_offsets=enc.offsets,
            special=enc.special,
            from_template=enc.from_template,
            tokens=[decode([i]) for i in row.ids],
            ids=np.asarray(row.ids, dtype=np.int64),
            answer=decode(row.ids, skip_special=True),
            probability=field_of("probability"),
            entropy=field_of("entropy"),
            rank=field_of("rank"),
            top_ids=top_ids,
            top_probabilities=field_of("top_probabilities"),
            top_tokens=[[decode([i]) for i in step] for step in top_ids.tolist()],
            attentions=attentions,
            hidden=hidden,
            prompt_attentions=row.prompt_attentions,
            value_norms=value_norms,
            forced=enc.completion is not None,
            stop_reason=row.stop_reason or "max_new_tokens",
            template=self.template.name if options.chat_template else None,
            label=enc.prompt.label,
            extra=extra,
            turns=list(enc.turns),
            **lens,
        )
