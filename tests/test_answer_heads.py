"""The generation report's head atlas (`analysis.answer_heads`) against planted patterns: hand-made
attention rows where each pattern is planted in one head and absent from the others, the formulas
read literally in loops, and the hand-set copy circuit (a previous-token head, an induction head)
and its planted-sink twin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from attnreport.analysis.answer_heads import (
    ANSWER_PATTERNS,
    AnswerHeadAtlas,
    AnswerHeadThresholds,
    answer_head_atlas,
    pattern_counts,
    prompt_head_scores,
)
from attnreport.analysis.sinks import find_sinks
from attnreport.core.errors import ConfigError
from attnreport.core.generation import GenerationTrace

#: a chat prompt: a template with a system line, the user's question, the assistant's turn
TEMPLATE_HEAD = ["<s>", "system", ":", "You", "are", "a", "helpful", "bot", "<e>", "<s>", "user", ":"]
QUESTION = ["What", "is", "the", "capital", "of", "France", "?"]
TEMPLATE_TAIL = ["<e>", "<s>", "assistant", ":"]
PROMPT = TEMPLATE_HEAD + QUESTION + TEMPLATE_TAIL
N = len(PROMPT)
FRANCE = len(TEMPLATE_HEAD) + QUESTION.index("France")
QUESTION_AT = np.arange(len(TEMPLATE_HEAD), len(TEMPLATE_HEAD) + len(QUESTION))
#: long enough for the question head's zero weight on the answer's tokens to show it is no recency
#: head (over the first steps the question is the most recent text beyond the window)
STEPS = 10
KEYS = N + STEPS - 1
#: the planted heads of each layer, in head order
PLANTED = ("uniform", "local", "question", "entity", "recency", "previous")


def planted_row(kind: str, query: int) -> np.ndarray:
    """One answer step's row at `query` for a planted head, over positions 1 .. query (the sink
    position 0 gets nothing here; `planted_trace` adds it)."""
    row = np.zeros(KEYS)
    seen = np.arange(1, query + 1)
    if kind == "uniform":
        row[seen] = 1.0
    elif kind == "local":  # spread evenly over the last four positions
        row[query - 3 : query + 1] = 1.0
    elif kind == "previous":
        row[query - 1] = 1.0
    elif kind == "question":  # evenly over the question's words
        row[QUESTION_AT] = 1.0
    elif kind == "entity":  # back to "France" at every step, the rest spread
        row[seen] = 0.3 / len(seen)
        row[FRANCE] += 0.7
    elif kind == "recency":  # weight decaying slowly with distance, over the whole context
        row[seen] = np.exp(-0.1 * (query - seen))
    return row / row.sum()


def planted_trace(*, sink: float = 0.6, trace_id: str = "planted") -> GenerationTrace:
    """Two layers of the `PLANTED` heads; in layer 0 every head gives `sink` of each row to
    position 0 (a sink by `find_sinks`'s rule), in layer 1 none does."""
    text = " ".join(PROMPT)
    starts = np.cumsum([0] + [len(t) + 1 for t in PROMPT[:-1]])
    offsets = np.stack([starts, starts + [len(t) for t in PROMPT]], axis=1)
    special = np.array([t in ("<s>", "<e>") for t in PROMPT])
    template = np.ones(N, dtype=bool)
    template[QUESTION_AT] = False
    rows = np.zeros((2, len(PLANTED), STEPS, KEYS))
    for h, kind in enumerate(PLANTED):
        for t in range(STEPS):
            row = planted_row(kind, N - 1 + t)
            rows[0, h, t] = (1 - sink) * row
            rows[0, h, t, 0] += sink
            rows[1, h, t] = row
    return GenerationTrace(
        id=trace_id,
        prompt=" ".join(QUESTION),
        text=text,
        prompt_tokens=PROMPT,
        prompt_ids=np.arange(N),
        prompt_offsets=offsets,
        special=special,
        from_template=template,
        tokens=[f" a{t}" for t in range(STEPS)],
        ids=np.arange(STEPS),
        answer="",
        probability=np.full(STEPS, 0.5),
        entropy=np.ones(STEPS),
        rank=np.zeros(STEPS, dtype=int),
        top_ids=np.zeros((STEPS, 1)),
        top_probabilities=np.zeros((STEPS, 1)),
        top_tokens=[["x"]] * STEPS,
        attentions=rows,
        hidden=np.zeros((3, STEPS, 2)),
    )


def by_head(heads):
    return {(h.layer, h.head): h for h in heads}


def test_each_planted_pattern_is_found_and_absent_from_the_other_heads():
    trace = planted_trace()
    assert find_sinks(trace.attentions, N).layers == [[0], []]
    heads = by_head(answer_head_atlas([trace]))
    want = {
        "uniform": set(),
        "local": {"local"},
        "previous": {"local"},
        "question": {"question"},
        # "France" is a word of the question: a head fixed on it reads the question too
        "entity": {"entity", "question"},
        "recency": {"recency"},
    }
    for h, kind in enumerate(PLANTED):
        # layer 0: the same pattern beyond a sink that takes 60% of every row
        assert set(heads[0, h].patterns) == want[kind] | {"sink"}, kind
        assert set(heads[1, h].patterns) == want[kind], kind
        assert heads[0, h].scores["sink"] == pytest.approx(0.6)
        for p in ANSWER_PATTERNS[1:]:  # beyond the sink, the two layers read the same
            assert heads[0, h].scores[p] == pytest.approx(heads[1, h].scores[p], abs=1e-6), (kind, p)
    # 0.7 on "France" at every step, and its share of the 0.3 spread over the q keys it can see
    spread = 0.3 / np.arange(N - 1, N - 1 + STEPS)
    assert heads[1, 3].scores["entity"] == pytest.approx(0.7 + spread.mean(), abs=1e-6)
    assert heads[1, 3].examples["entity"].key == "France"
    assert heads[1, 3].examples["entity"].position == FRANCE
    assert heads[1, 2].scores["entity"] < 0.3  # spread over seven words: no one entity
    assert heads[1, 0].scores["recency"] == 0.0  # every weight ties
    counts = pattern_counts(list(heads.values()), 2)
    assert counts["sink"] == [6, 0] and counts["local"] == [2, 2] and counts["recency"] == [1, 1]


def loop_scores(trace: GenerationTrace, layer: int, head: int, window: int = 4) -> dict[str, float]:
    """The module docstring's formulas, read literally over the steps and keys."""
    n, steps = trace.n_prompt, trace.steps
    sinks = set(find_sinks(trace.attentions, n).positions)
    question = [j for j in range(n) if not trace.from_template[j] and not trace.special[j] and j not in sinks]
    content = [j for j in question if any(c.isalnum() for c in PROMPT[j])]
    sink = local = on_question = rest = 0.0
    per_token = dict.fromkeys(content, 0.0)
    rhos = []
    for t in range(steps):
        q = n - 1 + t
        row = trace.attentions[layer, head, t].astype(np.float64)
        s = sum(row[j] for j in sinks)
        sink += s / steps
        rest += 1 - s
        local += sum(row[j] for j in range(q - window + 1, q + 1) if j not in sinks)
        on_question += sum(row[j] for j in question if q - j >= window)
        for j in content:
            if q - j >= window:
                per_token[j] += row[j]
        keys = [j for j in range(q - window + 1) if j not in sinks]
        rho = spearmanr(row[keys], keys).statistic
        rhos.append(0.0 if np.isnan(rho) else rho)
    return {
        "sink": sink,
        "local": local / rest,
        "question": on_question / rest,
        "entity": max(per_token.values()) / rest,
        "recency": float(np.mean(rhos)),
    }


@pytest.mark.parametrize("seed", range(3))
def test_the_scores_are_the_formulas_read_in_loops(seed):
    rng = np.random.default_rng(seed)
    trace = planted_trace(sink=0.5)
    logits = rng.normal(size=trace.attentions.shape) * 2
    logits[1, :, :, 0] += 3  # a sink in layer 1 for most rows
    visible = np.arange(KEYS)[None, :] <= N - 1 + np.arange(STEPS)[:, None]
    weights = np.where(visible, np.exp(logits), 0.0)
    trace.attentions = (weights / weights.sum(-1, keepdims=True)).astype(np.float32)
    result = prompt_head_scores(trace)
    for layer in range(2):
        for head in range(len(PLANTED)):
            want = loop_scores(trace, layer, head)
            got = {p: result.scores[i, layer, head] for i, p in enumerate(ANSWER_PATTERNS)}
            for p in ANSWER_PATTERNS:
                assert got[p] == pytest.approx(want[p], abs=1e-6), (layer, head, p)


def test_prompts_weigh_the_same_and_examples_name_the_strongest_step():
    strong, weak = planted_trace(sink=0.9, trace_id="strong"), planted_trace(sink=0.55, trace_id="weak")
    atlas = AnswerHeadAtlas()
    atlas.add(weak)
    atlas.add(strong)
    heads = by_head(atlas.heads())
    assert heads[0, 0].scores["sink"] == pytest.approx((0.9 + 0.55) / 2)
    example = heads[0, 0].examples["sink"]
    assert (example.id, example.position, example.key) == ("strong", 0, "<s>")
    assert example.value == pytest.approx(0.9)
    assert "sink" not in heads[1, 0].examples  # no sink in layer 1: nothing to show
    local = heads[1, 5].examples["local"]  # the previous-token head: every step holds all of it
    assert (local.id, local.step, local.position) == ("weak", 0, N - 2)


def test_thresholds_are_checked_and_the_rules_state_them():
    with pytest.raises(ConfigError, match="local"):
        AnswerHeadThresholds(local=1.5)
    with pytest.raises(ConfigError, match="known: sink"):
        AnswerHeadThresholds.from_dict({"locl": 0.3})
    rules = AnswerHeadThresholds().rules()
    assert list(rules) == list(ANSWER_PATTERNS) and "50%" in rules["local"]


def copy_trace(model):
    from test_sinks import copy_prompt
    from tiny_models import COPY_WORDS

    from attnreport.trace import GenerationOptions, Generator

    first = "<unk>" if model.name == "export-sink" else COPY_WORDS[0]
    prompt, answer, sources = copy_prompt(first)
    (trace,) = Generator(model, use_cache=False).generate_texts(
        [prompt], GenerationOptions(max_new_tokens=len(answer))
    )
    assert trace.tokens == answer
    return trace


def test_the_copy_circuit_previous_token_head_is_local_and_its_induction_head_is_not(copy_model):
    trace = copy_trace(copy_model)
    heads = by_head(answer_head_atlas([trace]))
    previous, induction = heads[0, 0], heads[1, 0]
    assert "local" in previous.patterns and previous.scores["local"] > 0.99
    example = previous.examples["local"]
    assert example.position == trace.n_prompt - 2 + example.step  # the token before the writing one
    # the induction head reads a different source at every step, eleven positions back
    assert "local" not in induction.patterns and induction.scores["local"] < 0.01
    assert "sink" not in induction.patterns and "entity" not in induction.patterns
    assert not any("sink" in h.patterns for h in heads.values())


def test_the_planted_sink_models_heads_are_sinks(sink_model):
    heads = answer_head_atlas([copy_trace(sink_model)])
    assert all("sink" in h.patterns for h in heads)
    assert {h.examples["sink"].position for h in heads} == {0}
    # beyond the sink the previous-token head is still local
    assert "local" in by_head(heads)[0, 0].patterns


def test_the_generation_report_has_the_atlas_in_report_json_on_its_page_and_the_index(tmp_path):
    import json
    import re

    from markupsafe import escape

    from attnreport.kinds.generation import plan_from_generations
    from attnreport.site.build import HEAD_PATTERNS_PAGE, write_site
    from attnreport.testing import model_card

    card = model_card(
        architecture="LlamaForCausalLM",
        task="causal-lm",
        labels=[],
        causal=True,
        read_position="last",
        layers=2,
        heads=len(PLANTED),
    )
    traces = [planted_trace(trace_id="a"), planted_trace(sink=0.8, trace_id="b <i>")]
    plan = plan_from_generations(iter(traces), card, title="atlas", spool=tmp_path / "spool")
    site = write_site(plan, tmp_path / "site")
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    hp = report["head_patterns"]
    assert hp["patterns"] == list(ANSWER_PATTERNS) and hp["rules"] == AnswerHeadThresholds().rules()
    assert hp["prompts"] == 2 and len(hp["heads"]) == 2 * len(PLANTED)
    assert hp["counts"]["sink"] == [6, 0] and hp["totals"]["entity"] == 2
    entity = hp["heads"][len(PLANTED) + 3]
    assert (entity["layer"], entity["head"], entity["patterns"]) == (1, 3, ["question", "entity"])
    pages = {e["id"]: e["page"] for e in report["examples"]}
    example = entity["examples"]["entity"]
    assert example["key"] == "France" and example["page"] == f"{pages[example['id']]}#step={example['step']}"
    sink = hp["heads"][0]["examples"]["sink"]
    assert sink["id"] == "b <i>" and sink["value"] == pytest.approx(0.8)
    page = (site / HEAD_PATTERNS_PAGE).read_text(encoding="utf-8")
    assert "b <i>" not in page and escape("b <i>") in page  # ids are escaped
    for rule in hp["rules"].values():
        assert escape(rule) in page
    assert 'id="L1-H3" data-patterns="question entity"' in page
    links = set(re.findall(r'href="([^"#]+)', page))  # every link, stylesheets included, is a file
    assert links >= {"index.html", "report.json"} and all((site / link).is_file() for link in links), links
    assert any(link.startswith("examples/") for link in links)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{HEAD_PATTERNS_PAGE}"' in index and 'data-pattern="sink">6 park' in index
