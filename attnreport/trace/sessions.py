"""The one way the trace stage opens what an exported model folder holds.

A model folder is not trusted (it may come from anyone): every file read from it, whether
named by us (``tokenizer.json``) or by its manifest (``decoder.onnx``), must resolve inside it
and be a regular file (`model_file`). Sessions are made here alone, with one provider policy
(`default_providers`), and onnxruntime's refusals (a corrupt graph, external data that
escapes the folder) become one-line errors. The cache key of a model is made here too
(`model_key`): every graph and every file the tokenizer and chat template read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from attnreport.core.errors import ConfigError
from attnreport.core.files import confined_file, sha256_file
from attnreport.core.modelcard import ModelCard

#: the files a tokenizer or chat template may be read from: all of them enter the model key
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


def model_file(folder: Path, name: str) -> Path:
    """``folder / name``, confined to the folder and a regular file, else a one-line ConfigError."""
    return confined_file(folder, name, error=ConfigError)


def optional_model_file(folder: Path, name: str) -> Path | None:
    """Like `model_file` for a file the folder may lack: None when nothing is there, an error
    when something is there that points outside or is not a regular file."""
    candidate = Path(folder) / name
    if not candidate.exists() and not candidate.is_symlink():
        return None
    return model_file(folder, name)


def load_tokenizer(folder: Path):
    """The folder's ``tokenizer.json`` as a `tokenizers.Tokenizer` that neither truncates nor pads;
    a malformed file is a one-line ConfigError."""
    from tokenizers import Tokenizer

    if optional_model_file(folder, "tokenizer.json") is None:
        raise ConfigError(f"{folder}: no tokenizer.json; export the model again")
    path = model_file(folder, "tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on a bad file
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{path}: not a tokenizer the tokenizers library can read ({reason})") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def default_providers() -> list[str]:
    """onnxruntime's CUDA execution provider when this onnxruntime has it, then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_session(
    folder: Path,
    name: str,
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    spin: bool = True,
    arena: bool = True,
):
    """An onnxruntime session over the graph `name` of the model folder `folder`.

    `threads` sets onnxruntime's intra-op threads (None: its default, every core; a Dask worker
    sets its own). ``spin=False`` lets the session's threads sleep as soon as a run ends instead of
    spinning for the next one: sessions that take turns (the decoder and the lens head of a
    generation) otherwise spend the cores on each other's spinning, as does any other process on a
    shared machine (SmolLM2 on 2 busy cores: a decode step and its lens, 165 -> 80 ms of CPU).
    ``arena=False`` turns off onnxruntime's CPU memory arena, which keeps the blocks it handed out:
    for ``decoder.onnx``, whose prefill chunks return attention rows that grow with the cache, the
    peak of a SmolLM2 generation with the arena was 3.2-3.4 GiB at 2,000 prompt tokens and 13.3 GiB
    at 7,900, without it 2.4 and 7.5 GiB, at no cost in speed on this loaded machine
    (benchmarks/long_prompt.py). ``scorer.onnx``'s forced runs peaked lower with it (1.2 and 2.4 GiB
    against 1.4 and 3.0), so it keeps it.
    A graph onnxruntime refuses is a one-line ConfigError naming the file.
    """
    import onnxruntime as ort

    path = model_file(folder, name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not arena:
        options.enable_cpu_mem_arena = False
    chosen = list(providers) if providers is not None else default_providers()
    try:
        return ort.InferenceSession(str(path), options, providers=chosen)
    except Exception as exc:  # onnxruntime's own classes (Fail, InvalidGraph, ...) share no base
        reason = " ".join(str(exc).split())[:300]
        raise ConfigError(f"{path}: onnxruntime cannot load it ({reason}); export the model again") from exc


def model_key(folder: Path, card: ModelCard, graphs: Iterable[str | None]) -> str:
    """What a cached result of this model depends on: the weights' hash and dtype (external
    data is covered by them), each graph file, and each tokenizer and template file present."""
    digest = hashlib.sha256(f"{card.weights_sha256}:{card.dtype}".encode())
    for name in [*filter(None, graphs), *TOKENIZER_FILES]:
        path = optional_model_file(folder, name)
        if path is not None:
            digest.update(name.encode() + sha256_file(path).encode())
    return digest.hexdigest()
