"""The durable update inbox and the loop that fills it.

PTB's own Updater confirms an update's offset to Telegram before the update is handled, so a crash in
between loses it. Here every update is written to SQLite (`tg_inbox`) before the next getUpdates call
confirms it (or before the webhook answers 200), the core's state change and the replies it produced
are stored in one transaction (`tg_replies`), each sent part is recorded, and what is not done is
replayed at start. A reply is repeated only if the process died between sending it and recording it.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from bot.clock import to_iso
from bot.store import Store
from bot.types import Reply
from handlers.convert import chat_key, reply_from_json, reply_to_json
from handlers.outbound import retry_after_seconds

log = logging.getLogger("helpdesk.telegram")
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
KEEP_HANDLED = timedelta(days=2)  # Telegram keeps unconfirmed updates for 24 hours; dedup needs longer
DONE = 10**9  # "all parts sent" in a progress list


@dataclass
class Plan:
    """An update's replies and how far each got; `log` records further progress."""

    replies: list[Reply]
    progress: list[int]
    log: "UpdateLog"


class UpdateLog:
    """Records the parts sent for one update's replies (the outbound SentLog protocol)."""

    def __init__(self, inbox: "Inbox", update_id: int) -> None:
        self.inbox, self.update_id = inbox, update_id

    def part_sent(self, index: int, parts_sent: int, message_id: int, last: bool) -> None:
        # One statement per part; the last one also closes the reply and drops its text (personal data).
        self.inbox.conn.execute(
            "UPDATE tg_replies SET parts_sent = ?, updated_at = ?, "
            "message_ids = message_ids || CASE message_ids WHEN '' THEN '' ELSE ',' END || ?, "
            "state = CASE WHEN ? THEN 'sent' ELSE state END, payload = CASE WHEN ? THEN NULL ELSE payload END "
            "WHERE update_id = ? AND idx = ?",
            [parts_sent, self.inbox.now_iso(), str(message_id), last, last, self.update_id, index],
        )

    def finished(self, index: int, state: str) -> None:
        self.inbox.conn.execute(
            "UPDATE tg_replies SET state = ?, payload = NULL, updated_at = ? "
            "WHERE update_id = ? AND idx = ? AND state = 'pending'",
            [state, self.inbox.now_iso(), self.update_id, index],
        )


class Inbox:
    """tg_inbox, tg_replies and tg_blocked, on the core's connection (used from the one event-loop thread)."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self.store = store
        self.conn = store.db.conn
        self.now = now

    def now_iso(self) -> str:
        return to_iso(self.now())

    def record(self, updates: list[Update]) -> list[Update]:
        """Write updates not seen before, in one transaction; returns those (Telegram may resend some)."""
        if not updates:
            return []
        with self.store.transaction():
            ids = [u.update_id for u in updates]
            known = {row[0] for row in self.conn.execute(
                f"SELECT update_id FROM tg_inbox WHERE update_id IN ({','.join('?' * len(ids))})", ids)}
            fresh = [u for u in updates if u.update_id not in known]
            now = self.now_iso()
            self.conn.executemany(
                "INSERT OR IGNORE INTO tg_inbox (update_id, chat_key, payload, received_at) VALUES (?, ?, ?, ?)",
                [(u.update_id, chat_key(u), u.to_json(), now) for u in fresh],
            )
        return fresh

    def pending(self, bot) -> list[Update]:
        """Updates recorded but not handled, oldest first (replayed at start)."""
        rows = self.conn.execute(
            "SELECT payload FROM tg_inbox WHERE state IN ('new', 'planned') ORDER BY update_id").fetchall()
        return [Update.de_json(json.loads(row[0]), bot) for row in rows]

    def is_planned(self, update_id: int) -> bool:
        row = self.conn.execute("SELECT state FROM tg_inbox WHERE update_id = ?", [update_id]).fetchone()
        return row is not None and row[0] != "new"

    def plan(self, update_id: int, compute: Callable[[], list[Reply]]) -> Plan:
        """The update's replies: computed now, together with the core's state change, or as stored before."""
        if not self.is_planned(update_id):
            with self.store.transaction():
                replies = compute()
                now = self.now_iso()
                self.conn.executemany(
                    "INSERT OR REPLACE INTO tg_replies (update_id, idx, chat_id, payload, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(update_id, i, r.chat_id or "", reply_to_json(r), now) for i, r in enumerate(replies)],
                )
                self.conn.execute(
                    "INSERT INTO tg_inbox (update_id, state, received_at) VALUES (?, 'planned', ?) "
                    "ON CONFLICT(update_id) DO UPDATE SET state = 'planned'", [update_id, now])
            return Plan(list(replies), [0] * len(replies), UpdateLog(self, update_id))
        replies, progress = [], []
        for payload, parts_sent, state in self.conn.execute(
                "SELECT payload, parts_sent, state FROM tg_replies WHERE update_id = ? ORDER BY idx", [update_id]):
            replies.append(reply_from_json(payload) if payload else Reply())
            progress.append(parts_sent if state == "pending" else DONE)
        return Plan(replies, progress, UpdateLog(self, update_id))

    def finish(self, update_id: int) -> None:
        """Handled: its payload (personal data) goes; the id stays a while so a resent update is ignored."""
        self.conn.execute(
            "UPDATE tg_inbox SET state = 'done', payload = NULL, handled_at = ? "
            "WHERE update_id = ? AND state IN ('new', 'planned')", [self.now_iso(), update_id])

    def fail(self, update_id: int, incident: str) -> None:
        """Handling raised: never replayed (it would fail again); the incident id ties it to the log."""
        with self.store.transaction():
            self.conn.execute(
                "UPDATE tg_inbox SET state = 'failed', payload = NULL, incident = ?, handled_at = ? "
                "WHERE update_id = ?", [incident, self.now_iso(), update_id])
            self.conn.execute(
                "UPDATE tg_replies SET state = 'failed', payload = NULL WHERE update_id = ? AND state = 'pending'",
                [update_id])

    def prune(self) -> int:
        """Forget handled updates older than KEEP_HANDLED (the newest one stays)."""
        cutoff = to_iso(self.now() - KEEP_HANDLED)
        with self.store.transaction():
            cursor = self.conn.execute(
                "DELETE FROM tg_inbox WHERE state IN ('done', 'failed') AND received_at < ? "
                "AND update_id < (SELECT MAX(update_id) FROM tg_inbox)", [cutoff])
            self.conn.execute(
                "DELETE FROM tg_replies WHERE update_id NOT IN (SELECT update_id FROM tg_inbox)")
        return cursor.rowcount

    # -- chats that blocked the bot ---------------------------------------------------------------------
    def block(self, chat_id: str, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO tg_blocked (chat_id, blocked_at, reason) VALUES (?, ?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET blocked_at = excluded.blocked_at, reason = excluded.reason",
            [chat_id, self.now_iso(), reason[:200]])

    def unblock(self, chat_id: str) -> None:
        self.conn.execute("DELETE FROM tg_blocked WHERE chat_id = ?", [chat_id])

    def is_blocked(self, chat_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM tg_blocked WHERE chat_id = ?", [chat_id]).fetchone() is not None


class Intake:
    """Feeds recorded updates to the application: one chat at a time and in order, many chats at once."""

    def __init__(self, app, inbox: Inbox, max_pending: int = 2000) -> None:
        self.app = app
        self.inbox = inbox
        self.max_pending = max_pending
        self._queues: dict[str, deque[Update]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()

    def accept(self, updates: list[Update]) -> None:
        """Record updates durably, then queue the new ones for their chats."""
        for update in self.inbox.record(updates):
            self._queue(update)

    def replay(self) -> int:
        """Queue what the last run left unhandled; returns how many."""
        updates = self.inbox.pending(self.app.bot)
        for update in updates:
            self._queue(update)
        return len(updates)

    def _queue(self, update: Update) -> None:
        key = chat_key(update)
        self._pending += 1
        if self._pending >= self.max_pending:
            self._room.clear()
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        queue = self._queues[key] = deque([update])
        task = asyncio.get_running_loop().create_task(self._work(key, queue), name=f"chat:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, key: str, queue: deque[Update]) -> None:
        try:
            while queue:
                update = queue[0]
                await self.app.process_update(update)  # errors go to the error handler, which marks them
                self.inbox.finish(update.update_id)
                queue.popleft()
                self._pending -= 1
                if self._pending < self.max_pending:
                    self._room.set()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def poll(self, bot, poll_seconds: int) -> None:
        """Long-poll getUpdates until cancelled. An update is recorded before the next call confirms it."""
        offset: int | None = None  # the first call returns whatever Telegram still holds unconfirmed
        backoff = 0.25
        while True:
            await self._room.wait()
            try:
                updates = await bot.get_updates(offset=offset, timeout=poll_seconds, limit=100,
                                                allowed_updates=ALLOWED_UPDATES)
            except InvalidToken:
                raise
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
            except Conflict as exc:
                delay = 5.0
                log.error("getUpdates conflict (another instance, or a webhook is set?): %s", exc.message)
            except TelegramError as exc:  # timeouts, 5xx, unreadable answers
                delay, backoff = backoff, min(backoff * 2, 30.0)
                log.warning("getUpdates failed (%s); retrying in %.2f s", exc, delay)
            else:
                backoff = 0.25
                if updates:
                    self.accept(updates)
                    offset = updates[-1].update_id + 1
                continue
            await asyncio.sleep(delay)

    async def drain(self, grace: float) -> None:
        """Let chats finish what they are doing for up to `grace` seconds, then stop them (the inbox keeps it)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class InboxQueue(asyncio.Queue):
    """The webhook's update queue: `put` records the update before the webhook answers Telegram 200."""

    def __init__(self, intake: Intake) -> None:
        super().__init__()
        self.intake = intake

    async def put(self, item) -> None:
        self.put_nowait(item)

    def put_nowait(self, item) -> None:
        if isinstance(item, Update):
            self.intake.accept([item])
