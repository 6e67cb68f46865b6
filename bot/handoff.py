"""Tickets for staff: open, relay, claim, release, close, transcript, list; office hours; console outbox.

The ticket model and its storage live here; the conversation around it (buttons, flows, who may do
what) lives in `bot/handoff_feature.py`. Everything is in SQLite, so a restart loses no ticket.
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from bot.clock import SEOUL, Clock, parse_instant, to_iso
from bot.store import Store
from bot.types import Button, Document, Reply

_REF = re.compile(r"^\s*(?:T-?(?:\d{4}-)?)?0*(\d{1,9})\s*$", re.IGNORECASE)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def ticket_ref(ticket_id: int, opened: datetime) -> str:
    """The reference people see: T-2026-000012."""
    return f"T-{opened.astimezone(SEOUL).year}-{ticket_id:06d}"


def parse_ref(text: str) -> int | None:
    """"T-2026-000012", "T-12", "000012" or "12" -> 12; None if it is not a ticket reference."""
    match = _REF.match(text or "")
    return int(match.group(1)) if match else None


def mask_name(name: str) -> str:
    """What users see of a staff member's name: 김철수 -> 김○○, Minji Kim -> M○○."""
    name = "".join((name or "").split())
    if not name:
        return ""
    if "\uac00" <= name[0] <= "\ud7a3":
        return name[0] + "○" * max(1, len(name) - 1)
    return name[0] + "○○"


# -- office hours ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OfficeHours:
    """When staff answer: a daily window on some weekdays, minus holidays (Asia/Seoul)."""

    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    holidays: frozenset[date]

    @classmethod
    def from_config(cls, config: Any) -> "OfficeHours":
        """Parse `office_hours` ("09:00-18:00"), `office_days` (mon..sun) and `holidays` (ISO dates)."""
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", config.office_hours)
        if not match:
            raise ValueError(f"office_hours must look like 09:00-18:00, got {config.office_hours!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 < 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
            raise ValueError(f"office_hours must be a window within one day, got {config.office_hours!r}")
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        days = set()
        for name in config.office_days:
            key = name.strip().lower()[:3]
            if key not in DAY_NAMES:
                raise ValueError(f"office_days: unknown day {name!r} (use mon, tue, ... sun)")
            days.add(DAY_NAMES.index(key))
        holidays = set()
        for raw in config.holidays:
            try:
                holidays.add(date.fromisoformat(raw.strip()))
            except ValueError as exc:
                raise ValueError(f"holidays: {raw!r} is not an ISO date (2026-12-25)") from exc
        return cls(time(h1, m1), end, frozenset(days), frozenset(holidays))

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(SEOUL)
        return self.is_workday(local.date()) and self.start <= local.time().replace(tzinfo=None) < self.end

    def next_open(self, moment: datetime) -> datetime | None:
        """The next moment staff are in (now, if they are); None if no workday within a year."""
        local = moment.astimezone(SEOUL)
        if self.is_open(local):
            return local
        day = local.date()
        if self.is_workday(day) and local.time().replace(tzinfo=None) < self.start:
            return datetime.combine(day, self.start, SEOUL)
        for _ in range(366):
            day += timedelta(days=1)
            if self.is_workday(day):
                return datetime.combine(day, self.start, SEOUL)
        return None


# -- the model ------------------------------------------------------------------------------------

@dataclass
class Ticket:
    """One hand-off to staff."""

    id: int
    ref: str
    chat_id: str
    channel: str
    user_id: str
    user_name: str
    category: str
    summary: str
    context: str
    status: str
    opened_at: str
    staff_chat_id: str
    thread_id: int | None
    topic_mode: str
    staff_message_id: int | None
    claimed_by: str | None
    claimed_name: str
    claimed_at: str | None
    first_staff_reply_at: str | None
    last_notified_at: str | None
    notify_count: int
    unreachable_at: str | None
    closed_at: str | None
    closed_by: str | None
    satisfaction: int | None
    rated_at: str | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def opened(self) -> datetime:
        return parse_instant(self.opened_at)


@dataclass(frozen=True)
class TicketMessage:
    """One line of a ticket's transcript."""

    direction: str  # user | staff | system
    author: str
    kind: str  # text | document | photo | event
    text: str
    file_name: str | None
    at: str


_COLUMNS = [f for f in Ticket.__dataclass_fields__]


class TicketStore:
    """Ticket storage: every write is one SQL statement or one transaction."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    @property
    def db(self):
        return self.store.db

    def _now(self) -> str:
        return to_iso(self.clock.now())

    def _one(self, where: str, params: list) -> Ticket | None:
        row = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM tickets WHERE {where}", params).fetchone()
        return Ticket(*row) if row else None

    def _many(self, where: str, params: list) -> list[Ticket]:
        rows = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM tickets WHERE {where}", params).fetchall()
        return [Ticket(*row) for row in rows]

    # -- reading ----------------------------------------------------------------------------------
    def get(self, ticket_id: int) -> Ticket | None:
        return self._one("id = ?", [ticket_id])

    def find(self, text: str) -> Ticket | None:
        """A ticket by reference ("T-2026-000012", "12")."""
        ticket_id = parse_ref(text)
        return self.get(ticket_id) if ticket_id is not None else None

    def open_for_chat(self, chat_id: str) -> Ticket | None:
        """The user's open ticket, if any."""
        return self._one("chat_id = ? AND status = 'open' ORDER BY id DESC LIMIT 1", [chat_id])

    def last_for_chat(self, chat_id: str) -> Ticket | None:
        return self._one("chat_id = ? ORDER BY id DESC LIMIT 1", [chat_id])

    def by_thread(self, staff_chat_id: str, thread_id: int) -> Ticket | None:
        """The ticket whose forum topic this is (the newest, if a thread id was ever reused)."""
        return self._one("staff_chat_id = ? AND thread_id = ? ORDER BY id DESC LIMIT 1", [staff_chat_id, thread_id])

    def by_staff_message(self, staff_chat_id: str, message_id: int) -> Ticket | None:
        """The ticket a message the bot posted in the staff chat belongs to."""
        row = self.db.execute(
            "SELECT ticket_id FROM ticket_links WHERE chat_id = ? AND message_id = ?", [staff_chat_id, message_id]
        ).fetchone()
        return self.get(int(row[0])) if row else None

    def list_open(self) -> list[Ticket]:
        return self._many("status = 'open' ORDER BY id", [])

    def transcript(self, ticket_id: int) -> list[TicketMessage]:
        rows = self.db.execute(
            "SELECT direction, author, kind, text, file_name, at FROM ticket_messages WHERE ticket_id = ? ORDER BY id",
            [ticket_id],
        ).fetchall()
        return [TicketMessage(*row) for row in rows]

    # -- writing ----------------------------------------------------------------------------------
    def open(self, *, chat_id: str, channel: str, user_id: str, user_name: str, category: str,
             context: str, staff_chat_id: str) -> Ticket:
        """A new open ticket with its reference; the transcript starts with an 'opened' event."""
        now = self.clock.now()
        with self.store.transaction():
            cursor = self.db.execute(
                "INSERT INTO tickets (ref, chat_id, channel, user_id, user_name, category, context, opened_at, "
                "staff_chat_id) VALUES ('', ?, ?, ?, ?, ?, ?, ?, ?)",
                [chat_id, channel, user_id, user_name, category, context, to_iso(now), staff_chat_id],
            )
            ticket_id = int(cursor.lastrowid)
            self.db.execute("UPDATE tickets SET ref = ? WHERE id = ?", [ticket_ref(ticket_id, now), ticket_id])
            self._add(ticket_id, "system", "", "event", "opened")
        ticket = self.get(ticket_id)
        assert ticket is not None
        return ticket

    def _add(self, ticket_id: int, direction: str, author: str, kind: str, text: str,
             file_name: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO ticket_messages (ticket_id, direction, author, kind, text, file_name, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [ticket_id, direction, author, kind, text, file_name, self._now()],
        )

    def add_message(self, ticket: Ticket, direction: str, text: str, *, author: str = "", kind: str = "text",
                    file_name: str | None = None) -> None:
        """Append to the transcript; the first staff message sets the first-reply time."""
        with self.store.transaction():
            self._add(ticket.id, direction, author, kind, text, file_name)
            if direction == "staff":
                self.db.execute(
                    "UPDATE tickets SET first_staff_reply_at = COALESCE(first_staff_reply_at, ?) WHERE id = ?",
                    [self._now(), ticket.id],
                )

    def set_summary(self, ticket: Ticket, summary: str) -> None:
        self.db.execute("UPDATE tickets SET summary = ? WHERE id = ?", [summary, ticket.id])

    def record_staff_message(self, ticket: Ticket, chat_id: str, thread_id: int | None,
                             message_id: int | None, mode: str = "") -> None:
        """The adapter posted a message of this ticket in the staff chat: remember where (topic, reply target)."""
        with self.store.transaction():
            if thread_id is not None:
                self.db.execute(
                    "UPDATE tickets SET thread_id = ?, topic_mode = 'forum' WHERE id = ?", [thread_id, ticket.id]
                )
            elif mode:
                self.db.execute("UPDATE tickets SET topic_mode = ? WHERE id = ?", [mode, ticket.id])
            if message_id is not None:
                self.db.execute(
                    "UPDATE tickets SET staff_message_id = COALESCE(staff_message_id, ?) WHERE id = ?",
                    [message_id, ticket.id],
                )
                self.db.execute(
                    "INSERT OR REPLACE INTO ticket_links (chat_id, message_id, ticket_id) VALUES (?, ?, ?)",
                    [chat_id, message_id, ticket.id],
                )

    def forget_topic(self, ticket: Ticket) -> None:
        """The forum topic is gone (deleted by staff): the next message recreates it."""
        self.db.execute("UPDATE tickets SET thread_id = NULL, staff_message_id = NULL WHERE id = ?", [ticket.id])

    def claim(self, ticket: Ticket, staff_id: str, name: str) -> bool:
        """Take the ticket; False if someone else has it or it is closed."""
        cursor = self.db.execute(
            "UPDATE tickets SET claimed_by = ?, claimed_name = ?, claimed_at = ? "
            "WHERE id = ? AND status = 'open' AND (claimed_by IS NULL OR claimed_by = ?)",
            [staff_id, name, self._now(), ticket.id, staff_id],
        )
        if cursor.rowcount:
            self._add(ticket.id, "system", name, "event", "claimed")
        return bool(cursor.rowcount)

    def release(self, ticket: Ticket) -> bool:
        cursor = self.db.execute(
            "UPDATE tickets SET claimed_by = NULL, claimed_name = '', claimed_at = NULL, last_notified_at = ? "
            "WHERE id = ? AND status = 'open' AND claimed_by IS NOT NULL",
            [self._now(), ticket.id],
        )
        if cursor.rowcount:
            self._add(ticket.id, "system", ticket.claimed_name, "event", "released")
        return bool(cursor.rowcount)

    def close(self, ticket: Ticket, by: str, author: str = "") -> bool:
        """Close once; False if it was already closed."""
        cursor = self.db.execute(
            "UPDATE tickets SET status = 'closed', closed_at = ?, closed_by = ? WHERE id = ? AND status = 'open'",
            [self._now(), by, ticket.id],
        )
        if cursor.rowcount:
            self._add(ticket.id, "system", author, "event", f"closed by {by}")
        return bool(cursor.rowcount)

    def rate(self, ticket: Ticket, score: int) -> None:
        self.db.execute("UPDATE tickets SET satisfaction = ?, rated_at = ? WHERE id = ?", [score, self._now(), ticket.id])

    def mark_unreachable(self, ticket: Ticket) -> bool:
        """The user's chat refused a message (bot blocked); True the first time."""
        cursor = self.db.execute(
            "UPDATE tickets SET unreachable_at = ? WHERE id = ? AND unreachable_at IS NULL", [self._now(), ticket.id]
        )
        return bool(cursor.rowcount)

    def due_renotify(self, now: datetime, minutes: int) -> list[Ticket]:
        """Open, unclaimed tickets not announced for `minutes`."""
        cutoff = to_iso(now - timedelta(minutes=minutes))
        return self._many(
            "status = 'open' AND claimed_by IS NULL AND COALESCE(last_notified_at, opened_at) <= ? ORDER BY id",
            [cutoff],
        )

    def mark_notified(self, ticket: Ticket) -> None:
        self.db.execute(
            "UPDATE tickets SET last_notified_at = ?, notify_count = notify_count + 1 WHERE id = ?",
            [self._now(), ticket.id],
        )

    # -- the outbox (console chats in other processes) --------------------------------------------
    def outbox_put(self, chat_id: str, reply: Reply) -> None:
        doc = reply.document
        self.db.execute(
            "INSERT INTO outbox (chat_id, text, buttons, file_name, file_content, file_mime, tags, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [chat_id, reply.text, _buttons_json(reply),
             doc.filename if doc else None, doc.content if doc else None, doc.mime_type if doc else None,
             json.dumps(list(reply.tags)), self._now()],
        )

    def staff_put(self, ticket: Ticket, reply: Reply) -> None:
        """Queue a ticket's message for a Telegram staff chat (posted by handlers/staff.py in its topic)."""
        doc = reply.document
        self.db.execute(
            "INSERT INTO ticket_outbox (ticket_id, chat_id, text, buttons, file_name, file_content, file_mime, "
            "tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ticket.id, reply.chat_id or ticket.staff_chat_id, reply.text, _buttons_json(reply),
             doc.filename if doc else None, doc.content if doc else None, doc.mime_type if doc else None,
             json.dumps(list(reply.tags)), self._now()],
        )

    def staff_pending(self, limit: int = 50) -> list[tuple[int, int, Reply]]:
        """Queued staff-chat messages, oldest first, as (row id, ticket id, reply); kept until `staff_sent`."""
        rows = self.db.execute(
            "SELECT id, ticket_id, chat_id, text, buttons, file_name, file_content, file_mime, tags "
            "FROM ticket_outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", [limit]
        ).fetchall()
        return [(row[0], row[1], _outbox_reply(*row[2:])) for row in rows]

    def staff_sent(self, row_id: int) -> None:
        self.db.execute("UPDATE ticket_outbox SET sent_at = ? WHERE id = ?", [self._now(), row_id])

    def outbox_take(self, chat_id: str) -> list[Reply]:
        """Undelivered replies for a chat, oldest first; they are marked delivered."""
        with self.store.transaction():
            rows = self.db.execute(
                "SELECT id, text, buttons, file_name, file_content, file_mime, tags FROM outbox "
                "WHERE chat_id = ? AND delivered_at IS NULL ORDER BY id", [chat_id]
            ).fetchall()
            if rows:
                self.db.execute(
                    f"UPDATE outbox SET delivered_at = ? WHERE id IN ({', '.join('?' * len(rows))})",
                    [self._now(), *[r[0] for r in rows]],
                )
        return [_outbox_reply(chat_id, *row[1:]) for row in rows]


def _buttons_json(reply: Reply) -> str:
    return json.dumps([[[b.label, b.action] for b in row] for row in reply.buttons], ensure_ascii=False)


def _outbox_reply(chat_id: str, text: str, buttons: str, file_name: str | None, content: bytes | None,
                  mime: str | None, tags: str) -> Reply:
    rows = tuple(tuple(Button(label, action) for label, action in row) for row in json.loads(buttons))
    document = Document(file_name, bytes(content or b""), mime or "application/octet-stream") if file_name else None
    return Reply(text, rows, document=document, chat_id=chat_id, tags=tuple(json.loads(tags)))


# -- statistics -----------------------------------------------------------------------------------

def ticket_stats(store: Store, since: str) -> dict:
    """Tickets opened/closed since a day (ISO date), median minutes to the first staff reply, satisfaction."""
    db = store.db
    opened = db.execute("SELECT COUNT(*) FROM tickets WHERE substr(opened_at, 1, 10) >= ?", [since]).fetchone()[0]
    closed = db.execute(
        "SELECT COUNT(*) FROM tickets WHERE closed_at IS NOT NULL AND substr(closed_at, 1, 10) >= ?", [since]
    ).fetchone()[0]
    still_open = db.execute("SELECT COUNT(*) FROM tickets WHERE status = 'open'").fetchone()[0]
    waits = [
        (parse_instant(first) - parse_instant(start)).total_seconds() / 60
        for start, first in db.execute(
            "SELECT opened_at, first_staff_reply_at FROM tickets "
            "WHERE first_staff_reply_at IS NOT NULL AND substr(opened_at, 1, 10) >= ?", [since]
        ).fetchall()
    ]
    scores = [int(r[0]) for r in db.execute(
        "SELECT satisfaction FROM tickets WHERE satisfaction IS NOT NULL AND substr(opened_at, 1, 10) >= ?", [since]
    ).fetchall()]
    return {
        "opened": int(opened),
        "closed": int(closed),
        "open_now": int(still_open),
        "median_first_reply_minutes": round(statistics.median(waits), 1) if waits else None,
        "satisfaction_count": len(scores),
        "satisfaction_avg": round(sum(scores) / len(scores), 2) if scores else None,
        "satisfaction": {str(n): scores.count(n) for n in range(1, 6)},
    }


def chunks(items: Iterable[Button], size: int) -> tuple[tuple[Button, ...], ...]:
    items = list(items)
    return tuple(tuple(items[i:i + size]) for i in range(0, len(items), size))
