"""Run an exported model over texts with onnxruntime and return one `Trace` per text.

Texts are read in chunks, looked up in the cache, and the misses are sorted by length
and batched so that little compute is spent on padding. A padded batch gives the same
numbers as each text alone (checked at export); padded rows and columns are cut off.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport.core.errors import ConfigError, InputError
from attnreport.core.files import sha256_file
from attnreport.core.modelcard import ModelCard
from attnreport.core.padding import pad_batch
from attnreport.core.trace import Trace
from attnreport.trace.cache import TraceCache, default_cache_dir
from attnreport.trace.inputs import Row
from attnreport.trace.sessions import model_file, open_session, optional_model_file
from attnreport.trace.tokenize import Encoded, TextTokenizer
from attnreport.trace.windows import plan_windows, stitch

CHUNK = 256
#: the optional outputs of a --with-qk export (`attnreport.export.qk.QK_OUTPUTS`; trace/ does not
#: import export/)
QK_OUTPUTS = ("queries", "keys")


@dataclass
class TraceStats:
    traced: int = 0
    cached: int = 0
    windows: int = 0
    sessions: int = 0
    padding: list[float] = field(default_factory=list)


@dataclass
class _Job:
    row: int
    window: int
    ids: np.ndarray


def readable(row: Row) -> None:
    """A text with a lone surrogate (JSON's "\\ud800" escape decodes to one) is a Python string no
    tokenizer, hash or file can take: refused here with the row named, not as a traceback."""
    try:
        row.text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = f"line {row.line}" if row.line else f"text {row.id!r}"
        raise InputError(
            f"{where}: the text holds a character that is not valid Unicode ({exc.reason} at "
            f"{exc.start}: a lone surrogate, e.g. from a \\ud800 escape); fix or remove the row"
        ) from None


class Tracer:
    """Traces texts through the ONNX model in `folder` (an attnreport export)."""

    def __init__(
        self,
        folder: Path,
        *,
        quantized: bool = False,
        batch_size: int = 16,
        window: int | None = None,
        stride: int = 64,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        threads: int | None = None,
        qk_max_tokens: int = 64,
    ) -> None:
        self.folder = Path(folder)
        #: onnxruntime's intra-op threads (None: its default, every core); a Dask worker sets its own
        self.threads = threads
        self.card = ModelCard.load(self.folder)
        name = "model.int8.onnx" if quantized else "model.onnx"
        if quantized and optional_model_file(self.folder, name) is None:
            raise ConfigError(f"{self.folder}: {name} is missing (export with --quantize int8)")
        self.model_name = name
        self.model_path = model_file(self.folder, name)
        self.tokenizer = TextTokenizer(self.folder)
        self.batch_size = batch_size
        size = window or self.card.max_positions
        self.window = size - self.tokenizer.n_special
        if self.window < 2:
            raise ConfigError(f"window of {size} tokens leaves no room for text")
        self.stride = min(stride, self.window // 2)
        self.pad_id = int(self.card.extra.get("pad_token_id") or 0)
        #: a --with-qk export keeps queries and keys of texts of one window up to this many tokens
        self.qk_max_tokens = qk_max_tokens if self.card.qk is not None else 0
        self.stats = TraceStats()
        self._session = None
        self.cache = None
        #: identifies the model, tokenizer and tracing options: the key of every cached result
        self.key = ""
        if use_cache:
            options = {"window": self.window, "stride": self.stride, "model": name}
            if self.card.qk is not None:  # only then: caches of other exports keep their key
                options["qk_max_tokens"] = self.qk_max_tokens
            # the graph and tokenizer.json are all a trace depends on (TextTokenizer reads no other
            # file); this key's form is pinned so that users' caches stay valid
            self.key = sha256_file(self.model_path) + sha256_file(model_file(self.folder, "tokenizer.json"))
            if self.card.external_data:  # the graph file then holds no weights: the manifest's hash does
                self.key += self.card.weights_sha256 + self.card.dtype
            self.cache = TraceCache(cache_dir or default_cache_dir(), self.key, options)
            self.key += json.dumps(options, sort_keys=True)

    @property
    def session(self):
        """The onnxruntime session, made on first use: a fully cached build never makes one."""
        if self._session is None:
            session = open_session(self.folder, self.model_name, threads=self.threads)
            self._check_vocabulary(session)
            self._session = session
            self.stats.sessions += 1
        return self._session

    def _check_vocabulary(self, session) -> None:
        """One run on the tokenizer's largest id: a tokenizer.json that is not the model's (ids past
        its embedding) is said here, in one line, not as onnxruntime's error mid-build."""
        top = self.tokenizer.largest_id
        ids = np.array([[*self.tokenizer.prefix_ids, top]], dtype=np.int64)
        try:
            session.run(["attentions"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        except Exception as exc:  # onnxruntime's error classes share no base
            raise ConfigError(
                f"{self.folder}: the model cannot read token id {top} of its tokenizer.json "
                f"(onnxruntime: {' '.join(str(exc).split())[:160]}); the tokenizer is not this model's, "
                f"export the model again"
            ) from exc

    def trace(self, rows: Iterable[Row]) -> Iterator[Trace]:
        """Yield a `Trace` per row, in input order, holding at most one chunk in memory."""
        chunk: list[Row] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                yield from self._chunk(chunk)
                chunk = []
        if chunk:
            yield from self._chunk(chunk)

    def attentions_for_ids(self, ids: np.ndarray) -> np.ndarray:
        """Attentions ``[L, H, n, n]`` for raw token ids (probes that are not text, e.g. induction)."""
        ((attentions, *_),) = self._forward([np.asarray(ids, dtype=np.int64)])
        return attentions

    def trace_texts(self, texts: list[str]) -> list[Trace]:
        rows = [Row(id=str(i), text=t, label=None, line=0) for i, t in enumerate(texts)]
        return list(self.trace(rows))

    def _chunk(self, rows: list[Row]) -> Iterator[Trace]:
        done: dict[int, Trace] = {}
        todo: list[tuple[int, Encoded, list[tuple[int, int]]]] = []
        for i, row in enumerate(rows):
            readable(row)
            hit = self.cache.get(row.text) if self.cache else None
            if hit is not None:
                hit.id, hit.label, hit.group = row.id, row.label, row.group
                done[i] = hit
                self.stats.cached += 1
                continue
            enc = self.tokenizer.encode(row.text)
            windows = plan_windows(len(enc.ids), self.window, self.stride)
            todo.append((i, enc, windows))
        if todo:
            done.update(self._run(rows, todo))
        for i in range(len(rows)):
            yield done.pop(i)  # released as soon as the consumer lets go of it

    def _run(self, rows, todo) -> dict[int, Trace]:
        tok = self.tokenizer
        jobs = [
            _Job(i, k, np.concatenate([tok.prefix_ids, enc.ids[a:b], tok.suffix_ids]).astype(np.int64))
            for i, enc, windows in todo
            for k, (a, b) in enumerate(windows)
        ]
        jobs.sort(key=lambda j: len(j.ids))
        one_window = {i for i, _, windows in todo if len(windows) == 1}
        results: dict[tuple[int, int], tuple] = {}
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start : start + self.batch_size]
            qk = [j.row in one_window and len(j.ids) <= self.qk_max_tokens for j in batch]
            for job, out in zip(batch, self._forward([j.ids for j in batch], qk=qk), strict=True):
                results[(job.row, job.window)] = out
        traces = {}
        for i, enc, windows in todo:
            traces[i] = self._assemble(i, rows[i], enc, windows, results)
            if self.cache:
                self.cache.put(traces[i])
            self.stats.traced += 1
            self.stats.windows += len(windows)
        return traces

    def _forward(self, batch: list[np.ndarray], *, qk: list[bool] | None = None) -> list[tuple]:
        """Per row: attentions, hidden states, logits, and (queries, keys) where `qk` asks for them
        (else None); queries and keys leave the graph only for a batch that wants them."""
        ids, mask = pad_batch(batch, self.pad_id)
        self.stats.padding.append(1.0 - mask.mean())
        names = [o.name for o in self.session.get_outputs()]
        qk = qk or [False] * len(batch)
        if not any(qk):
            names = [name for name in names if name not in QK_OUTPUTS]
        out = dict(
            zip(names, self.session.run(names, {"input_ids": ids, "attention_mask": mask}), strict=True)
        )
        logits = out.get("logits")
        result = []
        for r, row in enumerate(batch):
            m = len(row)
            vectors = None
            if qk[r]:
                vectors = tuple(out[name][r, :, :, :m].copy() for name in QK_OUTPUTS)
            result.append(
                (
                    out["attentions"][r, :, :, :m, :m],
                    out["hidden_states"][r, :, :m],
                    None if logits is None else logits[r],
                    vectors,
                )
            )
        return result

    def _assemble(self, i: int, row: Row, enc: Encoded, windows, results) -> Trace:
        tok = self.tokenizer
        parts = [results[(i, k)] for k in range(len(windows))]
        causal = self.card.causal
        if len(windows) == 1:
            attentions, hidden = parts[0][0], parts[0][1]
        else:
            attentions, hidden = stitch(
                [(p[0], p[1]) for p in parts],
                windows,
                len(tok.prefix_ids),
                len(tok.suffix_ids),
                causal=causal,
            )
        logits = None
        if parts[0][2] is not None:
            # causal models read the last window; encoders average their windows' logits
            logits = parts[-1][2] if causal else np.mean([p[2] for p in parts], axis=0)
        n_pre, n_suf = len(tok.prefix_ids), len(tok.suffix_ids)
        n_content = len(enc.ids)
        vectors = parts[0][3] if len(windows) == 1 else None
        return Trace(
            id=row.id,
            text=row.text,
            tokens=tok.prefix_tokens + enc.tokens + tok.suffix_tokens,
            offsets=np.concatenate(
                [np.zeros((n_pre, 2), np.int64), enc.offsets, np.zeros((n_suf, 2), np.int64)]
            ),
            special=np.concatenate([np.ones(n_pre, bool), np.zeros(n_content, bool), np.ones(n_suf, bool)]),
            attentions=attentions,
            hidden=hidden,
            logits=logits,
            label=row.label,
            group=row.group,
            windows=[(n_pre + a, n_pre + b) for a, b in windows] if len(windows) > 1 else [],
            queries=None if vectors is None else vectors[0],
            keys=None if vectors is None else vectors[1],
        )
