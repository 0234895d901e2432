"""Reading texts: JSONL and CSV, bad rows reported with line numbers, streaming."""

from __future__ import annotations

import json

import pytest

from attnreport.core.config import DataConfig
from attnreport.core.errors import InputError
from attnreport.trace import read_rows


def write_jsonl(path, lines: list[bytes]):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_rows_and_bad_rows_with_line_numbers(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            json.dumps({"id": "a", "text": "first", "label": "x"}).encode(),
            json.dumps({"id": "b", "text": "   "}).encode(),
            b"\xff\xfe not utf-8",
            b"{not json",
            json.dumps({"text": "no id here"}).encode(),
            json.dumps({"id": "c", "text": "y" * 50}).encode(),
            json.dumps(["a", "list"]).encode(),
            json.dumps({"id": "a", "text": "duplicate id"}).encode(),
        ],
    )
    bad = []
    rows = list(read_rows(DataConfig(path=path, max_chars=20), on_bad=bad.append))
    assert [(r.id, r.text, r.label, r.line) for r in rows] == [
        ("a", "first", "x", 1),
        ("5", "no id here", None, 5),
    ]
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [
        (2, "no"),
        (3, "not"),
        (4, "not"),
        (6, "text"),
        (7, "a"),
        (8, "duplicate"),
    ]
    assert str(bad[1]).startswith(f"{path}:3: not valid UTF-8")


def test_fail_policy_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [b'{"text": "ok"}', b'{"text": ""}'])
    with pytest.raises(InputError, match=r"d\.jsonl:2: no text.*on_bad_row"):
        list(read_rows(DataConfig(path=path, on_bad_row="fail")))


def test_csv_with_quoted_newlines_and_bom(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(
        '\ufeffid,text,label\n1,"a text, with a comma",x\n'
        '2,"two\nlines ""quoted""",y\n3,,z\n4,short\n'.encode()
    )
    bad = []
    rows = list(read_rows(DataConfig(path=path), on_bad=bad.append))
    assert [(r.id, r.text, r.label, r.line) for r in rows] == [
        ("1", "a text, with a comma", "x", 2),
        ("2", 'two\nlines "quoted"', "y", 3),
    ]
    assert [(b.line, b.reason) for b in bad] == [
        (5, "no text in column 'text'"),
        (6, "has 2 fields, the header has 3"),
    ]


def test_rows_are_streamed_not_read_whole(tmp_path):
    """The reader yields the first rows before it has seen the (bad) rest of the file."""
    path = write_jsonl(tmp_path / "d.jsonl", [b'{"text": "one"}', b'{"text": "two"}', b"broken"])
    rows = read_rows(DataConfig(path=path, on_bad_row="fail"))
    assert next(rows).text == "one" and next(rows).text == "two"
    with pytest.raises(InputError, match=":3:"):
        next(rows)


def test_limit_inline_texts_and_unknown_formats(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps({"text": f"t{i}"}).encode() for i in range(10)])
    assert len(list(read_rows(DataConfig(path=path, limit=3)))) == 3
    rows = list(read_rows(DataConfig(texts=["a", "b"])))
    assert [(r.id, r.text) for r in rows] == [("0", "a"), ("1", "b")]
    with pytest.raises(InputError, match="unknown data format"):
        list(read_rows(DataConfig(path=tmp_path / "d.parquet")))
    with pytest.raises(InputError, match="not found"):
        list(read_rows(DataConfig(path=tmp_path / "missing.csv")))


APPLE = "苹果公司成立于哪一年?"


def test_prompt_rows_carry_their_completion_and_bad_ones_are_reported(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            json.dumps({"id": "q1", "prompt": APPLE, "completion": "苹果是一种水果。"}).encode(),
            json.dumps({"id": "q2", "prompt": "reset my pin", "label": "banking"}).encode(),
            json.dumps({"id": "q3", "text": "a text, not a prompt"}).encode(),
            json.dumps({"id": "q4", "prompt": "x", "completion": 3}).encode(),
        ],
    )
    bad = []
    rows = list(read_rows(DataConfig(path=path), on_bad=bad.append, prompts=True))
    assert [(r.id, r.text, r.completion, r.label) for r in rows] == [
        ("q1", APPLE, "苹果是一种水果。", None),
        ("q2", "reset my pin", None, "banking"),
    ]
    assert [(b.line, b.reason) for b in bad] == [
        (3, "no prompt in column 'prompt'"),
        (4, "the completion in column 'completion' is not a string"),
    ]
    inline = list(read_rows(DataConfig(prompts=["hello", "again"]), prompts=True))
    assert [(r.id, r.text, r.completion) for r in inline] == [("0", "hello", None), ("1", "again", None)]
    with pytest.raises(InputError, match=r"\[data\] prompts\[1\]: empty"):
        list(read_rows(DataConfig(prompts=["ok", " "]), prompts=True))


def test_json_errors_are_reported_whole(tmp_path):
    """json's `msg` alone stops mid-sentence ("Unterminated string starting at"): the column follows."""
    path = write_jsonl(tmp_path / "d.jsonl", [b'{"text": "ok"}', b'{"text": "cut'])
    bad = []
    list(read_rows(DataConfig(path=path), on_bad=bad.append))
    assert [(b.line, b.reason) for b in bad] == [
        (2, "not valid JSON: Unterminated string starting at column 10")
    ]


def test_csv_without_the_text_column_names_the_columns_and_the_option(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,body,label\n1,hello,x\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_rows(DataConfig(path=path)))
    message = str(info.value)
    assert "'text'" in message and "'id', 'body', 'label'" in message and "text_column" in message
    rows = list(read_rows(DataConfig(path=path, text_column="body")))
    assert [(r.id, r.text) for r in rows] == [("1", "hello")]


def test_jsonl_without_the_text_key_names_the_keys_and_the_option(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [b'{"id": 1, "body": "a"}', b'{"id": 2, "body": "b", "x": 0}'])
    bad = []
    with pytest.raises(InputError) as info:
        list(read_rows(DataConfig(path=path), on_bad=bad.append))
    assert "'body', 'id', 'x'" in str(info.value) and "text_column" in str(info.value)
    assert [b.line for b in bad] == [1, 2]
    # one object without the key among good ones is a bad row, named with the keys it has
    path = write_jsonl(tmp_path / "e.jsonl", [b'{"body": "a"}', b'{"text": "b"}'])
    bad = []
    assert [r.text for r in read_rows(DataConfig(path=path), on_bad=bad.append)] == ["b"]
    assert bad[0].reason == "no key 'text' (the object has 'body'; [data] text_column names the key)"
