"""Attribution units on hand-written texts and tokenisations, and on a real byte-level tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis.units import attribution_units, segment


def tokenised(text: str, pieces: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of `pieces` found one after the other in `text`, between [CLS] and [SEP]."""
    offsets, at = [(0, 0)], 0
    for piece in pieces:
        start = text.index(piece, at)
        offsets.append((start, start + len(piece)))
        at = start + len(piece)
    offsets.append((0, 0))
    special = np.zeros(len(offsets), dtype=bool)
    special[[0, -1]] = True
    return np.array(offsets), special


def texts_of(units, text):
    return [u["text"] for u in units.to_list(text)]


def members_of(units):
    return [m.tolist() for m in units.members]


ENGLISH = "The card was charged twice. Where is it?\nRefund me."
PIECES = ["The", "card", "was", "char", "ged", "twice", ".", "Where", "is", "it", "?", "Refund", "me", "."]


def test_words_sentences_and_lines_of_an_english_text():
    offsets, special = tokenised(ENGLISH, PIECES)
    words = segment(ENGLISH, offsets, special, "word")
    assert texts_of(words, ENGLISH) == [
        "The", "card", "was", "charged", "twice.", "Where", "is", "it?", "Refund", "me.",
    ]  # fmt: skip
    # positions in the token sequence, [CLS] = 0: "charged" is tokens 4 and 5
    assert members_of(words)[3] == [4, 5] and members_of(words)[4] == [6, 7]
    sentences = segment(ENGLISH, offsets, special, "sentence")
    assert texts_of(sentences, ENGLISH) == ["The card was charged twice.", "Where is it?", "Refund me."]
    assert members_of(sentences) == [list(range(1, 8)), list(range(8, 12)), list(range(12, 15))]
    lines = segment(ENGLISH, offsets, special, "line")
    assert texts_of(lines, ENGLISH) == ["The card was charged twice. Where is it?", "Refund me."]
    for units in (words, sentences, lines):
        spans = [(u["start"], u["stop"]) for u in units.to_list(ENGLISH)]
        assert all(ENGLISH[a:b] == t for (a, b), t in zip(spans, texts_of(units, ENGLISH), strict=True))
        assert units.of_token.tolist()[0] == -1 and units.of_token.tolist()[-1] == -1
        assert sorted(p for m in members_of(units) for p in m) == list(range(1, 15))


def test_abbreviations_decimals_and_lowercase_continuations_do_not_end_a_sentence():
    text = 'Pay 3.50 now, e.g. by card. Then wait!  "Really?" Yes'
    pieces = text.replace('"', ' " ').replace("!", " ! ").replace("?", " ? ").split()
    offsets, special = tokenised(text, pieces)
    assert texts_of(segment(text, offsets, special, "sentence"), text) == [
        "Pay 3.50 now, e.g. by card.",
        "Then wait!",
        '"Really?"',
        "Yes",
    ]


def test_chinese_characters_are_words_and_the_tokenizer_keeps_what_it_joins():
    text = "我的卡被扣了两次。请退款！\n谢谢"
    # one token per character, except 退款, which this tokenizer keeps together
    pieces = ["我", "的", "卡", "被", "扣", "了", "两", "次", "。", "请", "退款", "！", "谢", "谢"]
    offsets, special = tokenised(text, pieces)
    words = segment(text, offsets, special, "word")
    assert texts_of(words, text) == [
        "我", "的", "卡", "被", "扣", "了", "两", "次。", "请", "退款！", "谢", "谢",
    ]  # fmt: skip
    assert members_of(words)[9] == [11, 12]  # 退款 and ！
    sentences = segment(text, offsets, special, "sentence")
    assert texts_of(sentences, text) == ["我的卡被扣了两次。", "请退款！", "谢谢"]
    mixed = "用attnreport看看"
    offsets, special = tokenised(mixed, ["用", "attn", "report", "看", "看"])
    assert texts_of(segment(mixed, offsets, special, "word"), mixed) == ["用", "attnreport", "看", "看"]


def test_byte_level_offsets_with_spaces_and_a_newline_token_stay_in_their_line():
    text = "hi there\n\nnext line"
    # GPT-2 style: the space is part of the token that follows it, newlines are tokens
    offsets = np.array([(0, 2), (2, 8), (8, 10), (10, 14), (14, 19)])
    special = np.zeros(5, dtype=bool)
    lines = segment(text, offsets, special, "line")
    assert texts_of(lines, text) == ["hi there", "next line"]
    assert members_of(lines) == [[0, 1, 2], [3, 4]]
    words = segment(text, offsets, special, "word")
    assert texts_of(words, text) == ["hi", "there", "next", "line"]
    assert members_of(words) == [[0], [1, 2], [3], [4]]


def test_auto_picks_tokens_then_words_then_sentences():
    offsets, special = tokenised(ENGLISH, PIECES)
    assert attribution_units(ENGLISH, offsets, special, max_tokens=14).kind == "token"
    assert len(attribution_units(ENGLISH, offsets, special, max_tokens=14)) == 14
    assert attribution_units(ENGLISH, offsets, special, max_tokens=13, max_words=10).kind == "word"
    auto = attribution_units(ENGLISH, offsets, special, max_tokens=13, max_words=9)
    assert auto.kind == "sentence" and len(auto) == 3
    with pytest.raises(ValueError, match="unknown; choose one of token, word, sentence, line"):
        segment(ENGLISH, offsets, special, "paragraph")


def test_unit_masks_mask_every_token_of_a_unit():
    offsets, special = tokenised(ENGLISH, PIECES)
    sentences = segment(ENGLISH, offsets, special, "sentence")
    content = np.flatnonzero(~special)
    masks = sentences.token_masks(np.array([[True, False, True], [False, True, False]]), content)
    assert masks.tolist() == [[True] * 7 + [False] * 4 + [True] * 3, [False] * 7 + [True] * 4 + [False] * 3]
    per_token = np.arange(len(offsets), dtype=float)
    assert sentences.reduce(per_token).tolist() == [sum(range(1, 8)), sum(range(8, 12)), sum(range(12, 15))]


def test_a_real_byte_level_tokenizer_on_chinese_puts_every_token_in_one_unit():
    """Byte-level BPE splits a Han character into byte tokens that share its span: they must
    land in that character's word, and no unit may overlap another."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the card was charged twice", "退款 please"] * 5, trainer)
    text = "退款请求：卡被扣了两次。\nthe card was charged twice"
    enc = tok.encode(text)
    offsets, special = np.array(enc.offsets), np.zeros(len(enc.ids), dtype=bool)
    assert len(enc.ids) > len(text) - 20  # the unseen characters came out as several byte tokens
    words = segment(text, offsets, special, "word")
    assert enc.tokens[0] == "éĢĢæ¬¾" and enc.offsets[0] == (0, 2)  # 退款 was in its corpus: one token
    assert texts_of(words, text) == [
        "退款", "请", "求：", "卡", "被", "扣", "了", "两", "次。", "the", "card", "was", "charged", "twice",
    ]  # fmt: skip
    owner = words.of_token
    assert (owner >= 0).all()
    for u, (a, b) in enumerate(words.spans.tolist()):
        for p in words.members[u]:
            start, stop = offsets[p]
            visible = [i for i in range(start, stop) if not text[i].isspace()]
            assert all(a <= i < b for i in visible)  # each token's visible characters lie in its unit
    assert all(words.spans[u, 1] <= words.spans[u + 1, 0] for u in range(len(words) - 1))
    sentences = segment(text, offsets, special, "sentence")
    assert texts_of(sentences, text) == ["退款请求：卡被扣了两次。", "the card was charged twice"]
