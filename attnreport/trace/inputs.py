"""Read input texts: inline, CSV or JSONL, streamed row by row.

A bad row (empty text, bytes that are not UTF-8, not valid JSON, longer than the limit)
is reported with its line number and either skipped or fatal, as the config says.
Files are read one line at a time, so memory stays flat on large inputs.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attnreport.core.config import DataConfig
from attnreport.core.errors import InputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass(frozen=True)
class Row:
    id: str
    text: str
    label: str | None
    #: 1-based line number in the file (0 for inline texts)
    line: int
    #: a given answer to a prompt, explained by forced decoding (generation reports only)
    completion: str | None = None
    #: contrasts asked for ("why this answer token rather than that one"): (step, foil token text)
    contrast: tuple[tuple[int, str], ...] = ()
    #: the row's data group (`[data] group_column`), None without one
    group: str | None = None
    #: a chat row's messages before the last (the user's, which is `text`), as (role, content)
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BadRow:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


def _stderr(bad: BadRow) -> None:
    print(f"skipped {bad}", file=sys.stderr)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, and iterated lazily
    except OSError as exc:
        raise InputError(f"{path}: cannot open the data file ({exc.strerror})") from exc
    with fh:
        yield from enumerate(fh, start=1)


def _jsonl_records(path: Path, bad: Callable[[int, str], None]) -> Iterator[tuple[int, dict]]:
    for number, raw in _lines(path):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.rstrip(b"\r\n").decode("utf-8"))
        except UnicodeDecodeError:
            bad(number, "not valid UTF-8")
            continue
        except json.JSONDecodeError as exc:
            # the whole message: json's `msg` alone stops mid-sentence ("Unterminated string starting at")
            bad(number, f"not valid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}")
            continue
        except RecursionError:
            bad(number, "JSON nested too deep")
            continue
        if not isinstance(record, dict):
            bad(number, "a JSON line must be an object with a text field")
            continue
        yield number, record


def _missing_column(path: Path, column: str, found: list[str], option: str) -> InputError:
    """A file without the column every row needs: every row would be skipped, so it is one error
    that names what the file has and the option that picks the column."""
    shown = ", ".join(repr(name) for name in found) or "none"
    return InputError(
        f"{path}: no column {column!r}; the file has {shown}: set [data] {option} to the one with the texts"
    )


def _csv_records(
    path: Path, bad: Callable[[int, str], None], *, column: str, option: str
) -> Iterator[tuple[int, dict]]:
    header: list[str] | None = None
    pending = b""
    start = 0
    for number, raw in _lines(path):
        # a quoted field may span lines: gather lines until the csv module has a whole record
        if not pending:
            start = number
        pending += raw
        if pending.count(b'"') % 2:
            continue
        chunk, pending = pending, b""
        try:
            text = chunk.decode("utf-8-sig" if start == 1 else "utf-8")
        except UnicodeDecodeError:
            bad(start, "not valid UTF-8")
            continue
        if not text.strip():
            continue
        try:
            fields = next(csv.reader(io.StringIO(text)))
        except (csv.Error, StopIteration) as exc:
            bad(start, f"not valid CSV ({exc})")
            continue
        if header is None:
            header = fields
            if column not in header:
                raise _missing_column(path, column, header, option)
            continue
        if len(fields) != len(header):
            bad(start, f"has {len(fields)} fields, the header has {len(header)}")
            continue
        yield start, dict(zip(header, fields, strict=True))
    if pending:
        bad(start, "unterminated quoted field")


def _unencodable(record: dict, fields: tuple[str | None, ...]) -> str | None:
    """The first of `fields` whose value cannot be written as UTF-8 (a lone surrogate such as
    ``"\\ud800"`` in JSON): caught here, not when the site is written after the whole analysis."""
    for name in fields:
        value = record.get(name) if name else None
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def _contrast(value) -> tuple[tuple[int, str], ...] | None:
    """A row's `contrast` field as (step, token) pairs; None when malformed."""
    if value is None:
        return ()
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        step = item.get("step") if isinstance(item, dict) else None
        token = item.get("token") if isinstance(item, dict) else None
        if (
            not isinstance(step, int)
            or isinstance(step, bool)
            or step < 0
            or not isinstance(token, str)
            or not token
        ):
            return None
        out.append((step, token))
    return tuple(out)


#: the roles a chat row's messages may have
CHAT_ROLES = ("system", "user", "assistant")


def _messages(value, column: str) -> tuple[tuple[tuple[str, str], ...], str] | str:
    """A chat row's messages as (earlier (role, content) pairs, the last user message's content),
    or what is wrong with them, in words a user can act on."""
    if not isinstance(value, list) or not value:
        return f'{column!r} must be a non-empty list of {{"role": ..., "content": ...}} messages'
    pairs = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            return f"{column}[{i}] is not an object with a role and a content"
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            return f"{column}[{i}] has role {role!r}; a role is one of {', '.join(CHAT_ROLES)}"
        if not isinstance(content, str):
            return f"{column}[{i}] ({role}) has a content that is not a string"
        pairs.append((role, content))
    if pairs[-1][0] != "user":
        return (
            f"the last message ({column}[{len(pairs) - 1}]) is from the {pairs[-1][0]}, not the user; "
            f"the report explains the assistant's answer to the user's last message"
        )
    if any(role == "system" for role, _ in pairs[1:]):
        return f"a system message comes only first in {column!r}"
    return tuple(pairs[:-1]), pairs[-1][1]


def read_rows(
    data: DataConfig, *, on_bad: Callable[[BadRow], None] = _stderr, prompts: bool = False
) -> Iterator[Row]:
    """Yield the rows of the configured input, one at a time. With `prompts` (a generation
    report) a row's text is its prompt, and it may carry a completion to explain."""
    inline, name = (data.prompts, "prompts") if prompts else (data.texts, "texts")
    if inline:
        for i, text in enumerate(inline):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"[data] {name}[{i}]: empty or not a string; give a non-empty text")
            if _unencodable({"text": text}, ("text",)):
                raise InputError(f"[data] {name}[{i}]: holds a lone surrogate (not text); fix the text")
            yield Row(id=str(i), text=text, label=None, line=0)
        return
    if data.path is None:
        raise InputError(
            f"[data] has no `{name}` and no `path`; a {'generation' if prompts else 'classification'} "
            f"report reads [data] {name} or a file"
        )
    path = Path(data.path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown data format; use .jsonl or .csv")
    if not path.is_file():
        raise InputError(f"{path}: data file not found; check [data] path")
    count = 0

    def bad(line: int, reason: str) -> None:
        problem = BadRow(str(path), line, reason)
        if data.on_bad_row == "fail":
            raise InputError(f'{problem} (set [data] on_bad_row = "skip" to skip such rows)')
        on_bad(problem)

    option = "prompt_column" if prompts else "text_column"
    column = getattr(data, option)
    if kind == "jsonl":
        records = _jsonl_records(path, bad)
    else:
        records = _csv_records(path, bad, column=column, option=option)
    seen: set[str] = set()
    #: the keys of the JSON objects read so far, while none has had the column
    keys_without: set[str] | None = set()
    #: whether any row had a group (`[data] group_column`)
    grouped = False
    chat_column = data.messages_column if prompts else None
    for line, record in records:
        history: tuple[tuple[str, str], ...] = ()
        if chat_column and chat_column in record:
            if record.get(column) is not None:
                bad(line, f"has both {column!r} and {chat_column!r}; give a prompt or a chat, not both")
                continue
            chat = _messages(record[chat_column], chat_column)
            if isinstance(chat, str):
                bad(line, chat)
                continue
            if not chat[1].strip():
                bad(line, f"the last message of {chat_column!r} (the user's) is empty")
                continue
            history, record = chat[0], {**record, column: chat[1]}
            if any(_unencodable({"c": c}, ("c",)) for _, c in history):
                bad(line, f"column {chat_column!r} holds a lone surrogate (not text); fix the row")
                continue
        if keys_without is not None and column not in record:
            keys_without.update(record)
            has = ", ".join(map(repr, record)) or "no keys"
            chat = f", or a chat in {chat_column!r}" if chat_column else ""
            bad(line, f"no key {column!r}{chat} (the object has {has}; [data] {option} names the key)")
            continue
        keys_without = None
        broken = _unencodable(
            record, (column, data.id_column, data.label_column, data.group_column, data.completion_column)
        )
        if broken:
            bad(line, f"column {broken!r} holds a lone surrogate (not text); fix the row")
            continue
        text = record.get(column)
        if not isinstance(text, str) or not text.strip():
            bad(line, f"no {'prompt' if prompts else 'text'} in column {column!r}")
            continue
        completion = record.get(data.completion_column) if prompts else None
        if completion is not None and not isinstance(completion, str):
            bad(line, f"the completion in column {data.completion_column!r} is not a string")
            continue
        contrast = _contrast(record.get("contrast")) if prompts else ()
        if contrast is None:
            bad(
                line,
                'contrast must be a list of {"step": N, "token": "..."} (0-based step, non-empty token)',
            )
            continue
        size = len(text) + sum(len(c) for _, c in history)
        if size > data.max_chars:
            bad(line, f"text has {size} characters, more than max_chars = {data.max_chars}")
            continue
        raw_id = record.get(data.id_column)
        row_id = str(raw_id) if raw_id not in (None, "") else str(line)
        if row_id in seen:
            bad(line, f"duplicate id {row_id!r}")
            continue
        seen.add(row_id)
        label = record.get(data.label_column)
        label = None if label in (None, "") else str(label)
        group = record.get(data.group_column) if data.group_column else None
        group = None if group in (None, "") else str(group)
        grouped = grouped or group is not None
        yield Row(
            id=row_id,
            text=text,
            label=label,
            line=line,
            completion=completion or None,
            contrast=contrast,
            group=group,
            history=history,
        )
        count += 1
        if data.limit and count >= data.limit:
            break
    if count and data.group_column and not grouped:
        raise InputError(
            f"{path}: no row has a value in column {data.group_column!r}; set [data] group_column "
            f"to the column that holds each row's group, or remove it"
        )
    if keys_without:  # not one object had the column: a wrong option, not bad rows
        raise _missing_column(path, column, sorted(keys_without), option)
