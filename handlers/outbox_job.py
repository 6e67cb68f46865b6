"""Delivers the core's outbox to Telegram: replies queued outside any Telegram turn (a staff decision made
with the CLI, a reminder from a sweep) for Telegram chats. Terminal chats (`console:*`) fetch their own
rows through `Helpdesk.pending_for`; this job leaves them alone.

A row is marked delivered after Telegram took it (or refused it for good: blocked, bad request), so a
crash in between sends it again rather than losing it.
"""
from __future__ import annotations

import json
import logging

from bot.clock import to_iso
from bot.helpdesk import Helpdesk
from bot.types import Button, Document, Reply
from handlers.outbound import deliver

log = logging.getLogger("helpdesk.telegram")
INTERVAL_SECONDS = 3.0
BATCH = 50


def pending(hd: Helpdesk) -> list[tuple[int, Reply]]:
    """Undelivered outbox rows for Telegram chats, oldest first, as (row id, reply)."""
    rows = hd.store.db.execute(
        "SELECT id, chat_id, text, buttons, file_name, file_content, file_mime, tags FROM outbox "
        "WHERE delivered_at IS NULL AND chat_id NOT LIKE 'console:%' ORDER BY id LIMIT ?", [BATCH]).fetchall()
    out = []
    for row_id, chat_id, text, buttons, file_name, content, mime, tags in rows:
        markup = tuple(tuple(Button(label, action) for label, action in row) for row in json.loads(buttons))
        document = Document(file_name, bytes(content), mime or "application/octet-stream") if file_name else None
        out.append((row_id, Reply(text, markup, document=document, chat_id=chat_id, tags=tuple(json.loads(tags)))))
    return out


async def deliver_outbox(bot, hd: Helpdesk) -> int:
    """Send what is pending; returns how many rows were settled."""
    settled = 0
    for row_id, reply in pending(hd):
        result = await deliver(bot, [reply], reply.chat_id or "")
        if result.failed or result.blocked:
            log.warning("outbox row %d for chat %s not delivered (%s)", row_id, reply.chat_id,
                        "blocked" if result.blocked else result.failed[0][1])
        hd.store.db.execute("UPDATE outbox SET delivered_at = ? WHERE id = ?", [to_iso(hd.now()), row_id])
        settled += 1
    return settled


async def _job(context) -> None:
    try:
        await deliver_outbox(context.application.bot, context.job.data)
    except Exception:  # a bad row must not stop the job; the next run tries again
        log.exception("outbox delivery failed")


def schedule(application, hd: Helpdesk) -> None:
    application.job_queue.run_repeating(_job, interval=INTERVAL_SECONDS, first=1.0, data=hd, name="outbox")
