"""A checkpoint's own chat template, rendered with jinja2 the way `transformers` renders it.

`transformers`' ``apply_chat_template`` compiles the template in an immutable sandbox with
``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that
does not escape HTML, and the globals ``raise_exception``, ``strftime_now``, ``dict`` and
``namespace``; it passes ``messages``, ``add_generation_prompt`` and the tokenizer's named special
tokens (``bos_token``, ``eos_token``, ...). We do the same without importing it, and also return
where every message's content sits in the rendered text (`Span`), so that each token can say
whether it came from the template or from a message, and which; and the system prompt a template
puts in when the chat has none (SmolLM2's, Qwen2.5's), found by comparison, not by name.

Just over 400 lines because the sandbox (its limits on time, size and calls) and the renders that
locate each message are one concept: a template is the model folder's code, and every render of
it, to locate a span or to find an injected system prompt, must go through the same limits.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from attnreport.core.errors import ConfigError
from attnreport.trace.sessions import optional_model_file

#: the tokenizer's named special tokens a template may read
SPECIAL_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
TEMPLATE_FILE = "chat_template.jinja"
#: the roles a chat's messages may have
ROLES = ("system", "user", "assistant")


def _sentinel(i: int | str) -> str:
    """A marker for message `i`'s content: private-use characters no text or template holds."""
    return f"\ue000attnreport-content-{i}\ue001"


@dataclass(frozen=True)
class Span:
    """Where one message's content sits in a rendered chat: ``text[start:end]``; `injected` for a
    system prompt the template put in itself (no message of the chat)."""

    role: str
    start: int
    end: int
    injected: bool = False


@dataclass(frozen=True)
class Rendered:
    """A chat wrapped by the template: the text, the last (user) message's content at
    ``text[start:end]``, and every message's content span in order (`turns`), an injected default
    system prompt first."""

    text: str
    start: int
    end: int
    turns: tuple[Span, ...] = ()


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class ChatTemplate:
    """The chat template of an exported (or Hugging Face) folder; `render` wraps one user prompt."""

    def __init__(self, source: str, *, name: str, special: dict[str, str]) -> None:
        self.source = source
        self.name = name
        self.special = dict(special)
        self._template = _compile(source)

    @classmethod
    def from_folder(cls, folder: Path) -> ChatTemplate | None:
        """The folder's default chat template (``chat_template.jinja``, else ``chat_template`` in
        ``tokenizer_config.json``, a string or a list of named templates), or None. Every file
        is read only if it is a regular file inside `folder` (a model folder is not trusted)."""
        folder = Path(folder)
        config = _json_object(folder, "tokenizer_config.json")
        special = {
            k: t
            for k, v in _json_object(folder, "special_tokens_map.json").items()
            if k in SPECIAL_NAMES and (t := _token_text(v)) is not None
        }
        special |= {k: t for k in SPECIAL_NAMES if (t := _token_text(config.get(k))) is not None}
        path = optional_model_file(folder, TEMPLATE_FILE)
        if path is not None:
            return cls(_read_text(path), name=TEMPLATE_FILE, special=special)
        source = config.get("chat_template")
        if isinstance(source, list):
            named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
            source = named.get("default")
        if not isinstance(source, str) or not source:
            return None
        return cls(source, name="tokenizer_config.json", special=special)

    def render_messages(self, messages: list[dict], *, add_generation_prompt: bool = True) -> str:
        """The template over `messages`, within `RENDER_SECONDS` and `RENDER_CHARS`: a template is
        the model folder's code, so whatever it raises, or a render that runs on, is one line."""
        import jinja2

        limits = _Limits(self.name)
        try:
            with limits:
                parts = []
                size = 0
                for part in self._template.generate(
                    messages=messages, add_generation_prompt=add_generation_prompt, **self.special
                ):
                    size += len(part)
                    limits.check(size)
                    parts.append(part)
                return "".join(parts)
        except _TooMuch as exc:
            raise ConfigError(str(exc)) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"the model's chat template ({self.name}) refused the prompt: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - untrusted code: any failure is the template's
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise ConfigError(
                f"the model's chat template ({self.name}) failed ({reason}); fix the template or "
                f"set [generate] chat_template = false"
            ) from None

    def render(self, prompt: str, *, system: str | None = None) -> Rendered:
        """``messages=[{"role": "user", "content": prompt}]`` (after a system message if given),
        with the generation prompt; every message's content located in the result (`render_chat`)."""
        head = [{"role": "system", "content": system}] if system is not None else []
        return self.render_chat([*head, {"role": "user", "content": prompt}])

    def render_chat(self, messages: list[dict]) -> Rendered:
        """The whole chat with the generation prompt, and where each message's content is.

        Each content must sit where the template puts that message's content (found by rendering
        one marker per message in its place), as given or stripped of surrounding white space
        (``| trim``); a template that puts it anywhere else, or rewrites it, is refused rather than
        searched: a content found by search could be text of the template's own (or of a file it
        read). A chat without a system message is rendered once more with a marked one: when the
        plain render is that render with some text in the marker's place, the template injects
        that text as its default system prompt, recorded as an injected system turn.
        """
        text = self.render_messages(messages)
        marked = self.render_messages(
            [{"role": m["role"], "content": _sentinel(i)} for i, m in enumerate(messages)]
        )
        pieces = _split_marked(marked, len(messages))
        spans = _place(text, pieces, [m["content"] for m in messages]) if pieces else None
        if spans is None:
            raise ConfigError(
                f"the model's chat template ({self.name}) does not place the prompt's text as given; the "
                f"prompt's tokens cannot be told from the template's (set [generate] chat_template = false)"
            )
        turns = [Span(m["role"], a, b) for m, (a, b) in zip(messages, spans, strict=True)]
        if not messages or messages[0]["role"] != "system":
            injected = self._injected_system(messages, marked, pieces, spans)
            if injected is not None:
                turns.insert(0, injected)
        start, end = spans[-1] if spans else (len(text), len(text))
        return Rendered(text, start, end, tuple(turns))

    def _injected_system(self, messages, marked: str, pieces: list[str], spans) -> Span | None:
        """The system prompt the template renders when the chat has none, located in the plain
        render (None when it adds none, or the comparison does not apply)."""
        probe = _sentinel("system")
        try:
            with_system = self.render_messages(
                [{"role": "system", "content": probe}]
                + [{"role": m["role"], "content": _sentinel(i)} for i, m in enumerate(messages)]
            )
        except ConfigError:  # a template that refuses a system message injects none we can find
            return None
        before, sep, after = with_system.partition(probe)
        if not sep or probe in after or len(before) + len(after) > len(marked):
            return None
        if not (marked.startswith(before) and marked.endswith(after)):
            return None
        a, b = len(before), len(marked) - len(after)
        if not marked[a:b].strip():
            return None
        # marked positions to the plain render's: inside one piece, shifted by the contents before it
        at, shift = 0, 0
        for i, piece in enumerate(pieces):
            if at <= a and b <= at + len(piece):
                return Span("system", a + shift, b + shift, injected=True)
            if i < len(spans):
                at += len(piece) + len(_sentinel(i))
                shift += (spans[i][1] - spans[i][0]) - len(_sentinel(i))
        return None


def _split_marked(marked: str, count: int) -> list[str] | None:
    """The template's text around the `count` markers, in order (`count + 1` pieces); None unless
    each marker is there once and in order."""
    pieces, rest = [], marked
    for i in range(count):
        before, sep, rest = rest.partition(_sentinel(i))
        if not sep or _sentinel(i) in rest:
            return None
        pieces.append(before)
    pieces.append(rest)
    if any("\ue000attnreport-content-" in p for p in pieces):
        return None
    return pieces


def _place(text: str, pieces: list[str], contents: list[str]) -> list[tuple[int, int]] | None:
    """Each content's span when `text` is the pieces with the contents (each as given, or
    trimmed) between them; None when it is not."""
    spans, at = [], 0
    for i, content in enumerate(contents):
        if not text.startswith(pieces[i], at):
            return None
        at += len(pieces[i])
        for candidate in dict.fromkeys((content, content.strip())):
            if text.startswith(candidate + pieces[i + 1], at):
                break
        else:
            return None
        spans.append((at, at + len(candidate)))
        at += len(candidate)
    return spans if text[at:] == pieces[-1] else None


#: a chat template renders within this many seconds, and to at most this many characters
RENDER_SECONDS = 5.0
RENDER_CHARS = 4_000_000


class _TooMuch(Exception):
    pass


class _Limits:
    """The clock and size of one render, checked by the sandbox on every call, attribute, item
    and loop step (`_compile`) and on every chunk of output, so a template that loops forever
    or builds a huge string stops with a one-line error."""

    current: _Limits | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.deadline = time.monotonic() + RENDER_SECONDS

    def __enter__(self) -> _Limits:
        self.previous, _Limits.current = _Limits.current, self
        return self

    def __exit__(self, *exc) -> None:
        _Limits.current = self.previous

    def check(self, size: int = 0) -> None:
        if time.monotonic() > self.deadline:
            raise _TooMuch(
                f"the model's chat template ({self.name}) ran over {RENDER_SECONDS:.0f} s; "
                f"it does not end: fix the template or set [generate] chat_template = false"
            )
        if size > RENDER_CHARS:
            raise _TooMuch(
                f"the model's chat template ({self.name}) made over {RENDER_CHARS:,} characters; "
                f"fix the template or set [generate] chat_template = false"
            )


def _tick(value=None):
    limits = _Limits.current
    if limits is not None:
        limits.check(len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0)
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); export the model again") from exc


def _json_object(folder: Path, name: str) -> dict:
    """A JSON object file of the model folder, {} when absent; anything else a one-line error."""
    path = optional_model_file(folder, name)
    if path is None:
        return {}
    try:
        value = json.loads(_read_text(path))
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not JSON ({str(exc)[:120]}); export the model again") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: a {type(value).__name__}, not a JSON object; export the model again")
    return value


def _compile(source: str):
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    import jinja2.sandbox
    import jinja2.utils

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(format):
        return datetime.now().strftime(format)

    class Namespace(jinja2.utils.Namespace):
        # like transformers': no underscore-prefixed attributes, so no way to CPython internals
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"chat templates cannot set {name!r} on a namespace")

    class Generation(jinja2.ext.Extension):
        # `{% generation %}...{% endgeneration %}` marks assistant text for training masks; it
        # renders its body unchanged
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    class TemplateDict:
        # `dict(...)` and `dict.fromkeys(...)` only, no attribute of the real type
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    class LimitedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
        # every call, attribute, item and binary operator checks the render's clock and the size
        # of what it made (`_Limits`): a template is code from the model folder
        intercepted_binops = frozenset({"*", "**", "+"})

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's own signature
            _tick()
            return _tick(
                jinja2.sandbox.ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
            )

        def getattr(self, obj, attribute):
            _tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):
            _tick()
            return super().getitem(obj, argument)

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise jinja2.exceptions.SecurityError("chat templates cannot raise to powers over 64")
            if operator == "*" and isinstance(left, int) and isinstance(right, str | list | tuple):
                left, right = right, left
            if operator == "*" and isinstance(left, str | list | tuple) and isinstance(right, int):
                _tick()
                if len(left) * right > RENDER_CHARS:
                    raise jinja2.exceptions.SecurityError("chat templates cannot repeat past the size limit")
            return _tick(super().call_binop(context, operator, left, right))

    def limited_range(*args):
        for value in jinja2.sandbox.safe_range(*args):
            _tick()
            yield value

    env = LimitedSandbox(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.globals["range"] = limited_range
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = Namespace
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"the model's chat template does not parse: {exc}") from exc
