from __future__ import annotations

import json

import pytest

from attnreport.core.config import load_config
from attnreport.core.errors import ConfigError


def test_smallest_config_gets_defaults_and_relative_paths(tmp_path):
    (tmp_path / "report.toml").write_text('[model]\npath = "m"\n[data]\npath = "d.jsonl"\n')
    config = load_config(tmp_path / "report.toml")
    assert config.model.path == (tmp_path / "m").resolve()
    assert config.data.path == (tmp_path / "d.jsonl").resolve()
    assert config.site.theme == "light" and config.data.on_bad_row == "skip"
    assert config.analysis.decision_layers == []  # per-layer decision spaces are off by default


@pytest.mark.parametrize("value", ["[2, 4, -1]", '"all"', "[]"])
def test_decision_layers_take_a_list_or_all(tmp_path, value):
    (tmp_path / "report.toml").write_text(
        f'[model]\npath = "m"\n[data]\ntexts = ["a"]\n[analysis]\ndecision_layers = {value}\n'
    )
    layers = load_config(tmp_path / "report.toml").analysis.decision_layers
    assert layers == json.loads(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[model]\npath="m"\n[data]\npath="d.csv"\nbogus=1\n',
            "unknown option \\[data\\] 'bogus'; known options",
        ),
        ('[model]\npath="m"\n', "\\[data\\] needs"),
        ('[data]\ntexts=["a"]\n', "\\[model\\] path is missing"),
        ('[model]\npath="m"\n[data]\ntexts=["a"]\n[site]\ntheme="neon"\n', "known themes: dark, high-c"),
        ('[model\npath="m"', "not valid TOML"),
        ('[model]\npath="m"\n[data]\ntexts=["a"]\non_bad_row="ignore"\n', "skip, fail"),
        ('[model]\npath="m"\n[data]\ntexts=["a"]\n[analysis]\ndecision_layers="some"\n', "decision_layers"),
        ('[model]\npath="m"\n[data]\ntexts=["a"]\n[analysis]\ndecision_layers=[1.5]\n', '"all"'),
        ('[model]\npath="m"\n[data]\ntexts=["a"]\n[analysis]\ndecision_layer=[2, 4]\n', "decision_layers"),
        # a value of the wrong type is named, never a traceback or a silent truth
        (
            '[model]\npath="m"\nbatch_size="16"\n[data]\ntexts=["a"]\n',
            "\\[model\\] batch_size is str, not int",
        ),
        (
            '[model]\npath="m"\n[data]\ntexts=["a"]\n[site]\nscenes="false"\n',
            "\\[site\\] scenes is str, not bool",
        ),
        ('[model]\npath="m"\n[data]\ntexts="one string"\n', "\\[data\\] texts is str, not list"),
        ('[model]\npath="m"\n[data]\ntexts=["a", 2]\n', "\\[data\\] texts\\[1\\] is int, not str"),
        ('title=5\n[model]\npath="m"\n[data]\ntexts=["a"]\n', "title is int, not str"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "report.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_generate_table_or_prompts_ask_for_a_generation_report(tmp_path):
    from attnreport.core.config import config_from_dict

    base = {"model": {"path": "m"}}
    assert not config_from_dict({**base, "data": {"path": "d.jsonl"}}, base=tmp_path).generate.enabled
    table = config_from_dict({**base, "data": {"path": "d.jsonl"}, "generate": {"top_k": 3}}, base=tmp_path)
    assert table.generate.enabled and table.generate.top_k == 3 and table.generate.max_new_tokens == 32
    assert config_from_dict({**base, "data": {"prompts": ["hi"]}}, base=tmp_path).generate.enabled
    off = {**base, "data": {"path": "d.jsonl"}, "generate": {"enabled": False}}
    assert not config_from_dict(off, base=tmp_path).generate.enabled
    for bad, message in [
        ({"data": {"prompts": ["a"], "texts": ["b"]}}, "has texts and prompts; keep one"),
        ({"data": {"path": "d.jsonl"}, "generate": {"max_new_tokens": 0}}, "max_new_tokens = 0"),
        ({"data": {"path": "d.jsonl"}, "generate": {"stop": "\n"}}, "stop must be a list"),
        ({"data": {"path": "d.jsonl"}, "generate": {"tokens": 3}}, "unknown option \\[generate\\] 'tokens'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_dict({**base, **bad}, base=tmp_path)


def test_scenes_without_pyvista_is_a_one_line_error_before_any_model_runs(tmp_path, monkeypatch):
    """PyVista is an extra (`attnreport[scenes]`); a build asking for scenes without it stops at once,
    naming both fixes, and with `[site] scenes = false` gets past that check."""
    import sys

    from attnreport.pipeline import build

    monkeypatch.setitem(sys.modules, "pyvista", None)  # Python's own way to make an import fail
    (tmp_path / "texts.jsonl").write_text('{"text": "hello"}\n', encoding="utf-8")
    missing = tmp_path / "not-a-model"  # exists, so the scenes check is reached; no export in it
    missing.mkdir()
    for scenes in ("true", "false"):
        (tmp_path / "report.toml").write_text(
            f'[model]\npath = "{missing}"\n[data]\npath = "texts.jsonl"\n[site]\nscenes = {scenes}\n',
            encoding="utf-8",
        )
        config = load_config(tmp_path / "report.toml")
        with pytest.raises(ConfigError) as refused:
            build(config, tmp_path / "site", log=lambda m: None, progress=False)
        said = str(refused.value)
        fix = "pip install 'attnreport[scenes]', or set [site] scenes = false"
        assert (fix in said) == (scenes == "true")
        assert "\n" not in said
    assert not (tmp_path / "site").exists()
