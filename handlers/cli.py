"""`helpdesk run`: the Telegram bot. Telegram is imported only when the command runs, so other commands
(`helpdesk ask`, `chat`, ...) start without it."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys

from bot.cli_common import config_from_args
from bot.config import Config, ConfigError

# "<bot id>:<secret>" as @BotFather hands it out.
_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="the Telegram bot (long polling; a webhook when HELPDESK_WEBHOOK_URL is set)")
    parser.set_defaults(func=run)


def check_settings(config: Config) -> None:
    """Refuse to start with a missing or malformed token (never echo the token itself)."""
    token = config.telegram_token
    if not token:
        raise ConfigError("HELPDESK_TELEGRAM_TOKEN is not set (the bot token from @BotFather)")
    if not _TOKEN.match(token):
        raise ConfigError("HELPDESK_TELEGRAM_TOKEN is malformed: expected <bot id>:<secret> as @BotFather gives it")
    if config.telegram_base_url and not re.match(r"^https?://", config.telegram_base_url):
        raise ConfigError("HELPDESK_TELEGRAM_BASE_URL must start with http:// or https://")
    if config.staff_chat_id and not re.match(r"^-?\d+$", config.staff_chat_id):
        raise ConfigError("HELPDESK_STAFF_CHAT_ID must be a numeric chat id (e.g. -1001234567890)")
    if config.webhook_url and not re.match(r"^https?://", config.webhook_url):
        raise ConfigError("HELPDESK_WEBHOOK_URL must start with https:// (or http:// behind a proxy)")


class RedactToken(logging.Filter):
    """The bot token is a password: it never reaches the log, whoever formats a URL or an error."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        return True


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_settings(config)
    logging.getLogger("helpdesk").setLevel(logging.INFO)
    for noisy in ("httpx", "apscheduler", "telegram"):  # httpx would log every URL, token included
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(config.telegram_token))
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB 22's opt-in: retry_after as a timedelta, no warnings
    from handlers.app import StartupError, serve  # telegram is imported here, not at `helpdesk` start-up

    try:
        return asyncio.run(serve(config))
    except StartupError as exc:
        print(f"helpdesk: {str(exc).replace(config.telegram_token, '<token>')}", file=sys.stderr)
        return 1
