"""Sending the core's replies to Telegram: per-chat pacing, 429/5xx/timeouts retried, 403 recorded.

`deliver(bot, replies, default_chat_id)` is the one way replies leave the process (update handlers, the
error apology, and jobs such as reminders or staff hand-off). AIORateLimiter (set up in app.py) keeps the
overall rate; here each chat gets about one message a second, with short bursts.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol, Sequence, TypeVar

from telegram import Message
from telegram.error import (BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken, NetworkError,
                            RetryAfter, TelegramError)

from bot.privacy import mask_pii
from bot.types import Reply
from handlers.convert import Part, html_to_plain, parts

log = logging.getLogger("helpdesk.telegram")
T = TypeVar("T")
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class SentMessage:
    """A message Telegram accepted: which reply (index in the list) and part it was, and its id."""

    index: int
    part: int
    chat_id: str
    message_id: int
    thread_id: int | None = None


@dataclass
class DeliveryResult:
    """What happened to a list of replies."""

    sent: list[SentMessage] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # chats that blocked the bot (403): recorded, not retried
    failed: list[tuple[int, str]] = field(default_factory=list)  # (reply index, Telegram's error): refused (400)

    @property
    def ok(self) -> bool:
        return not self.blocked and not self.failed


class SentLog(Protocol):
    """Where delivery progress is recorded durably (the update inbox does this for update replies)."""

    def part_sent(self, index: int, parts_sent: int, message_id: int, last: bool) -> None:
        """A part went out; `last`: it was the reply's last part (the reply is sent)."""

    def finished(self, index: int, state: str) -> None:
        """The reply ended otherwise: "blocked", "failed", or "sent" with nothing (more) to send."""


class ChatPacer:
    """About `rate` messages a second to each chat, with bursts of up to `burst` (a token bucket per chat)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # chat -> (tokens, when counted)

    async def wait(self, chat_id: str) -> None:
        while (delay := self._take(chat_id)) > 0:
            await asyncio.sleep(delay)

    def _take(self, chat_id: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(chat_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[chat_id] = (tokens - 1, now)
            if len(self._buckets) > 10_000:
                self._forget_idle(now)
            return 0.0
        self._buckets[chat_id] = (tokens, now)
        return (1 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < full_after}


@dataclass
class Outbound:
    """The sending policy of one bot: pacing, and what to do when a chat has blocked the bot."""

    pacer: ChatPacer = field(default_factory=lambda: ChatPacer(1.0, 3))
    on_blocked: Callable[[str, str], None] | None = None  # (chat_id, Telegram's description)


_POLICIES: dict[int, Outbound] = {}


def install(bot, policy: Outbound) -> None:
    """Use `policy` for everything `deliver` sends through `bot` (app.py does this once)."""
    _POLICIES[id(bot)] = policy


def policy_for(bot) -> Outbound:
    return _POLICIES.setdefault(id(bot), Outbound())


async def deliver(bot, replies: Sequence[Reply], default_chat_id: str, *, default_thread_id: int | None = None,
                  progress: Sequence[int] | None = None, log_to: SentLog | None = None) -> DeliveryResult:
    """Send replies in order: each to `reply.chat_id or default_chat_id`, in its thread.

    `progress[i]` parts of reply i were already sent (a replay) and are skipped; `log_to` records each
    part as it is sent. Transient failures (429, 5xx, timeouts) are retried until they pass; a 403 marks
    the chat blocked and skips its remaining replies; a 400 is logged and the reply is skipped.
    """
    policy = policy_for(bot)
    result = DeliveryResult()
    for index, reply in enumerate(replies):
        chat_id = str(reply.chat_id or default_chat_id)
        thread_id = reply.thread_id if reply.chat_id else (reply.thread_id or default_thread_id)
        if chat_id in result.blocked:
            _finish(log_to, index, "blocked")
            continue
        done = progress[index] if progress and index < len(progress) else 0
        calls = parts(reply)
        state = "sent"
        for number, part in enumerate(calls[done:], start=done):
            try:
                message = await _send(bot, policy, part, chat_id, thread_id)
            except Forbidden as exc:
                state = "blocked"
                result.blocked.append(chat_id)
                log.info("chat %s blocked the bot: %s", chat_id, exc.message)
                if policy.on_blocked is not None:
                    policy.on_blocked(chat_id, exc.message)
                break
            except TelegramError as exc:
                state = "failed"
                result.failed.append((index, exc.message))
                log.error("Telegram refused reply %d to chat %s: %s", index, chat_id, mask_pii(exc.message))
                break
            result.sent.append(SentMessage(index, number, chat_id, message.message_id, thread_id))
            if log_to is not None:
                log_to.part_sent(index, number + 1, message.message_id, number == len(calls) - 1)
        if state != "sent" or done >= len(calls):  # it ended otherwise than by sending its last part now
            _finish(log_to, index, state)
    return result


def _finish(log_to: SentLog | None, index: int, state: str) -> None:
    if log_to is not None:
        log_to.finished(index, state)


async def _send(bot, policy: Outbound, part: Part, chat_id: str, thread_id: int | None) -> Message:
    async def attempt() -> Message:
        await policy.pacer.wait(chat_id)
        return await part.send(bot, chat_id, thread_id)

    try:
        return await retrying(attempt)
    except BadRequest as exc:
        if part.document is None and "parse entities" in exc.message.lower():
            # Our HTML was wrong (a bug to fix), but the user still gets the words.
            log.error("Telegram could not parse a reply's HTML (%s); sending it as plain text", exc.message)
            plain = Part(html_to_plain(part.text), None, part.markup, part.reply_to_message_id, plain=True)
            return await retrying(lambda: _paced(bot, policy, plain, chat_id, thread_id))
        raise
    except ChatMigrated as exc:  # a group became a supergroup: same chat, new id
        new_chat_id = str(exc.new_chat_id)
        return await retrying(lambda: _paced(bot, policy, part, new_chat_id, thread_id))


async def _paced(bot, policy: Outbound, part: Part, chat_id: str, thread_id: int | None) -> Message:
    await policy.pacer.wait(chat_id)
    return await part.send(bot, chat_id, thread_id)


async def retrying(call: Callable[[], Awaitable[T]]) -> T:
    """Run `call` until it succeeds or fails for good: 429 waits retry_after; 5xx and timeouts back off.

    Permanent errors (400, 401, 403, 409, chat migrated) are raised at once. Shutdown cancels the
    waiting task; an update whose reply was not sent then stays in the inbox for the next start.
    """
    backoff = 0.25
    while True:
        try:
            return await call()
        except (BadRequest, Forbidden, InvalidToken, Conflict, ChatMigrated):
            raise
        except RetryAfter as exc:
            delay = retry_after_seconds(exc) + 0.1
            log.warning("Telegram asked to slow down: waiting %.1f s", delay)
        except (NetworkError, TelegramError) as exc:  # timeouts, 5xx, unreadable answers
            delay = backoff
            backoff = min(backoff * 2, MAX_BACKOFF)
            log.warning("Bot API call failed (%s); retrying in %.2f s", mask_pii(str(exc)), delay)
        await asyncio.sleep(delay)


def retry_after_seconds(exc: RetryAfter) -> float:
    # `retry_after` as an int is deprecated in PTB 22.2 and warns; the timedelta behind it does not.
    value = getattr(exc, "_retry_after", None)
    return value.total_seconds() if value is not None else float(exc.retry_after)
