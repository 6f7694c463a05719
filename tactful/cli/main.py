"""The ``tactful`` command line (also ``python -m tactful``). Every command has ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from tactful import __version__
from tactful.cli import register_all
from tactful.cli.base import (
    NO_CONFIG,
    App,
    CommandError,
    UsageError,
    human,
    out_json,
    out_jsonl,
    parse_now,
)
from tactful.config import ConfigError, starter_config_text
from tactful.exceptions import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, TactfulError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tactful",
        description="Support-aware marketing: Zendesk support state, segments and channels.",
    )
    parser.add_argument("--version", action="version", version=f"tactful {__version__}")
    parser.add_argument(
        "--config",
        default=None,
        help="path to tactful.toml (default: $TACTFUL_CONFIG, else ./tactful.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    app = App(args)
    err = Console(stderr=True)
    try:
        result: int = args.handler(app)
        return result
    except ConfigError as exc:  # its message lists every problem, one a line
        err.print(str(exc), highlight=False, markup=False)
        return exc.exit_code
    except TactfulError as exc:  # the exit status follows the kind (tactful.exceptions)
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


__all__ = [  # what commands imported from here before ``tactful.cli.base``
    "NO_CONFIG",
    "App",
    "CommandError",
    "UsageError",
    "human",
    "main",
    "out_json",
    "out_jsonl",
    "parse_now",
    "starter_config_text",
]
