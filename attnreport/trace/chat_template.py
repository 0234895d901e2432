"""A checkpoint's own chat template, rendered with jinja2 the way `transformers` renders it.

`transformers`' ``apply_chat_template`` compiles the template in an immutable sandbox with
``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that
does not escape HTML, and the globals ``raise_exception``, ``strftime_now``, ``dict`` and
``namespace``; it passes ``messages``, ``add_generation_prompt`` and the tokenizer's named special
tokens (``bos_token``, ``eos_token``, ...). We do the same without importing it, and also return
where the user's content sits in the rendered text, so that each token can say whether it came
from the template or from the prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from attnreport.core.errors import ConfigError

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
_SENTINEL = "\ue000attnreport-content\ue001"


@dataclass(frozen=True)
class Rendered:
    """A prompt wrapped by the template: the text, and the user's content at ``text[start:end]``."""

    text: str
    start: int
    end: int


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
        ``tokenizer_config.json``, a string or a list of named templates), or None."""
        folder = Path(folder)
        config = {}
        config_path = folder / "tokenizer_config.json"
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{config_path}: unreadable ({exc}); export the model again") from exc
        special = {}
        map_path = folder / "special_tokens_map.json"
        if map_path.is_file():
            special |= {
                k: t
                for k, v in json.loads(map_path.read_text(encoding="utf-8")).items()
                if k in SPECIAL_NAMES and (t := _token_text(v)) is not None
            }
        special |= {k: t for k in SPECIAL_NAMES if (t := _token_text(config.get(k))) is not None}
        if (folder / TEMPLATE_FILE).is_file():
            return cls(
                (folder / TEMPLATE_FILE).read_text(encoding="utf-8"), name=TEMPLATE_FILE, special=special
            )
        source = config.get("chat_template")
        if isinstance(source, list):
            named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
            source = named.get("default")
        if not isinstance(source, str) or not source:
            return None
        return cls(source, name="tokenizer_config.json", special=special)

    def render_messages(self, messages: list[dict], *, add_generation_prompt: bool = True) -> str:
        import jinja2

        try:
            return self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self.special
            )
        except jinja2.TemplateError as exc:
            raise ConfigError(f"the model's chat template ({self.name}) refused the prompt: {exc}") from exc

    def render(self, prompt: str, *, system: str | None = None) -> Rendered:
        """``messages=[{"role": "user", "content": prompt}]`` (after a system message if given),
        with the generation prompt; the user's content located in the result."""
        head = [{"role": "system", "content": system}] if system is not None else []
        text = self.render_messages([*head, {"role": "user", "content": prompt}])
        marked = self.render_messages([*head, {"role": "user", "content": _SENTINEL}])
        before, sep, after = marked.partition(_SENTINEL)
        if sep and text == before + prompt + after:
            return Rendered(text, len(before), len(before) + len(prompt))
        # the template changed the content (e.g. `| trim`): find what is left of it
        core = prompt.strip()
        start = text.find(core, max(0, len(before) - len(prompt)))
        if start < 0:
            start = text.find(core)
        if start < 0:
            raise ConfigError(
                f"the model's chat template ({self.name}) rewrites the prompt's text; "
                f"the prompt's tokens cannot be told from the template's"
            )
        return Rendered(text, start, start + len(core))


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

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = Namespace
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"the model's chat template does not parse: {exc}") from exc
