"""The one npz codec (`core.npz`): the cache files `Trace` and `GenerationTrace` wrote before it
read back, byte for byte, and a field its codec does not name is an error, not a lost value."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from test_generation import make as make_generation

from attnreport.core.generation import GenerationTrace
from attnreport.core.npz import NpzCodec
from attnreport.core.trace import Trace
from attnreport.testing import random_trace


def full_trace() -> Trace:
    """A trace with every optional field set: logits, windows, a group, queries and keys."""
    trace = random_trace(n=5, layers=2, heads=2, random_state=3)
    qk = np.random.default_rng(0).standard_normal((2, 2, 5, 4)).astype(np.float32)
    trace.logits, trace.windows, trace.group = np.array([0.5, -1.0], np.float32), [(0, 3), (2, 5)], "web"
    trace.queries, trace.keys, trace.label, trace.text = qk, qk * 2, "urgent", "lock my «card»"
    return trace


def written_before_the_codec(trace: Trace) -> bytes:
    """`Trace.to_bytes` as it was written by hand before `core.npz` (commit be6fa7b)."""
    meta = {
        "id": trace.id,
        "text": trace.text,
        "tokens": trace.tokens,
        "label": trace.label,
        "group": trace.group,
        "windows": [list(w) for w in trace.windows],
    }
    arrays = {"offsets": trace.offsets, "special": trace.special, "attentions": trace.attentions}
    arrays["hidden"] = trace.hidden
    if trace.logits is not None:
        arrays["logits"] = trace.logits
    if trace.queries is not None:
        arrays["queries"], arrays["keys"] = trace.queries, trace.keys
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("full", [True, False])
def test_trace_files_keep_their_format_and_read_back_whole(full):
    trace = full_trace() if full else random_trace(n=3, layers=1, heads=1)
    data = trace.to_bytes()
    assert data == written_before_the_codec(trace)  # existing caches stay readable, and equal
    back = Trace.from_bytes(data)
    for name, value in vars(trace).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(back, name), value)
            assert getattr(back, name).dtype == value.dtype, name
        else:
            assert getattr(back, name) == value, name
    assert all(isinstance(w, tuple) for w in back.windows)


def test_a_field_missing_from_an_older_file_takes_its_default():
    """Traces cached before `group` existed: their meta has no "group"."""
    trace = full_trace()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(trace.to_bytes())) as old, zipfile.ZipFile(buf, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "meta.npy":
                meta = json.loads(np.load(io.BytesIO(data)).tobytes())
                del meta["group"]
                out = io.BytesIO()
                np.save(out, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
                data = out.getvalue()
            new.writestr(item.filename, data)
    back = Trace.from_bytes(buf.getvalue())
    assert back.group is None and back.windows == trace.windows


@pytest.mark.parametrize("lens", [True, False])
def test_generation_traces_leave_out_absent_arrays_and_keep_the_member_order(lens):
    g = make_generation(lens=lens, prompt_attention=lens)
    with zipfile.ZipFile(io.BytesIO(g.to_bytes())) as z:
        members = [name.removesuffix(".npy") for name in z.namelist()]
    optional = [
        "prompt_attentions",
        "lens_probability",
        "lens_rank",
        "lens_top_ids",
        "lens_top_probabilities",
    ]
    assert members[0] == "meta" and members[1:13] == [
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
    ]
    assert members[13:] == (optional if lens else [])
    assert GenerationTrace.from_bytes(g.to_bytes()).to_bytes() == g.to_bytes()


def test_a_codec_names_every_field_once():
    @dataclass
    class Pair:
        name: str
        values: np.ndarray
        weights: np.ndarray | None = None

    with pytest.raises(TypeError, match=r"not named: \['weights'\], not fields: \['extra'\]"):
        NpzCodec(Pair, arrays=("values", "extra"), meta=("name",))
    with pytest.raises(TypeError, match="once"):
        NpzCodec(Pair, arrays=("values", "weights"), meta=("name", "values"))
    codec = NpzCodec(Pair, arrays=("values", "weights"), meta=("name",))
    stored = codec.loads(codec.dumps(Pair("a", np.arange(3))))
    assert stored.keys() == {"name", "values"} and stored["values"].tolist() == [0, 1, 2]
