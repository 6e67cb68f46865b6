"""The composition root of the Telegram adapter: settings -> Application (handlers, rate limiter, error
handler, jobs, commands) -> long polling through the durable inbox, or a webhook when one is configured.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import re
import secrets
import signal
from dataclasses import dataclass, field
from urllib.parse import urlparse

from telegram import BotCommand, BotCommandScopeChat
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler,
                          ChatMemberHandler, ContextTypes, MessageHandler, Updater, filters)

from bot.config import Config
from bot.helpdesk import Helpdesk
from handlers import errors, outbound, updates
from handlers.inbox import ALLOWED_UPDATES, Inbox, InboxQueue, Intake

log = logging.getLogger("helpdesk.telegram")

# Features that need the Telegram side (periodic jobs, extra handlers, delivery hooks) add "module:function"
# here; each `function(app, hd)` runs once while the Application is built. Jobs go on `app.job_queue`,
# send with `handlers.outbound.deliver(app.bot, replies, chat_id)`, and reach the core as
# `app.bot_data["runtime"].hd`.
EXTENSIONS: list[str] = [
    "handlers.reminders_job:schedule",
    "handlers.outbox_job:schedule",
    "handlers.reissue_jobs:schedule",
    "handlers.staff:setup",
]

SHUTDOWN_GRACE_SECONDS = 5.0
CONNECTION_POOL_SIZE = 16  # Bot API connections for sending (getUpdates has its own)
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class StartupError(RuntimeError):
    """The bot cannot start (bad token, unreachable API, bad webhook settings): one line for the operator."""


@dataclass
class Runtime:
    """What the callbacks need, kept in `app.bot_data["runtime"]` (references only; state is in SQLite)."""

    hd: Helpdesk
    config: Config
    inbox: Inbox
    intake: Intake | None = field(default=None)
    transports: list = field(default_factory=list)  # our HTTP transports, closed even when start-up fails


def build_application(config: Config, hd: Helpdesk) -> Application:
    """The Application with every handler, the rate limiter, the error handler and the jobs."""
    builder = (
        ApplicationBuilder()
        .token(config.telegram_token)
        .updater(None)  # updates come through the durable inbox (inbox.Intake), not PTB's Updater
        .rate_limiter(overall_limiter(config.telegram_overall_rate))
    )
    builder, transports = _with_transport(builder, config.telegram_timeout_seconds)
    if config.telegram_base_url:
        builder = builder.base_url(config.telegram_base_url).base_file_url(file_base_url(config))
    app = builder.build()
    inbox = Inbox(hd.store, hd.now)
    app.bot_data["runtime"] = Runtime(hd, config, inbox, transports=transports)
    outbound.install(app.bot, outbound.Outbound(
        outbound.ChatPacer(config.telegram_chat_rate, config.telegram_chat_burst), on_blocked=inbox.block))

    app.add_handler(ChatMemberHandler(updates.on_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(CallbackQueryHandler(updates.on_button))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, updates.on_edited))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.Document.ALL, updates.on_document))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, updates.on_text))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, updates.on_other))
    app.add_error_handler(errors.on_error)

    app.job_queue.run_repeating(_prune_inbox, interval=3600, first=60, name="prune-inbox")
    for path in EXTENSIONS:
        module_name, function_name = path.split(":")
        getattr(importlib.import_module(module_name), function_name)(app, hd)
    return app


def _with_transport(builder: ApplicationBuilder, timeout: float) -> tuple[ApplicationBuilder, list]:
    """aiohttp under PTB when it is installed (handlers/transport.py), else PTB's httpx with the same limits.

    Either way at most CONNECTION_POOL_SIZE connections: with PTB's default of 256, replies to a hundred
    chats at once opened a hundred connections and the slowest waited seconds for theirs.
    """
    try:
        from handlers.transport import AiohttpRequest
    except ImportError:
        return (builder.connection_pool_size(CONNECTION_POOL_SIZE)
                .read_timeout(timeout).write_timeout(timeout).connect_timeout(timeout).pool_timeout(timeout)
                .get_updates_read_timeout(timeout).get_updates_write_timeout(timeout)
                .get_updates_connect_timeout(timeout).get_updates_pool_timeout(timeout)), []
    transports = [AiohttpRequest(CONNECTION_POOL_SIZE, timeout), AiohttpRequest(1, timeout)]
    return builder.request(transports[0]).get_updates_request(transports[1]), transports


def overall_limiter(rate: float) -> AIORateLimiter:
    """PTB's AIORateLimiter at `rate` messages a second, spread evenly (one every 1/rate s, no bursts):
    a burst of N at once can reach Telegram bunched up and exceed its per-second count; evenly spaced
    sends leave Telegram's own burst allowance unused. 429s that still come are retried after retry_after."""
    if rate <= 0:
        return AIORateLimiter(overall_max_rate=0, max_retries=3)
    return AIORateLimiter(overall_max_rate=1, overall_time_period=1 / rate, max_retries=3)


def file_base_url(config: Config) -> str:
    """HELPDESK_TELEGRAM_BASE_FILE_URL, or the one matching a base URL that ends in /bot."""
    if config.telegram_base_file_url:
        return config.telegram_base_file_url
    base = config.telegram_base_url.rstrip("/")
    return base[:-3] + "file/bot" if base.endswith("/bot") else base + "/file/bot"


async def _prune_inbox(context: ContextTypes.DEFAULT_TYPE) -> None:
    context.application.bot_data["runtime"].inbox.prune()


async def set_commands(app: Application, hd: Helpdesk, config: Config) -> None:
    """The command menu, with the Korean descriptions of /help (staff commands in the staff chat)."""
    commands = [BotCommand(c.name, c.description[:256]) for c in hd.command_list() if _COMMAND_NAME.match(c.name)]
    await app.bot.set_my_commands(commands)
    staff = sorted({name for f in hd.features for name in f.staff_commands})
    staff_commands = [BotCommand(n, hd.msg(f"command.{n}")[:256]) for n in staff
                      if _COMMAND_NAME.match(n) and hd.renderer.has_message(f"command.{n}")]
    if config.staff_chat_id and staff_commands:
        await app.bot.set_my_commands(commands + staff_commands, scope=BotCommandScopeChat(int(config.staff_chat_id)))


async def _start_webhook(app: Application, config: Config, intake: Intake) -> Updater:
    secret = config.webhook_secret or secrets.token_urlsafe(32)
    if not _SECRET.match(secret):
        raise StartupError("HELPDESK_WEBHOOK_SECRET may only use A-Z, a-z, 0-9, _ and - (1-256 characters)")
    updater = Updater(app.bot, InboxQueue(intake))  # its queue records each update before the 200
    await updater.initialize()
    try:
        await updater.start_webhook(
            listen=config.webhook_listen, port=config.webhook_port, url_path=urlparse(config.webhook_url).path,
            webhook_url=config.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False)
    except RuntimeError as exc:  # PTB without its webhooks extra (tornado)
        raise StartupError(f"cannot start the webhook: {exc}") from exc
    return updater


async def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code. Raises StartupError when it cannot start."""
    hd = Helpdesk(config)
    app = build_application(config, hd)
    runtime: Runtime = app.bot_data["runtime"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = initialized = False
    poller: asyncio.Task | None = None
    updater: Updater | None = None
    intake = runtime.intake = Intake(app, runtime.inbox)
    try:
        try:
            await app.initialize()  # getMe
            initialized = True
        except InvalidToken as exc:  # PTB's message quotes the token: not ours
            raise StartupError("Telegram rejected HELPDESK_TELEGRAM_TOKEN (unauthorized): check it with @BotFather") from exc
        except TelegramError as exc:
            raise StartupError(f"cannot reach the Bot API at {app.bot.base_url.split('/bot')[0]}: {exc}") from exc
        try:
            await set_commands(app, hd, config)
        except TelegramError as exc:
            log.warning("setMyCommands failed: %s", exc)
        await app.start()
        started = True
        replayed = intake.replay()
        if config.webhook_url:
            updater = await _start_webhook(app, config, intake)
        else:
            await outbound.retrying(lambda: app.bot.delete_webhook(drop_pending_updates=False))
            poller = asyncio.create_task(intake.poll(app.bot, config.telegram_poll_seconds), name="getUpdates")
        log.info("running as @%s (%s); %d unhandled update(s) from the last run replayed",
                 app.bot.username, "webhook" if updater else "long polling", replayed)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({t for t in (waiter, poller) if t is not None}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if poller is not None and poller.done() and not poller.cancelled() and poller.exception() is not None:
            raise poller.exception()
        return 0
    except InvalidToken as exc:
        raise StartupError("Telegram stopped accepting HELPDESK_TELEGRAM_TOKEN (revoked?)") from exc
    finally:
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        if updater is not None and updater.running:
            await updater.stop()
        await intake.drain(SHUTDOWN_GRACE_SECONDS)
        if started:
            await app.stop()
        if initialized:
            await app.shutdown()
        else:  # getMe failed: PTB leaves the HTTP sessions it opened for it
            await asyncio.gather(*(t.shutdown() for t in runtime.transports), return_exceptions=True)
        hd.close()
        if started:
            log.info("stopped")
