"""Multi-turn chats: every message's content located in the rendered chat (against transformers'
own apply_chat_template), a template's default system prompt found, chat rows read and refused,
and a chat row explained end to end, its earlier turns as units checked by brute-force Shapley."""

from __future__ import annotations

import html
import itertools
import json
import math

import numpy as np
import pytest
from sitebuild import HOSTILE
from test_browser import open_page
from tiny_models import CHATML

from attnreport.analysis.generation import prompt_units, segment_members, segment_name, turn_members
from attnreport.core.config import DataConfig, load_config
from attnreport.core.errors import ConfigError, InputError
from attnreport.core.generation import GenerationTrace, Turn
from attnreport.pipeline import build
from attnreport.trace import GenerationOptions, Generator, Prompt, read_rows
from attnreport.trace.chat_template import ChatTemplate
from attnreport.trace.forced import ForcedAnswer

#: SmolLM2-135M-Instruct's chat template (Apache-2.0), as its GGUF and tokenizer_config.json carry
#: it: ChatML with a default system prompt when the chat has none
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
#: no default system prompt: a chat without one renders without one
PLAIN = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
#: Llama 3's way: every content trimmed, and no system block without a system message
TRIMMED = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
TEMPLATES = {"chatml": CHATML, "smollm2": SMOLLM2, "plain": PLAIN, "trimmed": TRIMMED}

CHATS = [
    [{"role": "user", "content": "When was Apple founded?"}],
    [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Is an apple a fruit or a company?"},
    ],
    [
        {"role": "user", "content": "  What is the capital of France? "},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
    ],
    [
        {"role": "user", "content": HOSTILE[0]},
        {"role": "assistant", "content": HOSTILE[5]},
        {"role": "user", "content": "苹果公司 成立于 哪一年?"},
    ],
]


@pytest.fixture(scope="module")
def tokenizer(tiny):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(tiny.checkpoint("qwen2-chat")))


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_turn_is_located_exactly_in_transformers_own_render(tokenizer, name):
    source = TEMPLATES[name]
    template = ChatTemplate(source, name=name, special={})
    for chat in CHATS:
        want = tokenizer.apply_chat_template(
            chat, chat_template=source, tokenize=False, add_generation_prompt=True
        )
        rendered = template.render_chat(chat)
        assert rendered.text == want
        own = [t for t in rendered.turns if not t.injected]
        assert [t.role for t in own] == [m["role"] for m in chat]
        for turn, message in zip(own, chat, strict=True):
            content = message["content"].strip() if name == "trimmed" else message["content"]
            assert rendered.text[turn.start : turn.end] == content
        spans = [(t.start, t.end) for t in rendered.turns]
        assert spans == sorted(spans) and all(a <= b for a, b in spans)
        assert (rendered.start, rendered.end) == (own[-1].start, own[-1].end)


def test_a_default_system_prompt_is_found_where_the_template_injects_one():
    for source, injected in ((SMOLLM2, SMOLLM2_SYSTEM), (CHATML, "You are a helpful assistant.")):
        template = ChatTemplate(source, name="t", special={})
        for chat in CHATS:
            rendered = template.render_chat(chat)
            first = rendered.turns[0]
            if chat[0]["role"] == "system":
                assert not any(t.injected for t in rendered.turns)
            else:
                assert first.injected and first.role == "system"
                assert rendered.text[first.start : first.end] == injected
                assert sum(t.injected for t in rendered.turns) == 1
        # a plain prompt too (the demo's rows)
        rendered = template.render("What is the capital of France?")
        assert rendered.turns[0].injected and rendered.text[rendered.start : rendered.end].startswith("What")
    for source in (PLAIN, TRIMMED):
        template = ChatTemplate(source, name="t", special={})
        assert not any(t.injected for chat in CHATS for t in template.render_chat(chat).turns)


def test_a_template_that_rewrites_a_message_is_refused():
    upper = PLAIN.replace("{{ m['content'] }}", "{{ m['content'] | upper }}")
    with pytest.raises(ConfigError, match="does not place the prompt's text as given"):
        ChatTemplate(upper, name="t", special={}).render_chat(CHATS[2])
    twice = PLAIN.replace("{{ m['content'] }}", "{{ m['content'] }}{{ m['content'] }}")
    with pytest.raises(ConfigError, match="does not place"):
        ChatTemplate(twice, name="t", special={}).render_chat(CHATS[0])


def test_chat_rows_are_read_and_bad_ones_are_one_line_errors_naming_the_row(tmp_path):
    chat = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    bad = [
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": []},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": ["hi"]}]},
        {"messages": "hi"},
        {"messages": [{"role": "user", "content": "hi"}], "prompt": "hi"},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "x"},
                {"role": "user", "content": "hi"},
            ]
        },
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [chat, *bad]), encoding="utf-8")
    skipped = []
    rows = list(read_rows(DataConfig(path=path), prompts=True, on_bad=skipped.append))
    assert [(r.text, r.history) for r in rows] == [("hi", (("system", "be brief"),))]
    reasons = [b.reason for b in skipped]
    assert [b.line for b in skipped] == list(range(2, 2 + len(bad)))
    assert "role 'robot'" in reasons[0] and "non-empty list" in reasons[1]
    assert "from the assistant, not the user" in reasons[2] and "not a string" in reasons[3]
    assert "non-empty list" in reasons[4] and "not both" in reasons[5] and "only first" in reasons[6]
    for number, row in enumerate(bad, start=2):
        one = tmp_path / f"bad{number}.jsonl"
        one.write_text(json.dumps(chat) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
        with pytest.raises(InputError) as info:
            list(read_rows(DataConfig(path=one, on_bad_row="fail"), prompts=True))
        assert str(info.value).startswith(f"{one}:2: ") and "\n" not in str(info.value)


def test_turns_survive_the_npz_codec_and_old_traces_load():
    trace = GenerationTrace(
        id="t",
        prompt="hi",
        text="<s>sys hi",
        prompt_tokens=["<s>", "sys", " hi"],
        prompt_ids=[0, 1, 2],
        prompt_offsets=[[0, 0], [3, 6], [6, 9]],
        special=[True, False, False],
        from_template=[True, True, False],
        tokens=["!"],
        ids=[3],
        answer="!",
        probability=[0.5],
        entropy=[1.0],
        rank=[0],
        top_ids=[[3]],
        top_probabilities=[[0.5]],
        top_tokens=[["!"]],
        attentions=np.full((1, 1, 1, 3), 1 / 3),
        hidden=np.zeros((2, 1, 2)),
        turns=[Turn("system", 3, 6, injected=True), Turn("user", 7, 9)],
    )
    back = GenerationTrace.from_bytes(trace.to_bytes())
    assert back.turns == trace.turns and isinstance(back.turns[0], Turn)
    from attnreport.core import generation as module

    meta = [name for name in module._CODEC.meta if name != "turns"]
    old = module.NpzCodec(GenerationTrace, arrays=module._CODEC.arrays, meta=(*meta, "turns"))
    old.meta = tuple(meta)  # a file written before traces had turns
    assert GenerationTrace.from_bytes(old.dumps(trace)).turns == []
    with pytest.raises(ValueError, match="turn 0 is 'robot'"):
        GenerationTrace.from_bytes(trace.to_bytes()).__class__(
            **{**back.__dict__, "turns": [Turn("robot", 0, 1)]}
        )


# ---------------------------------------------------------------------------- end to end

HISTORY = (("system", "be brief"), ("user", "where is my parcel"), ("assistant", "it is on its way"))
LAST = "refill please"
#: hostile content that would set window.__pwned if the page ran it (short: the tiny model has 128
#: positions)
SCRIPT = "<script>__pwned=1</script>"
NEW = 4


def _page_data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    start = page.index('<script type="application/json" id="generation-data">')
    start = page.index(">", start) + 1
    return json.loads(page[start : page.index("</script>", start)])


@pytest.fixture(scope="module")
def chat_build(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    model = tiny.export("qwen2-chat")
    rows = [
        {
            "id": "chat",
            "messages": [{"role": r, "content": c} for r, c in HISTORY] + [{"role": "user", "content": LAST}],
        },
        {"id": "plain", "prompt": "the card was charged twice"},
        {
            "id": "hostile",
            "messages": [
                {"role": "user", "content": SCRIPT},
                {"role": "assistant", "content": "<b>ok</b>"},
                {"role": "user", "content": "refill please"},
            ],
            "completion": " ok then",
        },
    ]
    (root / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "report.toml").write_text(
        f'title = "Chats"\ncache_dir = "cache"\n[model]\npath = "{model}"\n[data]\npath = "prompts.jsonl"\n'
        f'[generate]\nmax_new_tokens = {NEW}\nchat_template = true\nattributions = ["shapley"]\n'
        '[[variants]]\nof = "chat"\nprompt = "refill it"\n',
        encoding="utf-8",
    )
    result = build(load_config(root / "report.toml"), root / "site", progress=False, log=lambda m: None)
    report = json.loads((result.site / "report.json").read_text(encoding="utf-8"))
    return model, result.site, {e["id"]: e for e in report["examples"]}


def test_a_chat_row_reads_transformers_ids_and_records_its_turns(tiny, tokenizer, chat_build):
    _, _, entries = chat_build
    g = entries["chat"]["generation"]
    messages = [{"role": r, "content": c} for r, c in HISTORY] + [{"role": "user", "content": LAST}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert g["prompt_ids"] == list(ids) and entries["chat"]["text"] == LAST
    text = g["input_text"]
    assert [(t["role"], text[t["start"] : t["stop"]], t["injected"]) for t in g["turns"]] == [
        *((r, c, False) for r, c in HISTORY),
        ("user", LAST, False),
    ]
    plain = entries["plain"]["generation"]["turns"]
    assert [(t["role"], t["injected"]) for t in plain] == [("system", True), ("user", False)]
    injected = entries["plain"]["generation"]["input_text"][plain[0]["start"] : plain[0]["stop"]]
    assert injected == "You are a helpful assistant."
    forced = entries["hostile"]["generation"]
    assert forced["forced"] and forced["text"] == " ok then"


def test_earlier_turns_are_units_that_lie_in_their_turns(chat_build):
    _, site, entries = chat_build
    for id in ("chat", "plain", "hostile"):
        entry = entries[id]
        g = entry["generation"]
        data = _page_data(site / entry["page"])["attribution"]
        units = g["attributions"]["shapley"]["units"]
        assert [u["text"] for u in units] == data["units"]
        words = [u for u in units if "segment" not in u]
        last = g["turns"][-1]
        assert [u["text"] for u in words] == entry["text"].split()
        offsets = np.asarray(g["prompt_offsets"])
        for unit, members in zip(units, data["members"], strict=True):
            if unit.get("segment") in ("template", "answer"):
                continue
            turn = g["turns"][unit["turn"]] if "turn" in unit else last
            assert members and all(
                turn["start"] <= offsets[m][0] and offsets[m][1] <= turn["stop"] for m in members
            ), unit
        turns = [u["text"] for u in units if "turn" in u]
        want = {
            "chat": ["[system prompt]", "[user turn 1]", "[assistant turn 2]"],
            "plain": ["[default system prompt]"],
            "hostile": ["[default system prompt]", "[user turn 1]", "[assistant turn 2]"],
        }[id]
        assert turns == want
        assert [u["text"] for u in units[-2:]] == ["[the chat template]", "[the answer so far]"]


def test_turn_units_agree_with_brute_force_shapley(chat_build):
    """The chat row has 7 units (2 words, 3 turns, the template, the answer so far): exact Shapley
    of the whole answer's log-probability equals the textbook sum over all 128 coalitions."""
    model, _, entries = chat_build
    g = entries["chat"]["generation"]
    shapley = g["attributions"]["shapley"]
    assert shapley["exact"]
    gen = Generator(model, use_cache=False)
    options = GenerationOptions(max_new_tokens=NEW, chat_template=True)
    (trace,) = gen.generate([Prompt("chat", LAST, None, None, HISTORY)], options)
    assert trace.ids.tolist() == g["ids"]
    segments = segment_members(trace)
    assert list(turn_members(trace)) == ["turn-0", "turn-1", "turn-2"]
    members = [*prompt_units(trace).members, *segments.values()]
    assert [segment_name(trace, name) for name in segments] == [u["text"] for u in shapley["units"][2:]]
    p = len(members)
    masks = np.array(list(itertools.product([False, True], repeat=p)))
    value = dict(
        zip(map(tuple, masks), ForcedAnswer(gen, trace, members)(masks).chosen.sum(axis=1), strict=True)
    )
    brute = np.zeros(p)
    for mask in masks:
        for i in np.flatnonzero(~mask):
            s = int(mask.sum())
            with_i = mask.copy()
            with_i[i] = True
            weight = math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p)
            brute[i] += weight * (value[tuple(with_i)] - value[tuple(mask)])
    np.testing.assert_allclose(shapley["answer"], brute, atol=1e-4)


def test_the_page_shows_the_chat_as_turns_as_text(browser, chat_build, served):
    _, site, entries = chat_build
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    for id, roles in (
        ("chat", ["system", "user", "assistant", "user", "assistant"]),
        ("plain", ["system", "user", "assistant"]),
        ("hostile", ["system", "user", "assistant", "user", "assistant"]),
    ):
        entry = entries[id]
        g = entry["generation"]
        page, problems, outside = open_page(browser, f"{base}/site/{entry['page']}")
        page.wait_for_selector("body[data-generation-ready]")
        assert page.evaluate("window.__pwned") is None
        got = page.eval_on_selector_all("#g-turns > li", "els => els.map(e => e.dataset.role)")
        assert got == roles
        texts = page.eval_on_selector_all("#g-turns .source-text", "els => els.map(e => e.textContent)")
        want = [g["input_text"][t["start"] : t["stop"]] for t in g["turns"]] + [g["text"]]
        assert texts == want
        if id == "plain":
            assert "chat template's default" in page.text_content("#g-turns li.injected")
        assert page.locator("#g-turns script, #g-turns img").count() == 0
        assert problems == [] and outside == []
        page.close()
    raw = (site / entries["hostile"]["page"]).read_text(encoding="utf-8")
    assert html.escape(SCRIPT, quote=False) in raw and SCRIPT not in raw


def test_a_variant_of_a_chat_row_is_asked_in_the_same_chat(chat_build):
    _, _, entries = chat_build
    variant = entries["chat~variant-1"]["generation"]
    text = variant["input_text"]
    got = [(t["role"], text[t["start"] : t["stop"]]) for t in variant["turns"]]
    assert got == [*HISTORY, ("user", "refill it")]


def test_a_chat_without_the_chat_template_is_one_line(chat_build):
    model, _, _ = chat_build
    with pytest.raises(InputError, match="is a chat .*chat_template = true"):
        list(Generator(model, use_cache=False).generate([Prompt("c", LAST, None, None, HISTORY)]))
