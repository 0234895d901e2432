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


def _git_ok(args: list[str], *, cwd: Path) -> str | None:
    """git's output, or None when it fails (a question whose 'no' is an answer)."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def check_branch(branch: str, *, top: Path) -> str:
    """`branch` as a full ref, refused when git would read it as something else or when it is
    the branch checked out (publishing there would move the user's HEAD and work)."""
    if (
        not branch
        or branch.startswith(("-", "refs/"))
        or branch in ("HEAD", "@")
        or _git_ok(["check-ref-format", "--branch", branch], cwd=top) != branch
    ):
        raise BuildError(f"--branch {branch!r}: not a plain branch name; use one like gh-pages")
    current = _git_ok(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=top)
    if current == branch:
        raise BuildError(
            f"--branch {branch}: is the branch checked out in {top}; publish to a branch of its own "
            f"(gh-pages), never to the one you work on"
        )
    return f"refs/heads/{branch}"


def publish(
    site: Path,
    *,
    repo: Path,
    branch: str = "gh-pages",
    message: str = "Publish attnreport site",
    push: bool = False,
    remote: str = "origin",
) -> str:
    """Commit the contents of `site` as the whole tree of `branch`; return the commit id.

    Only `branch` moves: it must not be the checked-out branch, the site must not be (or hold)
    the repository's working tree, and user values reach git after ``--`` where git takes it.
    """
    site = Path(site).resolve()
    if not (site / "index.html").is_file() or not (site / "report.json").is_file():
        raise BuildError(f"{site}: not an attnreport site (no index.html and report.json); build it first")
    repo = Path(repo).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd=repo)).resolve()
    if site == top or site in top.parents:
        raise BuildError(
            f"{site}: holds the repository's working tree {top}; publish the built site folder "
            f"(the one `attnreport build -o` wrote), not the repository"
        )
    ref = check_branch(branch, top=top)
    if remote.startswith("-") or not remote:
        raise BuildError(f"--remote {remote!r}: not a remote name; use one like origin")
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(scratch) / "index"))
        # --force: the user's .gitignore may name the site folder; every file in it is the build's
        _git(["--work-tree", str(site), "add", "--all", "--force", "--", "."], cwd=top, env=env)
        tree = _git(["write-tree"], cwd=top, env=env)
    parent = _git_ok(["rev-parse", "--verify", "--quiet", ref], cwd=top) or ""
    if parent and _git(["rev-parse", f"{parent}^{{tree}}"], cwd=top) == tree:
        commit = parent  # nothing changed: no empty commit
    else:
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        commit = _git(args, cwd=top)
        _git(["update-ref", ref, commit] + ([parent] if parent else []), cwd=top)
    if push:
        _git(["push", "--", remote, f"{ref}:{ref}"], cwd=top)
    return commit
