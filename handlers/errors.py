"""The one error handler: the user gets an apology with a short incident id, the log gets the traceback."""
from __future__ import annotations

import logging
import secrets
import traceback

from telegram import Update
from telegram.ext import ContextTypes

from bot.privacy import mask_pii
from bot.types import Reply
from handlers.outbound import deliver

log = logging.getLogger("helpdesk.telegram")


def new_incident_id() -> str:
    """Short enough to read out on the phone, random enough not to collide in a day's log."""
    return secrets.token_hex(3).upper()


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    incident = new_incident_id()
    error = context.error
    details = "".join(traceback.format_exception(error)) if error is not None else "no exception"
    update_id = update.update_id if isinstance(update, Update) else None
    # Exception texts can quote what the user wrote: mask personal data before it reaches the log.
    log.error("incident %s (update %s): %s", incident, update_id, mask_pii(details))
    if not isinstance(update, Update):
        return  # a job failed: nobody to apologise to
    runtime = context.application.bot_data["runtime"]
    runtime.inbox.fail(update.update_id, incident)
    chat, message = update.effective_chat, update.effective_message
    if chat is None:
        return
    thread_id = message.message_thread_id if message is not None and message.is_topic_message else None
    apology = Reply(runtime.hd.msg("telegram.error", incident=incident))
    await deliver(context.bot, [apology], str(chat.id), default_thread_id=thread_id)
