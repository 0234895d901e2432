"""Tracing with onnxruntime: equal to PyTorch per text, windows for long inputs, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.trace import Row, Tracer
from attnreport.trace.windows import owners, plan_windows

TEXTS = [
    "where is my parcel",
    "lock my account now someone is using my card and the bank is closed",
    "refill",
    "my blood pressure readings have been high all week",
    "the card was charged twice",
]


def torch_alone(checkpoint, text: str, *, causal: bool):
    import torch
    import transformers

    cls = transformers.AutoModelForCausalLM if causal else transformers.AutoModelForSequenceClassification
    model = cls.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], output_attentions=True, output_hidden_states=True)
    logits = out.logits[0, -1] if causal else out.logits[0]
    return (
        tok.convert_ids_to_tokens(enc["input_ids"][0]),
        torch.stack(out.attentions, 1)[0].numpy(),
        torch.stack(out.hidden_states, 1)[0].numpy(),
        logits.numpy(),
    )


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_batched_traces_equal_each_text_alone_in_pytorch(tiny, cache_dir, family):
    tracer = Tracer(tiny.export(family), batch_size=3, cache_dir=cache_dir)
    traces = tracer.trace_texts(TEXTS)
    assert [t.text for t in traces] == TEXTS  # input order survives length sorting
    assert max(tracer.stats.padding) > 0  # the test really ran padded batches
    for trace in traces:
        tokens, attn, hidden, logits = torch_alone(
            tiny.checkpoint(family), trace.text, causal=family == "llama"
        )
        assert trace.tokens == tokens
        np.testing.assert_allclose(trace.attentions, attn, atol=1e-5)
        np.testing.assert_allclose(trace.hidden, hidden, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(trace.logits, logits, atol=1e-4, rtol=1e-4)
        starts = trace.offsets[~trace.special, 0]
        assert all(0 <= a < b <= len(trace.text) for a, b in trace.offsets[~trace.special])
        assert list(starts) == sorted(starts)


def test_special_tokens_are_marked(tiny, cache_dir):
    (trace,) = Tracer(tiny.export("bert"), cache_dir=cache_dir).trace_texts(["refill please"])
    assert trace.tokens[0] == "[CLS]" and trace.tokens[-1] == "[SEP]"
    assert trace.special.tolist() == [True] + [False] * (trace.n_tokens - 2) + [True]
    assert trace.offsets[0].tolist() == [0, 0]


def test_plan_windows_covers_every_token_with_the_stride():
    for n, size, stride in [(10, 4, 1), (100, 16, 4), (17, 16, 4), (16, 16, 4), (5, 8, 2), (33, 10, 9)]:
        windows = plan_windows(n, size, stride)
        covered = np.zeros(n, dtype=int)
        for a, b in windows:
            assert 0 <= a < b <= n and b - a == min(size, n)
            covered[a:b] += 1
        assert covered.min() >= 1
        for (_a1, b1), (a2, _) in zip(windows, windows[1:], strict=False):
            assert b1 - a2 >= stride  # consecutive windows share at least `stride` tokens
        assert windows[-1][1] == n


def test_owner_is_the_most_central_window():
    windows = [(0, 8), (4, 12), (8, 16)]
    own = owners(windows, 16, causal=False)
    assert own.tolist() == [0] * 6 + [1] * 4 + [2] * 6
    own = owners(windows, 16, causal=True)
    assert own.tolist() == [0] * 8 + [1] * 4 + [2] * 4


def test_overlong_text_is_traced_in_stitched_windows(tiny, cache_dir):
    """Each token's row equals the PyTorch run of its owner window, placed at global positions."""
    text = " ".join(["lock my account now someone is using my card"] * 6)
    tracer = Tracer(tiny.export("bert"), window=16, stride=4, cache_dir=cache_dir)
    (trace,) = tracer.trace_texts([text])
    whole = tracer.tokenizer.encode(text)
    n_content = len(whole.ids)
    assert trace.n_tokens == n_content + 2
    assert len(trace.windows) > 2 and tracer.stats.windows == len(trace.windows)
    content = plan_windows(n_content, 14, 4)
    assert trace.windows == [(a + 1, b + 1) for a, b in content]
    np.testing.assert_allclose(trace.attentions.sum(-1), 1.0, atol=1e-5)
    own = owners(content, n_content, causal=False)
    import torch
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(tiny.checkpoint("bert")), attn_implementation="eager"
    ).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny.checkpoint("bert")))
    window_logits = []
    for k, (a, b) in enumerate(content):
        ids = [tok.cls_token_id, *whole.ids[a:b].tolist(), tok.sep_token_id]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        attn = torch.stack(out.attentions, 1)[0].numpy()
        hidden = torch.stack(out.hidden_states, 1)[0].numpy()
        window_logits.append(out.logits[0].numpy())
        glob = np.array([0, *range(a + 1, b + 1), trace.n_tokens - 1])
        for local, g in enumerate(glob):
            owned = (
                (0 < local < len(glob) - 1 and own[a + local - 1] == k)
                or (local == 0 and k == 0)
                or (local == len(glob) - 1 and k == len(content) - 1)
            )
            if not owned:
                continue
            np.testing.assert_allclose(trace.attentions[:, :, g][:, :, glob], attn[:, :, local], atol=1e-5)
            outside = np.setdiff1d(np.arange(trace.n_tokens), glob)
            assert np.all(trace.attentions[:, :, g][:, :, outside] == 0)
            np.testing.assert_allclose(trace.hidden[:, g], hidden[:, local], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(trace.logits, np.mean(window_logits, axis=0), atol=1e-5)


def test_second_run_is_served_from_the_cache_without_a_session(tiny, cache_dir):
    first = Tracer(tiny.export("bert"), cache_dir=cache_dir)
    a = first.trace_texts(TEXTS)
    assert first.stats.traced == len(TEXTS) and first.stats.sessions == 1
    again = Tracer(tiny.export("bert"), cache_dir=cache_dir)
    rows = [Row(id=f"x{i}", text=t, label="alpha", line=i + 1) for i, t in enumerate(TEXTS)]
    b = list(again.trace(rows))
    assert again.stats.cached == len(TEXTS) and again.stats.traced == 0
    assert again.stats.sessions == 0 and again._session is None
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.attentions, y.attentions)
        np.testing.assert_array_equal(x.logits, y.logits)
    assert [t.id for t in b] == [f"x{i}" for i in range(len(TEXTS))] and b[0].label == "alpha"


def test_cache_misses_when_options_change(tiny, cache_dir):
    Tracer(tiny.export("bert"), cache_dir=cache_dir).trace_texts(TEXTS[:2])
    other = Tracer(tiny.export("bert"), cache_dir=cache_dir, window=16, stride=4)
    other.trace_texts(TEXTS[:2])
    assert other.stats.traced == 2 and other.stats.cached == 0


def test_cache_entries_sit_where_earlier_versions_put_them(tiny, cache_dir):
    """Keys and layout are pinned, computed here by hand: a user's existing cache stays valid."""
    import hashlib
    import json

    from attnreport.trace.cache import ResultCache

    folder = tiny.export("bert")
    tracer = Tracer(folder, cache_dir=cache_dir)
    tracer.trace_texts(["refill please"])
    model = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    model += hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest()
    options = json.dumps({"model": "model.onnx", "stride": tracer.stride, "window": tracer.window})
    text = hashlib.sha256(b"refill please").hexdigest()
    run = hashlib.sha256((model + options).encode()).hexdigest()[:24]
    assert tracer.cache.path("refill please") == cache_dir / "traces" / run / text[:2] / f"{text}.npz"
    assert [p.relative_to(cache_dir) for p in cache_dir.rglob("*.npz")] == [
        tracer.cache.path("refill please").relative_to(cache_dir)
    ]
    assert tracer.key == model + options  # what the analysis cache is keyed by
    results = ResultCache(cache_dir, "analysis", tracer.key, {"output": "probability"})
    salted = hashlib.sha256(("analysis" + tracer.key + '{"output": "probability"}').encode()).hexdigest()
    assert results.path("refill please") == cache_dir / "analysis" / salted[:24] / text[:2] / f"{text}.json"
    # and literally, for a fixed input (the paths the cache wrote before it was one class)
    odd = "héllo \udc80 world"  # a lone surrogate, as a CSV row with bad bytes can hold
    key = "5c/5cd514f03ff244c8a6b376cabc15d4b74afe62d6b7c78053b166f373f33cebf2"
    from attnreport.trace.cache import TraceCache

    opts = {"window": 510, "stride": 64, "model": "model.onnx"}
    assert TraceCache(cache_dir, "abc" * 10, opts).path(odd) == (
        cache_dir / "traces" / "1cb5f15165f2e2f4de767a7a" / f"{key}.npz"
    )
    assert ResultCache(cache_dir, "analysis", "abc" * 10, {"x": [1, 2], "a": None}).path(odd) == (
        cache_dir / "analysis" / "3ad4c79b71892f73d580d970" / f"{key}.json"
    )


def test_a_damaged_cache_entry_is_a_miss_and_is_written_again(tiny, cache_dir):
    from attnreport.trace.cache import ResultCache

    first = Tracer(tiny.export("bert"), cache_dir=cache_dir)
    (trace,) = first.trace_texts(["refill please"])
    entry = first.cache.path("refill please")
    entry.write_bytes(entry.read_bytes()[:100])  # cut short, as by a full disk
    again = Tracer(tiny.export("bert"), cache_dir=cache_dir)
    (retraced,) = again.trace_texts(["refill please"])
    assert again.stats.traced == 1 and again.stats.cached == 0
    np.testing.assert_array_equal(retraced.attentions, trace.attentions)
    assert Tracer(tiny.export("bert"), cache_dir=cache_dir).cache.get("refill please") is not None
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no temporary left

    results = ResultCache(cache_dir, "analysis", first.key, {})
    assert results.get("a") is None
    results.put("a", {"values": [0.5, -1.0], "exact": True})
    assert results.get("a") == {"values": [0.5, -1.0], "exact": True}
    for damage in (b'{"values": [0.5', b"\xff\xfe not utf-8"):
        results.path("a").write_bytes(damage)
        assert results.get("a") is None


def test_a_token_reads_as_the_text_its_offsets_cover():
    """Known answer: a byte-level BPE's "Ġw" reads " w" from the text; a special token, or one
    covering no text, keeps its own name."""
    from attnreport.core.tokens import display_tokens

    text = "hi world"
    tokens = ["<s>", "hi", "Ġworld", "Ġ"]
    offsets = np.array([[0, 0], [0, 2], [2, 8], [8, 8]])
    special = np.array([True, False, False, False])
    assert display_tokens(text, tokens, offsets, special) == ["<s>", "hi", " world", "Ġ"]
    with pytest.raises(ValueError):
        display_tokens(text, tokens[:3], offsets, special)
