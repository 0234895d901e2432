"""`attnreport publish`: commit a built site to a branch (gh-pages) of the user's repository.

Written with git's plumbing and a private index file, so the user's working tree, index
and current branch are never touched. Pushing happens only when asked.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from attnreport.core.errors import BuildError


def _git(args: list[str], *, cwd: Path, env: dict | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BuildError("git is not installed; install git to publish") from exc
    except subprocess.CalledProcessError as exc:
        message = (exc.stderr or exc.stdout).strip().splitlines()
        raise BuildError(f"git {args[0]} failed: {message[-1] if message else exc.returncode}") from exc
    return done.stdout.strip()


def publish(
    site: Path,
    *,
    repo: Path,
    branch: str = "gh-pages",
    message: str = "Publish attnreport site",
    push: bool = False,
    remote: str = "origin",
) -> str:
    """Commit the contents of `site` as the whole tree of `branch`; return the commit id."""
    site = Path(site).resolve()
    if not (site / "index.html").is_file() or not (site / "report.json").is_file():
        raise BuildError(f"{site}: not an attnreport site (no index.html and report.json); build it first")
    repo = Path(repo).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd=repo))
    ref = f"refs/heads/{branch}"
    _git(["check-ref-format", ref], cwd=top)
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(scratch) / "index"))
        _git(["--work-tree", str(site), "add", "--all", "--force", "."], cwd=top, env=env)
        tree = _git(["write-tree"], cwd=top, env=env)
    parent = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref], cwd=top, capture_output=True, text=True
    ).stdout.strip()
    if parent and _git(["rev-parse", f"{parent}^{{tree}}"], cwd=top) == tree:
        commit = parent  # nothing changed: no empty commit
    else:
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        commit = _git(args, cwd=top)
        _git(["update-ref", ref, commit] + ([parent] if parent else []), cwd=top)
    if push:
        _git(["push", remote, f"{ref}:{ref}"], cwd=top)
    return commit
