"""The staff supergroup side of the hand-off: tickets' forum topics, photos, re-notification, blocked users.

The core (bot/handoff_feature.py) leaves every ticket message for the staff chat in its `outbox` table,
written in the same transaction as the ticket's change. Here they are posted, oldest first, each in its
ticket's forum topic: the topic is created (named "T-2026-000012 · 비밀번호") when the ticket has none,
and recreated with the ticket's context when staff deleted it. A group without topics gets plain
messages, replies to the ticket's first one. Where each message went is reported back to the core, so
that staff messages in the topic, or replies to any of the ticket's messages, reach the user. A row is
marked sent only after Telegram accepted it, so a crash (even kill -9) repeats at most one message and
loses none.

Also here: photos in an open ticket (both ways; the rest of the adapter answers photos with a hint), the
re-notification of unclaimed tickets, and telling staff when a user has blocked the bot.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from telegram import ReplyParameters, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes, MessageHandler, TypeHandler, filters

from bot.helpdesk import Helpdesk
from bot.types import Document, Reply
from handlers import convert, outbound, updates

log = logging.getLogger("helpdesk.telegram.staff")

DRAIN_INTERVAL_SECONDS = 2.0  # re-notifications, and a safety net: the queue is also drained after every update
MAX_PHOTO_BYTES = 5_000_000
# Telegram's words for a forum topic that is gone (deleted, or never existed in this chat).
_TOPIC_GONE = ("thread not found", "topic_deleted", "topic_id_invalid", "topic not found")
_NO_TOPICS = ("not a forum", "chat_not_forum", "not enough rights", "topics are disabled", "method is available only")


class StaffDesk:
    """Posts the staff chat's outbox; one at a time (an asyncio lock), from any task."""

    def __init__(self, app, hd: Helpdesk) -> None:
        self.app = app
        self.hd = hd
        self.desk = hd.feature("handoff")
        self.chat_id = hd.config.staff_chat_id
        self._lock = asyncio.Lock()

    @property
    def bot(self):
        return self.app.bot

    async def drain(self) -> int:
        """Send what waits for the staff chat; returns how many rows went out."""
        if self._lock.locked():
            return 0  # the running drain picks up what was just added
        sent = 0
        async with self._lock:
            while rows := self.desk.tickets.staff_pending():
                for row_id, ticket_id, reply in rows:
                    try:
                        await self._post(ticket_id, reply)
                    except Forbidden as exc:  # the bot was removed from the staff group: keep the rows
                        log.error("cannot post in the staff chat %s: %s", self.chat_id, exc.message)
                        return sent
                    except BadRequest as exc:  # refused for good (e.g. bad rights): do not block the queue
                        log.error("staff chat refused a ticket message: %s", exc.message)
                    self.desk.tickets.staff_sent(row_id)
                    sent += 1
        return sent

    async def _post(self, ticket_id: int, reply: Reply) -> None:
        ref = self.desk.tickets.get(ticket_id).ref
        is_context = "ticket:context" in reply.tags
        thread = await self._topic(ref, post_context=not is_context)
        try:
            message_ids = await self._send_in_ticket(ref, reply, thread)
        except BadRequest as exc:
            if not _matches(exc, _TOPIC_GONE):
                raise
            log.info("the topic of %s is gone (%s): recreating it", ref, exc.message)
            self.desk.topic_lost(ref)
            thread = await self._topic(ref, post_context=not is_context)
            message_ids = await self._send_in_ticket(ref, reply, thread)
        if "ticket:closed" in reply.tags and thread is not None:
            try:
                await outbound.retrying(lambda: self.bot.close_forum_topic(self.chat_id, thread))
            except TelegramError as exc:
                log.info("could not close the topic of %s: %s", ref, exc.message)
        log.debug("posted %d message(s) of %s", len(message_ids), ref)

    async def _send_in_ticket(self, ref: str, reply: Reply, thread: int | None) -> list[int]:
        ticket = self.desk.tickets.find(ref)
        reply_to = ticket.staff_message_id if ticket.topic_mode == "plain" and "ticket:context" not in reply.tags \
            else None
        message_ids = await self._send(replace(reply, thread_id=thread, reply_to_message_id=reply_to), thread)
        for message_id in message_ids:
            self.desk.record_staff_message(ref, self.chat_id, thread, message_id,
                                           mode="" if thread is not None else "plain")
        return message_ids

    async def _topic(self, ref: str, post_context: bool) -> int | None:
        """The ticket's forum topic (created now if it has none); None in a group without topics."""
        ticket = self.desk.tickets.find(ref)
        if ticket.thread_id is not None:
            return ticket.thread_id
        if ticket.topic_mode != "plain":
            try:
                topic = await outbound.retrying(
                    lambda: self.bot.create_forum_topic(self.chat_id, self.desk.topic_name(ticket)))
            except BadRequest as exc:
                if not _matches(exc, _NO_TOPICS):
                    raise
                log.info("the staff chat has no forum topics (%s): plain messages", exc.message)
                self.desk.record_staff_message(ref, self.chat_id, None, None, mode="plain")
            else:
                self.desk.record_staff_message(ref, self.chat_id, topic.message_thread_id, None)
                if post_context:
                    await self._send_in_ticket(ref, self.desk.context_reply_for(ref), topic.message_thread_id)
                return topic.message_thread_id
        ticket = self.desk.tickets.find(ref)
        if post_context and ticket.staff_message_id is None:
            await self._send_in_ticket(ref, self.desk.context_reply_for(ref), None)
        return None

    async def _send(self, reply: Reply, thread: int | None) -> list[int]:
        """Send one reply; a photo as a photo. Raises BadRequest for a missing topic, Forbidden if removed."""
        document = reply.document
        if document is not None and _is_image(document):
            reply_to = None if reply.reply_to_message_id is None else ReplyParameters(
                reply.reply_to_message_id, allow_sending_without_reply=True)
            caption = reply.text if convert.utf16_len(reply.text) <= 1000 else None
            message = await outbound.retrying(lambda: self.bot.send_photo(
                self.chat_id, photo=document.content, caption=caption, parse_mode="HTML" if caption else None,
                message_thread_id=thread, reply_markup=convert.keyboard(reply.buttons), reply_parameters=reply_to))
            return [message.message_id]
        ids: list[int] = []
        for part in convert.parts(reply):
            message = await outbound.retrying(lambda part=part: part.send(self.bot, self.chat_id, thread))
            ids.append(message.message_id)
        return ids

    # -- hooks --------------------------------------------------------------------------------------------
    def user_blocked(self, chat_id: str) -> None:
        """A user's chat answered 403: staff learn it in the ticket's topic."""
        self.desk.queue_for_staff(self.desk.user_unreachable(chat_id))
        self.soon()

    def soon(self) -> None:
        """Drain in the background (from synchronous code on the event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.create_task(self.drain())


def _matches(exc: TelegramError, words: tuple[str, ...]) -> bool:
    message = exc.message.lower()
    return any(word in message for word in words)


def _is_image(document: Document) -> bool:
    return document.mime_type.startswith("image/") and document.filename.lower().endswith(
        (".jpg", ".jpeg", ".png", ".webp"))


# -- the Telegram handlers ---------------------------------------------------------------------------------

def setup(app, hd: Helpdesk) -> None:
    """Registered in handlers/app.py EXTENSIONS: handlers, jobs and the blocked-user hook of the hand-off."""
    if hd.feature("handoff") is None or not hd.config.staff_chat_id:
        return
    staff = StaffDesk(app, hd)
    app.bot_data["staff_desk"] = staff
    policy = outbound.policy_for(app.bot)
    previous = policy.on_blocked

    def on_blocked(chat_id: str, reason: str) -> None:
        if previous is not None:
            previous(chat_id, reason)
        staff.user_blocked(chat_id)

    policy.on_blocked = on_blocked
    # Photos of an open ticket, before the adapter's own answer to photos (group 0) sees them.
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.PHOTO, on_photo), group=-1)
    # After every update: post what it left for the staff chat.
    app.add_handler(TypeHandler(Update, after_update), group=1)
    app.job_queue.run_repeating(_drain_job, interval=DRAIN_INTERVAL_SECONDS, first=0.5, name="staff-desk")


def _staff(context: ContextTypes.DEFAULT_TYPE) -> StaffDesk:
    return context.application.bot_data["staff_desk"]


async def after_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    # The update itself was handled: a failure here is the staff chat's, not the user's (no apology; the
    # rows stay queued for the job's next run).
    try:
        await _staff(context).drain()
    except Exception:
        log.exception("staff chat delivery failed")


async def _drain_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    staff = _staff(context)
    try:
        staff.desk.queue_notifications()  # one indexed query: unclaimed tickets due to be announced again
        await staff.drain()
    except Exception:  # the next run tries again; a bad row must not stop the job
        log.exception("staff chat delivery failed")


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo in an open ticket (from its user, or from staff in its topic) is relayed as an image."""
    staff = _staff(context)
    message = update.effective_message
    probe = convert.text_inbound(update, context.bot.username)
    if staff.desk.ticket_for(probe) is None:
        return  # not part of a ticket: the adapter's usual answer
    photo = message.photo[-1]  # the largest size
    if photo.file_size is not None and photo.file_size > MAX_PHOTO_BYTES:
        return
    content = b""
    runtime = context.application.bot_data["runtime"]
    if not runtime.inbox.is_planned(update.update_id):
        file = await outbound.retrying(lambda: context.bot.get_file(photo.file_id))
        content = bytes(await outbound.retrying(file.download_as_bytearray))
    inbound = replace(probe, document=Document(f"photo_{message.message_id}.jpg", content, "image/jpeg"))
    await updates.respond(update, context, lambda: runtime.hd.handle(inbound))
    await after_update(update, context)
    raise ApplicationHandlerStop
