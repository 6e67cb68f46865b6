"""The `helpdesk` command (also `python -m bot`). Each command group lives in its own cli_* module."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from bot.config import ConfigError
from bot.knowledge import KnowledgeError
from bot.render import RenderError

# Each module has `register(subparsers)`; its parsers set `func(args) -> int`.
COMMAND_MODULES = [
    "bot.cli_chat",
    "bot.cli_ask",
    "bot.cli_kb",
    "bot.cli_inspect",
    "bot.cli_registry",
    "bot.cli_remind",
    "bot.cli_demo",
    "handlers.cli",
    "bot.cli_reissue",
    "bot.cli_diagnose",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpdesk", description="GPKI/EPKI certificate helpdesk")
    parser.add_argument("--config", help="TOML settings file (default: $HELPDESK_CONFIG)")
    parser.add_argument("--db", help="SQLite database (default: $HELPDESK_DB or ./helpdesk.db)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; operator errors are one line on stderr, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, KnowledgeError, RenderError) as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
