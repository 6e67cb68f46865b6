"""What every CLI command needs: the config (with --db/--config applied) and a Helpdesk."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.config import Config, load_config
from bot.helpdesk import Helpdesk


def config_from_args(args: argparse.Namespace) -> Config:
    config = load_config(toml_path=getattr(args, "config", None))
    if getattr(args, "db", None):
        config = config.with_overrides(db_path=args.db)
    return config


def open_helpdesk(args: argparse.Namespace) -> Helpdesk:
    """The core, built from the settings of this invocation."""
    return Helpdesk(config_from_args(args))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
