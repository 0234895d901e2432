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
