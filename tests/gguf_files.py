"""Tiny GGUF files written with the `gguf` package's writer, as llama.cpp's converter lays them out.

Random weights under llama.cpp's tensor names (``token_embd``, ``blk.N.attn_q`` ...), the model's
hyperparameters under ``<arch>.*``, and a byte-level BPE tokenizer (``tokenizer.ggml.*``: tokens,
token types, merges, special ids) with a ChatML chat template, so transformers' GGUF loader reads
the model, its tokenizer and its template from the file alone, as it reads a downloaded one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CORPUS = [
    "the card was charged twice for the same order",
    "refill please",
    "my blood pressure readings have been high all week",
    "where is my parcel and when will it arrive",
    "what is the capital of france",
] * 4
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
#: the shapes: small, but a multiple of Q8_0's 32-value blocks wherever a matrix row runs
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, CONTEXT = 64, 2, 4, 2, 128, 128
#: GPT-2: its feed-forward width is 4 x hidden (transformers takes no width from the file)
GPT2_CONTEXT, GPT2_FFN = 1024, 4 * 64


def _bpe_vocab() -> tuple[list[str], list[str]]:
    """A byte-level BPE trained on CORPUS: its tokens in id order (specials first) and its merges."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def write_gguf(
    path: Path, architecture: str, *, quantization: str = "F32", tied: bool = False, seed: int = 0
) -> Path:
    """A tiny `architecture` (``llama``, ``qwen2`` or ``gpt2``) model written to `path` with its
    matrices stored as `quantization` (``F32`` or ``Q8_0``); `tied`: no ``output.weight``, the
    unembedding is the embedding, as in SmolLM2 (Llama and Qwen2 only)."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, merges = _bpe_vocab()
    vocab = len(tokens)
    head_dim = HIDDEN // HEADS
    qtype = gguf.GGMLQuantizationType[quantization]
    file_type = {"F32": gguf.LlamaFileType.ALL_F32, "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quantization]

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(f"tiny {architecture}")
    writer.add_file_type(int(file_type))
    # transformers reads GPT-2's context length as `n_ctx` and sizes its position table by
    # `n_positions`, whose default is 1024: a GPT-2 file must have that many positions
    writer.add_context_length(GPT2_CONTEXT if architecture == "gpt2" else CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    if architecture == "gpt2":
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    if architecture == "llama":
        writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2" if architecture == "qwen2" else "smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in SPECIALS else 1 for t in tokens])  # 3: control, 1: normal
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_pad_token_id(tokens.index("<pad>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    def matrix(name: str, rows: int, cols: int, scale: float) -> None:
        values = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, values)
        else:
            writer.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)

    def vector(name: str, size: int, center: float, scale: float) -> None:
        writer.add_tensor(name, (center + rng.standard_normal(size) * scale).astype(np.float32))

    # weights large enough that greedy choices are not near-ties between random logits
    matrix("token_embd.weight", vocab, HIDDEN, 1.0)
    if architecture == "gpt2":
        _gpt2_blocks(matrix, vector, vocab)
    else:
        _llama_blocks(matrix, vector, vocab, qwen2=architecture == "qwen2", tied=tied)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def _llama_blocks(matrix, vector, vocab: int, *, qwen2: bool, tied: bool) -> None:
    """Llama's (and Qwen2's) tensors after the token embedding, under llama.cpp's names."""
    head_dim = HIDDEN // HEADS
    for i in range(LAYERS):
        vector(f"blk.{i}.attn_norm.weight", HIDDEN, 1.0, 0.1)
        matrix(f"blk.{i}.attn_q.weight", HEADS * head_dim, HIDDEN, 0.3)
        matrix(f"blk.{i}.attn_k.weight", KV_HEADS * head_dim, HIDDEN, 0.3)
        matrix(f"blk.{i}.attn_v.weight", KV_HEADS * head_dim, HIDDEN, 0.3)
        if qwen2:  # Qwen2 has biases on its query, key and value projections
            vector(f"blk.{i}.attn_q.bias", HEADS * head_dim, 0.0, 0.1)
            vector(f"blk.{i}.attn_k.bias", KV_HEADS * head_dim, 0.0, 0.1)
            vector(f"blk.{i}.attn_v.bias", KV_HEADS * head_dim, 0.0, 0.1)
        matrix(f"blk.{i}.attn_output.weight", HIDDEN, HEADS * head_dim, 0.1)
        vector(f"blk.{i}.ffn_norm.weight", HIDDEN, 1.0, 0.1)
        matrix(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN, 0.2)
        matrix(f"blk.{i}.ffn_up.weight", FFN, HIDDEN, 0.2)
        matrix(f"blk.{i}.ffn_down.weight", HIDDEN, FFN, 0.1)
    vector("output_norm.weight", HIDDEN, 1.0, 0.1)
    if not tied:
        matrix("output.weight", vocab, HIDDEN, 0.3)


def _gpt2_blocks(matrix, vector, vocab: int) -> None:
    """GPT-2's tensors after the token embedding, as llama.cpp lays them out: learned positions, one
    fused query-key-value matrix per layer, layer norms and linear layers with biases."""
    matrix("position_embd.weight", GPT2_CONTEXT, HIDDEN, 0.3)
    for i in range(LAYERS):
        vector(f"blk.{i}.attn_norm.weight", HIDDEN, 1.0, 0.1)
        vector(f"blk.{i}.attn_norm.bias", HIDDEN, 0.0, 0.1)
        matrix(f"blk.{i}.attn_qkv.weight", 3 * HIDDEN, HIDDEN, 0.3)
        vector(f"blk.{i}.attn_qkv.bias", 3 * HIDDEN, 0.0, 0.1)
        matrix(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN, 0.1)
        vector(f"blk.{i}.attn_output.bias", HIDDEN, 0.0, 0.1)
        vector(f"blk.{i}.ffn_norm.weight", HIDDEN, 1.0, 0.1)
        vector(f"blk.{i}.ffn_norm.bias", HIDDEN, 0.0, 0.1)
        matrix(f"blk.{i}.ffn_up.weight", GPT2_FFN, HIDDEN, 0.2)
        vector(f"blk.{i}.ffn_up.bias", GPT2_FFN, 0.0, 0.1)
        matrix(f"blk.{i}.ffn_down.weight", HIDDEN, GPT2_FFN, 0.1)
        vector(f"blk.{i}.ffn_down.bias", HIDDEN, 0.0, 0.1)
    vector("output_norm.weight", HIDDEN, 1.0, 0.1)
    vector("output_norm.bias", HIDDEN, 0.0, 0.1)
    matrix("output.weight", vocab, HIDDEN, 0.3)
