"""Nothing lost, nothing leaked (issue 27): tried as a careless user and as an attacker who hands
a victim a model folder, a data file or a config. Every refusal is one line and exit 2, and the
user's files are checked byte for byte afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sitebuild import write_config

from attnreport.cli import main
from attnreport.core.errors import ConfigError
from attnreport.core.files import recover_folder
from attnreport.core.modelcard import MANIFEST_NAME

ROWS = [{"id": "a", "text": "lock my account now", "label": "alpha"}]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder), to compare byte for byte."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnreport: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def user_folder(root: Path) -> Path:
    """A user's project folder that happens to hold a report.json of another tool."""
    root.mkdir(parents=True)
    (root / "report.json").write_text('{"tool": "pytest"}')
    (root / "notes.txt").write_text("precious")
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("print('mine')\n")
    return root


# -- 1. a build deletes nothing that is not its own


def test_a_folder_with_another_tools_report_json_is_refused_before_any_model_runs(tiny, tmp_path, capsys):
    config = write_config(tmp_path / "p", tiny.export("bert"), ROWS)
    proj = user_folder(tmp_path / "proj")
    before = snapshot(proj)
    err = one_line_error(capsys, ["build", str(config), "-o", str(proj), "-q"])
    assert "not an attnreport site" in err
    assert snapshot(proj) == before
    assert not (tmp_path / "p" / "cache").exists()  # refused before a trace was made


def test_the_home_folder_and_the_root_are_refused(tiny, tmp_path, capsys, monkeypatch):
    config = write_config(tmp_path / "p", tiny.export("bert"), ROWS)
    home = user_folder(tmp_path / "home")
    (home / "report.json").write_text('{"generator": "attnreport 0.1.0"}')  # even one that looks ours
    (home / ".bashrc").write_text("export PATH")
    monkeypatch.setenv("HOME", str(home))
    before = snapshot(home)
    assert "home folder" in one_line_error(capsys, ["build", str(config), "-o", str(home), "-q"])
    assert "root folder" in one_line_error(capsys, ["build", str(config), "-o", "/", "-q"])
    assert snapshot(home) == before


def test_a_folder_holding_this_builds_config_or_data_is_refused(tiny, tmp_path, capsys):
    site = tmp_path / "site"
    config = write_config(site, tiny.export("bert"), ROWS)  # report.toml and data inside the site folder
    before = snapshot(site)
    err = one_line_error(capsys, ["build", str(config), "-o", str(site), "-q"])
    assert "which this run reads" in err
    assert snapshot(site) == before


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    """A real site, built once; tests copy it before they change it."""
    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    root = tmp_path_factory.mktemp("built")
    config_path = write_config(root / "p", tiny.export("bert"), ROWS, extra="[site]\nscenes = false\n")
    build(load_config(config_path), root / "site", progress=False)
    return config_path, root / "site"


def test_a_site_with_a_users_file_in_it_is_not_replaced(built, tmp_path, capsys):
    config, site = built
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / "notes.txt").write_text("my notes on this report")
    before = snapshot(copy)
    err = one_line_error(capsys, ["build", str(config), "-o", str(copy), "-q"])
    assert "notes.txt, which attnreport did not write" in err
    assert snapshot(copy) == before
    (copy / "notes.txt").unlink()
    assert main(["build", str(config), "-o", str(copy), "-q"]) == 0  # its own files alone: rebuilt


def test_a_rebuilt_site_keeps_its_mode_and_group(built, tmp_path):
    config, site = built
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    os.chmod(copy, 0o2770)
    group = 4242 if os.geteuid() == 0 else os.getgid()
    if os.geteuid() == 0:
        os.chown(copy, -1, group)
    assert main(["build", str(config), "-o", str(copy), "-q"]) == 0
    assert (copy.stat().st_mode & 0o7777) == 0o2770
    assert copy.stat().st_gid == group
    assert {p.stat().st_gid for p in copy.rglob("*")} == {group}


def test_old_build_folders_are_matched_by_exact_name_and_numeric_process_id(tmp_path):
    """The target's name is not a glob pattern, and only ``-<digits>`` of an ended process counts."""
    target = tmp_path / "site[v]"
    target.mkdir()
    keep = [
        tmp_path / ".sitev.build-keep",  # matched `site[v]` as a pattern
        tmp_path / ".site[v].old-backup",  # a user's backup: not a number
        tmp_path / ".site[v].build-12ab",
        tmp_path / ".site[v].old-backup-7",
    ]
    for folder in keep:
        folder.mkdir()
        (folder / "mine.txt").write_text("keep")
    dead = tmp_path / ".site[v].build-999999999"  # no such process
    dead.mkdir()
    recover_folder(target)
    assert all((folder / "mine.txt").read_text() == "keep" for folder in keep)
    assert not dead.exists()


# -- 2. a model folder reads only its own files


@pytest.fixture
def lm(tiny, tmp_path) -> Path:
    """A copy of the tiny Qwen2 export (a causal LM with a chat template) to tamper with."""
    folder = tmp_path / "lm"
    shutil.copytree(tiny.export("qwen2"), folder)
    return folder


def generation_config(tmp_path: Path, model: Path, *, chat_template: bool = True) -> Path:
    template = "true" if chat_template else "false"
    return write_config(
        tmp_path / "p",
        model,
        [{"id": "q", "prompt": "what is my balance"}],
        extra=f'prompt_column = "prompt"\n[generate]\nmax_new_tokens = 2\nchat_template = {template}\n',
    )


def test_a_chat_template_linked_outside_the_folder_is_not_read(lm, tmp_path, capsys):
    secret = tmp_path / "environ"
    secret.write_text("API_TOKEN=s3cret what is my balance and more")
    (lm / "chat_template.jinja").unlink(missing_ok=True)
    (lm / "chat_template.jinja").symlink_to(secret)
    config = generation_config(tmp_path, lm)
    err = one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])
    assert "outside the model folder" in err and "s3cret" not in err
    assert not (tmp_path / "site").exists()


def test_a_template_that_does_not_place_the_prompt_is_refused(lm, tmp_path, capsys):
    """The prompt occurs in the template's own text; finding it there is not placing it."""
    (lm / "chat_template.jinja").write_text("API_TOKEN=s3cret what is my balance{{ messages|length }}")
    config = generation_config(tmp_path, lm)
    err = one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])
    assert "does not place the prompt" in err
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("graph", "decoder"),
    [
        ("decoder", "../other/decoder.onnx"),
        ("decoder", "/etc/passwd"),
        ("decoder", "sub/../../decoder.onnx"),
        ("scorer", "../other/decoder.onnx"),
    ],
)
def test_manifest_paths_outside_the_folder_are_refused(lm, tmp_path, capsys, graph, decoder):
    (tmp_path / "other").mkdir()
    shutil.copyfile(lm / "decoder.onnx", tmp_path / "other" / "decoder.onnx")
    manifest = json.loads((lm / MANIFEST_NAME).read_text())
    manifest["generation"][graph] = decoder
    (lm / MANIFEST_NAME).write_text(json.dumps(manifest))
    config = generation_config(tmp_path, lm)
    err = one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])
    assert "outside the model folder" in err


def test_a_tokenizer_linked_outside_the_folder_is_refused(tiny, tmp_path, capsys):
    model = tmp_path / "bert"
    shutil.copytree(tiny.export("bert"), model)
    outside = tmp_path / "tokenizer.json"
    shutil.move(model / "tokenizer.json", outside)
    (model / "tokenizer.json").symlink_to(outside)
    config = write_config(tmp_path / "p", model, ROWS)
    assert "outside the model folder" in one_line_error(
        capsys, ["build", str(config), "-o", str(tmp_path / "s")]
    )


# -- 3. publish touches only its own branch


@pytest.fixture
def repo(tmp_path):
    def git(*args, cwd):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    git("config", "user.email", "t@example.invalid", cwd=repo)
    git("config", "user.name", "t", cwd=repo)
    (repo / ".gitignore").write_text(".env\n")
    (repo / ".env").write_text("TOKEN=s3cret\n")
    (repo / "code.py").write_text("print(1)\n")
    (repo / "index.html").write_text("<p>the repo's own page</p>")
    (repo / "report.json").write_text("{}")
    git("add", ".gitignore", "code.py", "index.html", "report.json", cwd=repo)
    git("commit", "-qm", "first", cwd=repo)
    git("remote", "add", "origin", str(origin), cwd=repo)
    git("push", "-q", "origin", "main", cwd=repo)
    return repo, origin, git


@pytest.mark.parametrize(
    "branch", ["main", "HEAD", "@", "refs/heads/foo", "-D", "--orphan", "a..b", "@{-1}", ""]
)
def test_publish_refuses_the_checked_out_branch_and_names_git_reads_otherwise(built, repo, capsys, branch):
    repo, origin, git = repo
    before = (git("rev-parse", "main", cwd=repo), git("rev-parse", "main", cwd=origin))
    _, site = built
    argv = ["publish", str(site), "--repo", str(repo), f"--branch={branch}", "--push"]
    one_line_error(capsys, argv)
    assert (git("rev-parse", "main", cwd=repo), git("rev-parse", "main", cwd=origin)) == before
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).strip() == "main"


def test_publish_refuses_the_repository_itself_and_an_option_as_remote(built, repo, capsys):
    repo, origin, git = repo
    _, site = built
    err = one_line_error(capsys, ["publish", str(repo), "--repo", str(repo)])
    assert "working tree" in err
    one_line_error(capsys, ["publish", str(site), "--repo", str(repo), "--push", "--remote=--mirror"])
    assert "gh-pages" not in git("branch", "--list", cwd=repo)
    assert main(["publish", str(site), "--repo", str(repo), "--push"]) == 0
    files = git("ls-tree", "-r", "--name-only", "gh-pages", cwd=origin).split()
    assert ".env" not in files and "code.py" not in files and "index.html" in files
    assert git("ls-tree", "-r", "--name-only", "main", cwd=origin).split() == [
        ".gitignore",
        "code.py",
        "index.html",
        "report.json",
    ]


# -- 4. one line where a traceback was


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(10**9) %}x{% endfor %}",
        "{{ 1/0 }}",
        "{{ '{0.x}'.format_map({}) }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{{ 'x' * 10**10 }}",
    ],
)
def test_chat_templates_that_raise_or_never_end_are_one_line(lm, tmp_path, capsys, template):
    (lm / "chat_template.jinja").write_text(template)
    config = generation_config(tmp_path, lm)
    err = one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])
    assert "chat template" in err


@pytest.mark.parametrize(
    "name, content, says",
    [
        (MANIFEST_NAME, "[1, 2]", "not an object"),
        (MANIFEST_NAME, None, "layers is str"),
        ("tokenizer.json", "{not json", "tokenizer"),
        ("tokenizer.json", '{"model": 3}', "tokenizer"),
        ("tokenizer_config.json", "[]", "not a JSON object"),
        ("special_tokens_map.json", "{broken", "not JSON"),
    ],
)
def test_malformed_model_files_are_one_line(lm, tmp_path, capsys, name, content, says):
    if content is None:
        manifest = json.loads((lm / MANIFEST_NAME).read_text())
        manifest["layers"] = "two"
        content = json.dumps(manifest)
    (lm / name).write_text(content)
    config = generation_config(tmp_path, lm)
    assert says in one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])


def test_a_tokenizer_past_the_models_embedding_is_one_line(tiny, lm, tmp_path, capsys):
    """Token ids the model cannot look up: the classifier's tracer and the generator both say so."""
    tok = json.loads((lm / "tokenizer.json").read_text())
    tok["added_tokens"].append(
        {
            "id": 100000,
            "content": "<huge>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    (lm / "tokenizer.json").write_text(json.dumps(tok))
    err = one_line_error(capsys, ["build", str(generation_config(tmp_path, lm)), "-o", str(tmp_path / "s")])
    assert "not this model's" in err
    bert = tmp_path / "bert"
    shutil.copytree(tiny.export("bert"), bert)
    tok = json.loads((bert / "tokenizer.json").read_text())
    tok["model"]["vocab"]["huge"] = 50000
    (bert / "tokenizer.json").write_text(json.dumps(tok))
    config = write_config(tmp_path / "c", bert, ROWS)
    assert "not this model's" in one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "s2")])


def test_external_data_that_escapes_the_folder_is_one_line(lm, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import external_data_helper

    model = onnx.load(str(lm / "decoder.onnx"))
    external_data_helper.convert_model_to_external_data(model, location="weights.bin", size_threshold=0)
    onnx.save_model(model, str(tmp_path / "decoder.onnx"))  # weights.bin beside it, outside the folder
    for tensor in external_data_helper._get_all_tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"  # onnx's writer refuses to write such a model itself
    (lm / "decoder.onnx").write_bytes(model.SerializeToString())
    config = generation_config(tmp_path, lm, chat_template=False)
    err = one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "site"), "-q"])
    assert "onnxruntime cannot load it" in err


def test_bad_data_rows_and_paths_are_one_line(tiny, tmp_path, capsys):
    data_dir = tmp_path / "p"
    config = write_config(data_dir, tiny.export("bert"), ROWS, extra='on_bad_row = "skip"\n')
    with (data_dir / "data.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("[" * 200_000 + "]" * 200_000 + "\n")  # nested too deep for json
        fh.write('{"id": "\\ud800", "text": "a lone surrogate in its id", "label": "alpha"}\n')
    assert main(["build", str(config), "-o", str(tmp_path / "site"), "-q"]) == 0
    skipped = json.loads((tmp_path / "site" / "report.json").read_text())["skipped_rows"]
    assert [(row["line"], row["reason"]) for row in skipped] == [
        (2, "JSON nested too deep"),
        (3, "column 'id' holds a lone surrogate (not text); fix the row"),
    ]
    text = config.read_text().replace('cache_dir = "cache"', 'cache_dir = "a-file"')
    config.write_text(text)
    (data_dir / "a-file").write_text("not a folder")
    capsys.readouterr()
    assert "cache_dir is a file" in one_line_error(capsys, ["build", str(config), "-o", str(tmp_path / "s2")])


def test_serve_refuses_a_bad_port_a_nul_byte_and_lists_no_folder(built, capsys):
    from attnreport.site.serve import make_server

    _, site = built
    assert "not a port" in one_line_error(capsys, ["serve", str(site), "--port", "80000"])
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for path in ("/%00", "/assets/", "/examples/", "/..%2f..%2fetc%2fpasswd"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(base + path, timeout=5).close()
            caught.value.close()
            assert caught.value.code == 404, path
        with urllib.request.urlopen(base + "/", timeout=5) as page:
            assert page.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_special_tokens_map_enters_the_generation_cache_key(lm):
    from attnreport.trace.generate import Generator

    (lm / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<a>"}))
    before = Generator(lm).model_key()
    (lm / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<b>"}))
    assert Generator(lm).model_key() != before


def test_a_file_named_like_a_manifest_field_cannot_be_a_folder(lm):
    from attnreport.trace.generate import Generator

    manifest = json.loads((lm / MANIFEST_NAME).read_text())
    manifest["generation"]["lm_head"] = "."
    (lm / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="outside the model folder|not a regular file"):
        Generator(lm)
