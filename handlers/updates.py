"""One small callback per kind of update: convert it, let the core (or a short notice) answer, deliver.

Each answer goes through `respond`: the replies are stored with the core's state change in one
transaction (the inbox's plan), then sent; a replayed update sends only what was not sent yet.
"""
from __future__ import annotations

import logging
from typing import Callable

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.types import Reply
from handlers import convert
from handlers.outbound import deliver, retrying

log = logging.getLogger("helpdesk.telegram")
MAX_FILE_BYTES = 1_000_000  # certificates are a few KB; larger files are refused before download
Context = ContextTypes.DEFAULT_TYPE


def _runtime(context: Context):
    return context.application.bot_data["runtime"]


def _addressed(update: Update, context: Context) -> bool:
    """Private chats and the staff chat: always. Other groups: only a command, mention or reply to the bot."""
    message = update.effective_message
    if str(message.chat.id) == _runtime(context).config.staff_chat_id:
        return True
    return convert.is_addressed(message, context.bot.username, context.bot.id)


def _is_staff_chat(update: Update, context: Context) -> bool:
    return str(update.effective_chat.id) == _runtime(context).config.staff_chat_id


async def respond(update: Update, context: Context, compute: Callable[[], list[Reply]]) -> None:
    """Plan the update's replies durably (computing them only the first time), then deliver them."""
    runtime = _runtime(context)
    chat, message = update.effective_chat, update.effective_message
    chat_id = str(chat.id)

    def unblock_and_compute() -> list[Reply]:
        runtime.inbox.unblock(chat_id)  # they write again, so they have unblocked the bot
        return compute()

    plan = runtime.inbox.plan(update.update_id, unblock_and_compute)
    thread_id = message.message_thread_id if message is not None and message.is_topic_message else None
    await deliver(context.bot, plan.replies, chat_id, default_thread_id=thread_id,
                  progress=plan.progress, log_to=plan.log)


def _notice(context: Context, key: str) -> Callable[[], list[Reply]]:
    hd = _runtime(context).hd
    return lambda: [Reply(hd.msg(key))]


async def on_text(update: Update, context: Context) -> None:
    if not _addressed(update, context):
        return
    inbound = convert.text_inbound(update, context.bot.username)
    await respond(update, context, lambda: _runtime(context).hd.handle(inbound))


async def on_button(update: Update, context: Context) -> None:
    query = update.callback_query
    try:
        await query.answer()  # stops the button's spinner; fails harmlessly for very old presses
    except TelegramError as exc:
        log.debug("answerCallbackQuery failed: %s", exc)
    if query.message is None:
        return  # a button of an inline-mode message: not ours
    inbound = convert.button_inbound(update)
    await respond(update, context, lambda: _runtime(context).hd.handle(inbound))


async def on_document(update: Update, context: Context) -> None:
    if not _addressed(update, context):
        return
    document = update.effective_message.document
    if document.file_size is not None and document.file_size > MAX_FILE_BYTES:
        await respond(update, context, _notice(context, "telegram.file_too_big"))
        return
    content = b""
    if not _runtime(context).inbox.is_planned(update.update_id):  # a replay already has its answer
        file = await retrying(lambda: context.bot.get_file(document.file_id))
        data = await retrying(file.download_as_bytearray)  # in memory only, never written to disk
        if len(data) > MAX_FILE_BYTES:
            await respond(update, context, _notice(context, "telegram.file_too_big"))
            return
        content = bytes(data)
    inbound = convert.document_inbound(update, content)
    await respond(update, context, lambda: _runtime(context).hd.handle(inbound))


async def on_other(update: Update, context: Context) -> None:
    """Photos, stickers, voice, locations, ...: a short hint to write instead (the staff chat gets the caption)."""
    message = update.effective_message
    if _is_staff_chat(update, context):
        if message.caption:
            await on_text(update, context)
        return
    if not _addressed(update, context) or message.new_chat_members or message.left_chat_member:
        return
    await respond(update, context, _notice(context, convert.media_message_key(message)))


async def on_edited(update: Update, context: Context) -> None:
    """An edit is not a new question; in a private chat the user is told to send it again."""
    if update.effective_chat.type == "private":
        await respond(update, context, _notice(context, "telegram.edited"))


async def on_member(update: Update, context: Context) -> None:
    """The user blocked (or unblocked) the bot in a private chat: recorded, so nothing is retried there."""
    member = update.my_chat_member
    if member.chat.type != "private":
        return
    inbox = _runtime(context).inbox
    if member.new_chat_member.status in ("kicked", "left"):
        inbox.block(str(member.chat.id), "blocked by the user")
    else:
        inbox.unblock(str(member.chat.id))
