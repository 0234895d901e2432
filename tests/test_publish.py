"""`attnreport publish`: the site becomes a branch; the user's working tree and index stay as they were."""

from __future__ import annotations

import subprocess

import pytest

from attnreport.core.errors import BuildError
from attnreport.site.publish import publish


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.invalid")
    git(repo, "config", "user.name", "t")
    (repo / "code.py").write_text("print(1)\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-qm", "first")
    (repo / "code.py").write_text("print(2)\n")  # an uncommitted change
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    return repo


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    (site / "examples").mkdir(parents=True)
    (site / "index.html").write_text("<p>index</p>")
    (site / "report.json").write_text("{}")
    (site / ".nojekyll").write_text("")
    (site / "examples" / "a.html").write_text("<p>a</p>")
    return site


def test_publish_commits_the_site_without_touching_the_work_tree(repo, site):
    status_before = git(repo, "status", "--porcelain")
    commit = publish(site, repo=repo)
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "ls-tree", "-r", "--name-only", "gh-pages").splitlines() == [
        ".nojekyll",
        "examples/a.html",
        "index.html",
        "report.json",
    ]
    assert git(repo, "rev-parse", "gh-pages") == commit
    assert publish(site, repo=repo) == commit  # unchanged site: no new commit
    (site / "index.html").write_text("<p>new</p>")
    second = publish(site, repo=repo)
    assert git(repo, "rev-parse", f"{second}^") == commit
    assert git(repo, "show", "gh-pages:index.html") == "<p>new</p>"


def test_push_only_when_asked(repo, site, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    publish(site, repo=repo)
    assert git(remote, "branch", "--list") == ""
    commit = publish(site, repo=repo, push=True)
    assert git(remote, "rev-parse", "gh-pages") == commit


def test_refuses_what_is_not_a_site(repo, tmp_path):
    with pytest.raises(BuildError, match="not an attnreport site"):
        publish(tmp_path, repo=repo)
