"""The command line: one-line errors with exit code 2, a torch-free build path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sitebuild import sample_rows, write_config

from attnreport.cli import main


def test_missing_config_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["build", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "site")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "nope.toml" in err and err.startswith("attnreport: error:")
    assert not (tmp_path / "site").exists()


def test_bad_data_path_is_one_line_and_exit_2(tiny, tmp_path, capsys):
    config = write_config(tmp_path, tiny.export("bert"), sample_rows())
    (tmp_path / "data.jsonl").unlink()
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.jsonl" in err[0] and "not found" in err[0]


def test_export_refusal_exits_2(tmp_path, capsys):
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "config.json" in capsys.readouterr().err


BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, Block())
    from attnreport.cli import main
    code = main(sys.argv[1:])
    assert "torch" not in sys.modules and "transformers" not in sys.modules
    sys.exit(code)
    """
)


def test_build_runs_with_torch_and_transformers_blocked(tiny, tmp_path):
    config = write_config(tmp_path, tiny.export("gpt2-cls"), sample_rows())
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, "build", str(config), "-o", str(tmp_path / "site"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "site" / "report.json").read_text())
    assert len(report["examples"]) == len(sample_rows())
    assert report["model"]["read_position"] == "last"


def test_hf_folder_without_torch_gives_an_install_hint(tiny, tmp_path):
    config = write_config(tmp_path, tiny.checkpoint("bert"), sample_rows())
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, "build", str(config), "-o", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "attnreport[export]" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help(flag, capsys):
    with pytest.raises(SystemExit) as info:
        main([flag])
    assert info.value.code == 0
    assert "attnreport" in capsys.readouterr().out


def test_hf_folder_in_config_is_exported_into_the_cache_once(tiny, tmp_path):
    config = write_config(tmp_path, tiny.checkpoint("distilbert"), sample_rows()[:3])
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "-q"]) == 0
    exports = list((tmp_path / "cache" / "models").iterdir())
    assert len(exports) == 1 and (exports[0] / "model.onnx").is_file()
    stamp = (exports[0] / "model.onnx").stat().st_mtime_ns
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "-q"]) == 0
    assert (exports[0] / "model.onnx").stat().st_mtime_ns == stamp


def test_an_unknown_method_fails_before_any_model_is_exported(tmp_path, capsys):
    """The registries are checked first: a misspelt method never waits behind an export."""
    checkpoint = tmp_path / "hf"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}", encoding="utf-8")  # would be exported on the fly
    config = write_config(tmp_path, checkpoint, sample_rows(), extra='[analysis]\nattributions = ["lime"]\n')
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "report.toml" in err[0] and "'lime'" in err[0] and "shapley, occlusion" in err[0]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "site").exists()


def test_skipped_rows_are_counted_listed_and_progress_is_told_off_a_terminal(tiny, tmp_path, capsys):
    """Nothing dropped silently: each skipped row on stderr as it is met, in report.json and on the
    index (line and reason), and in the summary line; progress lines though stderr is no terminal."""
    from html.parser import HTMLParser

    rows = sample_rows()[:3]
    config = write_config(tmp_path, tiny.export("bert"), rows)
    data = tmp_path / "data.jsonl"
    lines = data.read_text(encoding="utf-8").splitlines()
    hostile = json.dumps({"id": "<b>x</b>", "text": "again"})
    cut = '{"id": "cut", "text": "unterminated'
    lines[1:1] = [cut, hostile, hostile]
    column = cut.index('"unterminated') + 1  # where the string json could not end starts
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 0
    out, err = capsys.readouterr()
    assert out.strip().startswith("site with 4 examples, 2 rows skipped (see index): ")
    expected = [
        {
            "file": "data.jsonl",
            "line": 2,
            "reason": f"not valid JSON: Unterminated string starting at column {column}",
        },
        {"file": "data.jsonl", "line": 4, "reason": "duplicate id '<b>x</b>'"},
    ]
    report = json.loads((tmp_path / "site" / "report.json").read_text())
    assert report["skipped_rows"] == expected
    assert len(report["examples"]) == 4
    for entry in expected:
        assert f"skipped {data}:{entry['line']}: {entry['reason']}" in err.splitlines()
    # one line per stage at least, saying how far it got of how many
    for stage in ("tracing", "attributions", "scenes"):
        assert f"{stage} 1/4" in err and f"{stage} 4/4, done in " in err
    assert "writing 4/4, done in " in err

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.rows, self.bold = False, [], 0

        def handle_starttag(self, tag, attrs):
            if tag == "table" and ("class", "skipped") in attrs:
                self.inside = True
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag == "b":
                self.bold += 1

        def handle_endtag(self, tag):
            if tag == "table":
                self.inside = False

        def handle_data(self, text):
            if self.inside and self.rows and text.strip():
                self.rows[-1].append(text.strip())

    cells = Cells()
    cells.feed((tmp_path / "site" / "index.html").read_text(encoding="utf-8"))
    assert cells.rows[1:] == [[e["file"], str(e["line"]), e["reason"]] for e in expected]
    assert cells.bold == 0  # the row's id is text, not markup


def test_a_model_path_that_does_not_exist_is_said_first(tmp_path, capsys):
    """Before the options, the data or the kind of folder: the plain cause."""
    config = write_config(
        tmp_path, tmp_path / "no-such-model", [{"text": "x"}], extra='[analysis]\nattributions = ["lime"]\n'
    )
    (tmp_path / "data.jsonl").unlink()
    assert main(["build", str(config), "-o", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model does not exist" in err[0] and "[model] path" in err[0]


def _subcommands():
    from attnreport.cli import parser

    top = parser()
    (sub,) = [a for a in top._actions if a.dest == "command"]
    return sub.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_with_its_default(name):
    import argparse

    for action in _subcommands()[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.dest}: no help text"
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if action.option_strings and (has_default or action.choices):
            assert "default" in action.help, (
                f"{name} {action.option_strings[0]}: help does not say the default"
            )
        if action.option_strings and has_default and not isinstance(action.default, int):
            assert str(action.default) in action.help, f"{name} {action.option_strings[0]}: wrong default"


def test_build_help_shows_a_minimal_config_that_loads(capsys, tmp_path):
    """The config in `build --help` is a real one: written out, it loads and validates as it is."""
    import re

    from attnreport.core.config import load_config

    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = capsys.readouterr().out
    block = text.split("a minimal report.toml (paths relative to it):\n", 1)[1]
    toml = "\n".join(line[2:] for line in block.splitlines() if line.startswith("  "))
    (tmp_path / "my-model").mkdir()
    path = tmp_path / "report.toml"
    path.write_text(toml, encoding="utf-8")
    config = load_config(path)
    assert config.model.path == tmp_path / "my-model" and config.data.path == tmp_path / "tickets.jsonl"
    assert re.search(r"^\s+-o OUTPUT, --output OUTPUT", text, re.M)


def test_labels_in_another_case_are_named_with_the_model_s_own(tiny, tmp_path, capsys):
    """Labels the model lacks are said before any model runs, with the model's own name where only
    the case differs; when no labelled row can be scored the build stops in one line, unless asked
    to go on."""
    rows = sample_rows()
    for row in rows[:2]:
        row["label"] = "ALPHA"
    config = write_config(tmp_path / "some", tiny.export("bert"), rows)
    assert main(["build", str(config), "-o", str(tmp_path / "some" / "site")]) == 0
    err = capsys.readouterr().err
    assert "'ALPHA' (2 rows; did you mean 'alpha'?)" in err and "left out of the accuracy" in err
    for row in rows:
        row["label"] = row["label"].upper()
    config = write_config(tmp_path / "none", tiny.export("bert"), rows)
    assert main(["build", str(config), "-o", str(tmp_path / "none" / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'beta'?" in err[0] and 'unknown_labels = "go_on"' in err[0]
    assert not (tmp_path / "none" / "site").exists()
    config = write_config(tmp_path / "go", tiny.export("bert"), rows, extra='unknown_labels = "go_on"\n')
    assert main(["build", str(config), "-o", str(tmp_path / "go" / "site")]) == 0
