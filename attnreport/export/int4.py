"""Weight-only 4-bit quantization of a causal LM's export (onnxruntime's ``MatMulNBits``), its drift measured.

An int4 export is an int4 model: ``model.onnx``, ``decoder.onnx``, ``scorer.onnx`` (when the export
has it) and ``lm_head.onnx`` are replaced by their quantized versions, with the same inputs and
outputs (attentions included), so every later stage runs on them unchanged; the scorer's weights
are the decoder's, quantized to the same bytes and stored once, and its logits are checked against
the int4 decoder's (forced runs read the scorer, generation the decoder: they must be one model).
Each MatMul whose weight is a constant matrix becomes a
``MatMulNBits``: the weight in blocks of `BLOCK_SIZE` along its input dimension, each block stored
as 4-bit integers with its own float32 scale and 4-bit zero point (asymmetric, round to nearest);
activations stay float32, and so does everything else: the embedding (a Gather, which MatMulNBits
does not cover), norms, biases, and MatMuls over two activations (queries times keys, attention
times values). A tied unembedding, which the graphs read through a Transpose of the embedding, is
made a transposed constant first (`untie`) and quantized: the folder then holds the float32
embedding once (for the Gather) and the 4-bit unembedding once, every graph pointing at the same
bytes in the shared weights file (`attnreport.export.weights`).

The drift is measured before the float32 graphs are replaced, on the export's check prompts, in
onnxruntime on both sides: the float32 decoder's greedy answer is fed to both decoders, and per
step the int4 decoder's top-1 token is compared with the float32 one's, the log-probability of
the float32 choice under each, and every attention weight of prompt and answer; `model.onnx`'s
attentions on the padded check batch too, and decoding speed. It is recorded, never a refusal:
4-bit weights move every number a little, and how much is the model's own fact.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.core.modelcard import ModelCard
from attnreport.export.sessions import open_check_session
from attnreport.export.weights import SharedWeights

BITS = 4
#: weights per block, along the input dimension; each block has its own scale and zero point
BLOCK_SIZE = 32
MODEL_FILE = "model.onnx"
#: the quantized graphs are written here inside the export, then moved over the float32 ones
STAGING = "int4"
QUANTIZER_LOGGER = "onnxruntime.quantization.matmul_nbits_quantizer"


def _quantizer_class():
    """`MatMulNBitsQuantizer`, imported without the side effect of its module: it calls
    ``logging.basicConfig(level=INFO)`` on import, which would give the caller's root logger a
    handler and make every library's INFO lines print."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return MatMulNBitsQuantizer


@contextlib.contextmanager
def _quiet_quantizer():
    logger = logging.getLogger(QUANTIZER_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)  # one INFO line per node otherwise
    try:
        yield
    finally:
        logger.setLevel(level)


def untie(graph) -> int:
    """Make the weights that `graph` reads transposed through a node constants MatMulNBits can take:
    ``MatMul(x, Transpose(W))`` and ``Gemm(x, W, transB=1)`` over an initializer `W` become
    ``MatMul(x, Wt)`` with ``Wt`` the transposed initializer. That is how the graphs read a tied
    unembedding (the embedding, which the Gather keeps reading in float32); quantized, it adds about
    a sixth of the embedding's float32 bytes to the folder (4 bits a weight, a scale and a zero point
    a block), and the largest matrix of a small model's decode step is read in 4 bits. Returns how
    many nodes now read a transposed constant."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in graph.initializer}
    transposed = {}
    for node in graph.node:
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
        weight = inits.get(node.input[0]) if node.op_type == "Transpose" else None
        if weight is not None and perm == [1, 0] and len(weight.dims) == 2:
            transposed[node.output[0]] = node.input[0]
    made: dict[str, str] = {}

    def constant(weight: str) -> str:
        if weight not in made:
            made[weight] = f"{weight}_transposed"
            array = np.ascontiguousarray(numpy_helper.to_array(inits[weight]).T)  # two copies at most
            graph.initializer.append(numpy_helper.from_array(array, made[weight]))
            del array
        return made[weight]

    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "MatMul" and node.input[1] in transposed:
            node.input[1] = constant(transposed[node.input[1]])
            count += 1
        elif (
            node.op_type == "Gemm"
            and len(node.input) == 2
            and node.input[1] in inits
            and attrs.get("transB") == 1
            and not attrs.get("transA")
            and attrs.get("alpha", 1.0) == 1.0
        ):
            weight = constant(node.input[1])
            node = helper.make_node("MatMul", [node.input[0], weight], node.output, node.name)
            count += 1
        nodes.append(node)
    read = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    nodes = [n for n in nodes if n.op_type != "Transpose" or n.output[0] in read]
    graph.ClearField("node")
    graph.node.extend(nodes)
    return count


def quantize_graph(src: Path, dst: Path, shared: SharedWeights | None) -> dict:
    """Write `src` with its constant-weight MatMuls as MatMulNBits to `dst`, its large weights into
    `shared` (None: inside the graph); return what was quantized and what was kept float."""
    import onnx

    proto = onnx.load(str(src))  # with its external data
    untied = untie(proto.graph)
    quantizer = _quantizer_class()(proto, bits=BITS, block_size=BLOCK_SIZE, is_symmetric=False)
    with _quiet_quantizer():
        quantizer.process()
    proto = quantizer.model.model
    del quantizer
    inits = {i.name for i in proto.graph.initializer}
    made_by = {out: node for node in proto.graph.node for out in node.output}
    ops = [n.op_type for n in proto.graph.node]
    # what stays float: MatMuls over two activations (queries x keys, attention x values), and
    # weights MatMulNBits does not take: read through a node (a tied unembedding, the Transpose
    # of the embedding), or by a Gemm (a linear over 2-D inputs, as lm_head.onnx's tied one)
    through = [
        n
        for n in proto.graph.node
        if n.op_type == "MatMul"
        and n.input[1] in made_by
        and made_by[n.input[1]].op_type == "Transpose"
        and made_by[n.input[1]].input[0] in inits
    ]
    direct = [n for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    record = {
        "quantized_matmuls": ops.count("MatMulNBits"),
        #: of them, weights the float32 graph read transposed (a tied unembedding; `untie`)
        "untied": untied,
        #: weights left float32 (none in the architectures tested; e.g. a weight with batch dimensions)
        "float_weight_matmuls": len(through) + len(direct) + ops.count("Gemm"),
        "activation_matmuls": ops.count("MatMul") - len(through) - len(direct),
    }
    if shared is not None:
        import onnx_ir as ir

        model = ir.serde.deserialize_model(proto)
        del proto
        shared.save(model, dst)
    else:
        onnx.save(proto, str(dst))
    return record


def _peak_rss() -> str:
    """The process's peak resident memory so far, for the log (Linux and macOS; empty elsewhere)."""
    try:
        import resource
        import sys
    except ImportError:
        return ""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return f" (peak RSS so far {peak / 1e9:.2f} GB)"


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _forced(session, layers: int, row: list[int], new_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """`row` (prompt + answer) through the decoder at once, with an empty cache: the attentions
    ``[L, H, m, m]`` and the log-probabilities ``[new_tokens, V]`` at the positions that chose
    the answer's tokens."""
    from attnreport.export.decoder import past_names

    inputs = {i.name: i for i in session.get_inputs()}
    shape = inputs[past_names(layers)[0]].shape
    ids = np.array([row], np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    feeds |= {name: np.zeros((1, shape[1], 0, shape[3]), np.float32) for name in past_names(layers)}
    logits, attentions = session.run(["logits", "attentions"], feeds)
    n = len(row) - new_tokens + 1
    return attentions[0], _log_softmax(logits[0, n - 1 :])


def decoder_drift(fp32: Path, int4: Path, rows: list[list[int]], *, pad_id: int, layers: int) -> dict:
    """The int4 decoder against the float32 one on `rows` (token ids of the check prompts), one
    session at a time: greedy speed of each, and on the float32 greedy answer forced through both,
    per step the top-1 agreement and the log-probability of the float32 choice, and the attentions."""
    from attnreport.export.decoder import CHECK_CHUNK, CHECK_NEW_TOKENS, onnx_greedy

    steps = CHECK_NEW_TOKENS
    seen: dict[str, dict] = {}
    for name, path in (("fp32", fp32), ("int4", int4)):
        session = open_check_session(path, timed=True)
        greedy, start = [], time.perf_counter()
        for r in rows:
            (got,) = onnx_greedy(
                session, [r], pad_id=pad_id, new_tokens=steps, layers=layers, chunk=CHECK_CHUNK
            )
            greedy.append(got["tokens"])
        seconds = time.perf_counter() - start
        answers = seen["fp32"]["greedy"] if name == "int4" else greedy
        forced = [_forced(session, layers, r + a[:-1], steps) for r, a in zip(rows, answers, strict=True)]
        seen[name] = {"greedy": greedy, "forced": forced, "tokens_per_s": len(rows) * steps / seconds}
        del session
        gc.collect()
    attention, agree, logprob = 0.0, np.zeros(steps, int), []
    for answer, (att_a, lp_a), (att_b, lp_b) in zip(
        seen["fp32"]["greedy"], seen["fp32"]["forced"], seen["int4"]["forced"], strict=True
    ):
        attention = max(attention, float(np.max(np.abs(att_a - att_b))))
        agree += lp_b.argmax(axis=-1) == np.array(answer)
        logprob += [float(lp_b[t, tok] - lp_a[t, tok]) for t, tok in enumerate(answer)]
    same = sum(a == b for a, b in zip(seen["fp32"]["greedy"], seen["int4"]["greedy"], strict=True))
    return {
        "prompts": len(rows),
        "new_tokens": steps,
        #: the largest change of one attention weight (any layer, head, query, key) over the check
        #: prompts and the float32 greedy answers, forced through both decoders
        "max_attention_diff": attention,
        #: per answer step, on how many prompts the int4 top-1 token is the float32 greedy token
        "top1_agree_per_step": agree.tolist(),
        "top1_agreement": float(agree.sum() / (len(rows) * steps)),
        #: log p_int4(token) - log p_fp32(token) for the float32 greedy tokens
        "max_abs_logprob_diff": float(np.max(np.abs(logprob))),
        "mean_logprob_diff": float(np.mean(logprob)),
        #: prompts whose int4 greedy answer (its own, not forced) is the float32 one, token for token
        "same_greedy_answer": int(same),
        #: new tokens per second, greedy, the check prompts one at a time, their prefill included
        "fp32_tokens_per_s": seen["fp32"]["tokens_per_s"],
        "int4_tokens_per_s": seen["int4"]["tokens_per_s"],
    }


def model_drift(fp32: Path, int4: Path, ids: np.ndarray, mask: np.ndarray, lengths: list[int]) -> float:
    """The largest change of one attention weight of `model.onnx` on the padded check batch."""
    attentions = []
    for path in (fp32, int4):
        session = open_check_session(path)
        (att,) = session.run(["attentions"], {"input_ids": ids, "attention_mask": mask})
        attentions.append(att)
        del session
        gc.collect()
    a, b = attentions
    return max(float(np.max(np.abs(a[i, :, :, :n, :n] - b[i, :, :, :n, :n]))) for i, n in enumerate(lengths))


def quantize_int4(
    folder: Path, card: ModelCard, ids: np.ndarray, mask: np.ndarray, lengths: list[int], log=print
) -> dict:
    """Replace the graphs of the causal LM export in `folder` (its manifest `card`) by their int4
    versions and return the drift from the float32 ones, measured on the check batch
    (`ids`, `mask`, `lengths`: right-padded, as the export checked it)."""
    from attnreport.export.decoder import CHECK_NEW_TOKENS

    folder = Path(folder)
    generation = card.generation
    graphs = [MODEL_FILE, generation.decoder, generation.scorer, generation.lm_head]
    graphs = [name for name in graphs if name]
    staging = folder / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shared = SharedWeights(staging, name=card.weights_file) if card.weights_file else None
    before = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.suffix in (".onnx", ".data"))
    counts = {}
    for name in graphs:
        log(f"int4: quantizing {name} (MatMulNBits, blocks of {BLOCK_SIZE}){_peak_rss()}")
        counts[name] = quantize_graph(folder / name, staging / name, shared)
        gc.collect()
    log(f"int4: measuring the drift from float32 on the check prompts{_peak_rss()}")
    keep = card.max_positions - CHECK_NEW_TOKENS
    rows = [ids[i, :n].tolist()[:keep] for i, n in enumerate(lengths)]
    pad_id = int(card.extra.get("pad_token_id") or 0)
    result = {
        "file": None,  # no second graph beside model.onnx: the export's graphs are the int4 ones
        "method": (
            f"onnxruntime MatMulNBits: weight-only, {BITS}-bit, blocks of {BLOCK_SIZE} weights along "
            f"the input dimension, each with a float32 scale and a 4-bit zero point (round to "
            f"nearest); activations, embedding, norms and attention stay float32"
        ),
        #: the figures below are this model's drift from those graphs; the manifest's max_abs_diff
        #: (and the generation graphs') is their check against PyTorch, made before quantizing
        "drift_from": "the float32 graphs of this export, checked against PyTorch, then replaced",
        "bits": BITS,
        "block_size": BLOCK_SIZE,
        "graphs": counts,
    }
    result["model_max_attention_diff"] = model_drift(
        folder / MODEL_FILE, staging / MODEL_FILE, ids, mask, lengths
    )
    result |= decoder_drift(
        folder / generation.decoder, staging / generation.decoder, rows, pad_id=pad_id, layers=card.layers
    )
    if generation.scorer:
        from attnreport.export.scorer import check_scorer

        #: the int4 scorer's logits against the int4 decoder's, relative to the largest: the same
        #: 4-bit weights, so as close as the float32 graphs are
        result["scorer_logits_diff"] = check_scorer(
            staging,
            generation.decoder,
            rows,
            pad_id=pad_id,
            past_names=generation.past_names,
            present_names=generation.present_names,
        )
        if not result["scorer_logits_diff"] <= generation.tolerance:
            raise ExportError(
                f"int4: {generation.scorer}'s logits differ from {generation.decoder}'s by "
                f"{result['scorer_logits_diff']:.2e} (limit {generation.tolerance:.0e}); export without "
                f"--quantize int4"
            )
    for name in graphs:
        (folder / name).unlink()
    if card.weights_file:
        (folder / card.weights_file).unlink()
    for path in staging.iterdir():
        path.replace(folder / path.name)
    staging.rmdir()
    after = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.suffix in (".onnx", ".data"))
    result |= {"fp32_graph_bytes": before, "int4_graph_bytes": after}
    log(
        f"int4: top-1 agreement {result['top1_agreement']:.0%} over {len(rows)} x {CHECK_NEW_TOKENS} steps, "
        f"attention moved by up to {result['max_attention_diff']:.3f}, graphs {before / 1e6:,.0f} MB -> "
        f"{after / 1e6:,.0f} MB, {result['int4_tokens_per_s'] / result['fp32_tokens_per_s']:.1f}x the "
        f"float32 decoding speed{_peak_rss()}"
    )
    return result
