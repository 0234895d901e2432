"""The `attnreport` command: parses arguments, calls the stages, turns errors into exit codes.

A user's mistake is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnreport import __version__
from attnreport.core.config import shipped_themes
from attnreport.core.errors import AttnReportError

EXIT_USER_ERROR = 2

QUIET = "no progress (default: bars on a terminal, a line per tenth of each stage elsewhere)"

#: shown by `attnreport build --help`: every other option has a default (README: "Options")
MINIMAL_CONFIG = """\
a minimal report.toml (paths relative to it):

  title = "Support-ticket classifier"
  [model]
  path = "./my-model"        # `attnreport export` output, or a Hugging Face folder
  [data]
  path = "tickets.jsonl"     # or .csv; columns text, optional label and id
                             # (or: texts = ["first text", "second text"])
"""


def _log(message: str) -> None:
    from attnreport.core.progress import note

    note(message, stream=sys.stderr)


def summary(what: str, result) -> str:
    """The last line of a build: how many examples, and how many rows were left out (never silently)."""
    line = f"{what} with {result.examples} example{'s' if result.examples != 1 else ''}"
    if result.skipped:
        line += f", {result.skipped} row{'s' if result.skipped != 1 else ''} skipped (see index)"
    pages = [result.site / "index.html", *result.subsites]
    return f"{line}: {' and '.join(str(p) for p in pages)}"


def cmd_export(args: argparse.Namespace) -> int:
    from attnreport.export import export_model

    card = export_model(
        Path(args.model),
        Path(args.output),
        task=args.task,
        quantize=args.quantize,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        dtype=args.dtype,
        external_data_threshold=args.external_data_threshold,
        generation=not args.no_generation,
        with_qk=args.with_qk,
        log=_log,
    )
    print(f"{args.output}: {card.architecture}, {card.layers} layers x {card.heads} heads")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    config = load_config(Path(args.config))
    if args.theme:
        config.site.theme = args.theme
        config.validate()
    if args.scheduler:
        config.run.executor, config.run.scheduler = "dask", args.scheduler
    result = build(config, Path(args.output), log=_log, progress=not args.quiet)
    print(summary("site", result))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from attnreport.demo import run_demo

    result = run_demo(Path(args.output), log=_log, progress=not args.quiet, theme=args.theme)
    print(summary("demo site", result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from attnreport.site.serve import make_server

    server = make_server(Path(args.site), host=args.host, port=args.port)
    host, port = server.server_address[:2]
    print(f"serving {Path(args.site).resolve()} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from attnreport.site.publish import publish

    commit = publish(
        Path(args.site), repo=Path(args.repo), branch=args.branch, push=args.push, remote=args.remote
    )
    where = f"pushed to {args.remote}" if args.push else "not pushed (add --push)"
    print(f"{args.branch} at {commit[:12]}: {where}")
    return 0


def parser() -> argparse.ArgumentParser:
    from attnreport.export.quantize import QUANTIZERS

    p = argparse.ArgumentParser(
        prog="attnreport",
        description="Turn a transformer and a set of texts into a static website that explains the model.",
    )
    p.add_argument("--version", action="version", version=f"attnreport {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser(
        "export", help="export a Hugging Face checkpoint folder or a GGUF file to ONNX (needs torch)"
    )
    e.add_argument(
        "model",
        help="a local Hugging Face checkpoint folder, or a .gguf file (exported dequantized)",
    )
    e.add_argument("-o", "--output", required=True, help="folder to write the export into")
    e.add_argument(
        "--task",
        choices=["sequence-classification", "causal-lm", "feature-extraction"],
        help="what to export (default: from the checkpoint's architecture)",
    )
    e.add_argument(
        "--quantize",
        choices=sorted(QUANTIZERS),
        help="; ".join(q.help for q in QUANTIZERS.values()) + " (default: float32 only)",
    )
    e.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load pickle weights (pytorch_model.bin); they can run code: only if trusted (default: refused)",
    )
    e.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the checkpoint's own Python code; only if you have read it (default: refused)",
    )
    e.add_argument(
        "--dtype",
        choices=["float32", "float16"],
        default="float32",
        help="weights of the exported graphs (default: float32; float16 is checked with a looser tolerance)",
    )
    e.add_argument(
        "--external-data-threshold",
        type=int,
        default=1 << 26,
        metavar="BYTES",
        help="weights above this size go to one ONNX external-data file shared by every graph, each "
        "weight once (default: 64 MiB; below it each graph embeds its own copy)",
    )
    e.add_argument(
        "--no-generation",
        action="store_true",
        help="causal LMs: skip decoder.onnx (KV cache) and lm_head.onnx, so no generation report",
    )
    e.add_argument(
        "--with-qk",
        action="store_true",
        help="also output every layer's queries and keys, for the example pages' neuron view "
        "(default: off; the outputs stay as they were)",
    )
    e.set_defaults(run=cmd_export)

    b = sub.add_parser(
        "build",
        help="build a site from a report.toml",
        description="Build a static site that explains a model on a set of texts, from a report.toml.",
        epilog=MINIMAL_CONFIG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("config", help="the report.toml (a minimal one is below)")
    b.add_argument("-o", "--output", required=True, help="the site folder (replaced only when done)")
    b.add_argument(
        "--theme", choices=shipped_themes(), help="override [site] theme (default: the config's, else light)"
    )
    b.add_argument("-q", "--quiet", action="store_true", help=QUIET)
    b.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="trace and analyse on this Dask scheduler, e.g. tcp://host:8786 "
        '(sets [run] executor = "dask"; default: the config\'s [run])',
    )
    b.set_defaults(run=cmd_build)

    s = sub.add_parser("serve", help="preview a built site on 127.0.0.1")
    s.add_argument("site", help="the site folder")
    s.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    s.set_defaults(run=cmd_serve)

    pb = sub.add_parser("publish", help="commit a built site to a branch (gh-pages) of your repository")
    pb.add_argument("site", help="the site folder")
    pb.add_argument("--branch", default="gh-pages", help="the branch to commit to (default: gh-pages)")
    pb.add_argument("--repo", default=".", help="the git repository (default: ., the current folder)")
    pb.add_argument("--push", action="store_true", help="also push the branch (default: commit only)")
    pb.add_argument("--remote", default="origin", help="the remote --push pushes to (default: origin)")
    pb.set_defaults(run=cmd_publish)

    d = sub.add_parser("demo", help="the whole pipeline on the built-in MiniLM demo (needs attnreport[demo])")
    d.add_argument("-o", "--output", default="site", help="the site folder (default: ./site)")
    d.add_argument(
        "--theme", choices=shipped_themes(), default="light", help="the site's theme (default: light)"
    )
    d.add_argument("-q", "--quiet", action="store_true", help=QUIET)
    d.set_defaults(run=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except AttnReportError as exc:
        print(f"attnreport: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("attnreport: interrupted; the previous site is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
