"""Expiry reminders over Telegram: the daily run of `helpdesk run`, the staff digest, and `helpdesk remind`.

The core says what is due and keeps the sending log (bot/reminders.py); this module paces the batch and
makes the Bot API calls. Per message: a free slot and the pace (overall rate, the adapter's per-chat pacer
and, when there is one, the application's AIORateLimiter, so users' answers keep their share), then
`claim`, one `sendMessage`, `settle`. The HTTP client of the reminders' Bot reports the moment a request's
body starts to go out (an httpcore trace), and that moment is written to the log (`mark_written`): it is
what tells, after a crash, a message that may have reached Telegram from one that cannot have.

The batch runs as a task of its own on the bot's event loop: selection runs in a worker thread on its own
database connection, and every send yields to the loop, so users' questions are answered meanwhile.
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import math
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, time as dtime
from typing import Any, Callable

import httpx
from telegram import Bot
from telegram.error import (BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken, NetworkError,
                            RetryAfter)
from telegram.ext import AIORateLimiter
from telegram.request import HTTPXRequest

from bot.clock import SEOUL
from bot.helpdesk import Helpdesk
from bot.reminders import (ReminderGroup, SendLog, SendResult, clock_time, digest_due, digest_replies,
                           due_reminders, group_reminders, in_quiet_hours, mark_digest_sent, render_reminder,
                           send_window_open)
from bot.render import to_plain
from bot.store import Store
from handlers import outbound
from handlers.app import file_base_url
from handlers.convert import Part, parts
from handlers.inbox import Inbox
from handlers.outbound import deliver, policy_for, retry_after_seconds

log = logging.getLogger("helpdesk.reminders")
PROGRESS_EVERY = 10.0  # seconds between progress lines in the log
MAX_FAILURES = 5  # per message and run, when the Bot API cannot be reached or answers 5xx
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never left
_TELEGRAM_CHAT = re.compile(r"^-?\d+$")


# -- knowing when a request has gone out ------------------------------------------------------------------

_TRACER: contextvars.ContextVar["_WriteTracer | None"] = contextvars.ContextVar("reminder_tracer", default=None)


class _WriteTracer:
    """httpcore trace events of one reminder's requests -> the sending log."""

    def __init__(self, send_log: SendLog, attempt: str) -> None:
        self.send_log, self.attempt = send_log, attempt
        self.delivered = False  # a part of the reminder was accepted: later refusals do not undo that

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        # Written as the body starts to go out: from this commit to the body's bytes entering the socket
        # nothing yields to the event loop (microseconds), whereas after the last write anyio yields once, and
        # a whole other task could run before a "complete" event. The headers alone make nothing happen.
        if event.endswith("send_request_body.started"):
            self.send_log.mark_written(self.attempt)
        elif event.endswith("receive_response_headers.complete"):
            status = info["return_value"][1]
            if 200 <= status < 300:
                self.delivered = True
            elif not self.delivered:
                self.send_log.mark_refused(self.attempt)


class _TracedTransport(httpx.AsyncHTTPTransport):
    """Lets the reminder being sent (a context variable of its task) follow its own request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tracer = _TRACER.get()
        if tracer is not None:
            request.extensions["trace"] = tracer
        return await super().handle_async_request(request)


def build_bot(hd: Helpdesk) -> Bot:
    """The reminders' Bot: the configured (or local fake) Bot API through a traced HTTP client, with the
    adapter's sending policy (per-chat pacer; 403s recorded in tg_blocked as `helpdesk run` records them)."""
    config = hd.config
    timeout = config.telegram_timeout_seconds
    pool = config.reminders.max_in_flight + 2
    transport = _TracedTransport(limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool))
    request = HTTPXRequest(connection_pool_size=pool, pool_timeout=timeout, connect_timeout=timeout,
                           read_timeout=timeout, write_timeout=timeout, httpx_kwargs={"transport": transport})
    kwargs = {}
    if config.telegram_base_url:
        kwargs["base_url"] = config.telegram_base_url
        kwargs["base_file_url"] = file_base_url(config)
    bot = Bot(config.telegram_token, request=request, **kwargs)
    outbound.install(bot, outbound.Outbound(outbound.ChatPacer(config.telegram_chat_rate, config.telegram_chat_burst),
                                            on_blocked=Inbox(hd.store, hd.now).block))
    return bot


# -- pacing -------------------------------------------------------------------------------------------------

class RatePacer:
    """The overall pace of a batch: a token bucket of `rate` per second with a small burst; a 429 pauses it."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, round(rate / 10))  # at 25/s no 1-second window exceeds ~28 (Telegram: ~30)
        self.clock = clock
        self._tokens = 1.0
        self._at = clock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def wait(self) -> None:
        while True:
            now = self.clock()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                self._at = self.clock()
                continue
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)


class InFlight:
    """Bot API calls in flight, capped at what the rate needs: rate x round trip, plus one, within
    [1, max_in_flight]: about 8 against Telegram (~0.25 s away) at 25/s, 2 against a server on this
    machine. The round trip is the fastest of the recent calls: slower ones were waiting for this
    process's own CPU, which more calls in flight would not cure."""

    def __init__(self, rate: float, maximum: int, window: int = 50) -> None:
        self.rate = rate
        self.maximum = maximum
        self.recent: collections.deque[float] = collections.deque(maxlen=window)
        self.count = 0
        self._changed = asyncio.Event()

    @property
    def cap(self) -> int:
        if not self.recent:
            return 1
        return max(1, min(self.maximum, math.ceil(self.rate * min(self.recent) * 1.2) + 1))

    async def acquire(self) -> None:
        while self.count >= self.cap:
            self._changed.clear()
            await self._changed.wait()
        self.count += 1

    def observe(self, seconds: float) -> None:
        self.recent.append(seconds)

    def release(self) -> None:
        self.count -= 1
        self._changed.set()


# -- one batch ----------------------------------------------------------------------------------------------

@dataclass
class BatchSummary:
    """What a run did (logged, printed by `helpdesk remind`)."""

    messages: int = 0  # groups planned
    certificates: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    in_doubt: int = 0  # went out, no answer: counted as sent, never repeated
    skipped: int = 0  # claimed elsewhere, or the holder muted / unlinked meanwhile
    held: int = 0  # not attempted: quiet hours began, the run was stopped, or the Bot API kept failing
    recovered: tuple[int, int] = (0, 0)  # an interrupted run's claims: (sent again, left in doubt)
    started: float = field(default_factory=time.monotonic)
    first_send: float | None = None
    last_send: float | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.held == 0

    @property
    def rate(self) -> float:
        if self.first_send is None or self.last_send is None or self.sent < 2:
            return 0.0
        return (self.sent - 1) / max(1e-9, self.last_send - self.first_send)

    def describe(self) -> str:
        return (f"reminders: {self.sent} sent of {self.messages} message(s) for {self.certificates} certificate(s); "
                f"{self.blocked} blocked, {self.failed} failed, {self.in_doubt} in doubt, {self.skipped} skipped, "
                f"{self.held} held; {self.rate:.1f} msg/s over {time.monotonic() - self.started:.1f} s")


def _select(db_path: str, now: datetime, hd: Helpdesk) -> list[ReminderGroup]:
    """Selection on a connection of its own (it runs in a worker thread)."""
    store = Store(db_path)
    try:
        return group_reminders(due_reminders(store, now, hd.config.reminders))
    finally:
        store.close()


async def _call(bot, reply, limiter=None) -> SendResult:
    """The Bot API call for a reminder (a few if its text is long), through the rate limiter if given."""
    async def send(part: Part):
        if limiter is None:
            return await part.send(bot, reply.chat_id, None)
        return await limiter.process_request(lambda: part.send(bot, reply.chat_id, None), (), {}, "sendMessage",
                                             {"chat_id": reply.chat_id}, None)

    sent_any = False
    message_id = None
    for part in parts(reply):
        try:
            try:
                message = await send(part)
            except BadRequest as exc:
                if part.document is not None or "parse entities" not in exc.message.lower():
                    raise
                log.error("Telegram could not parse a reminder's HTML (%s); sending it as plain text", exc.message)
                message = await send(Part(to_plain(part.text), None, part.markup, plain=True))
        except (InvalidToken, Conflict):
            raise  # the bot's settings are wrong: nothing can be sent
        except Exception as exc:  # noqa: BLE001 - every other failure is classified, never lost
            result = _classify(exc)
            if sent_any:  # the first part arrived: the reminder was seen, settle it as sent
                return SendResult("sent", message_id, error=f"a later part: {result.error}")
            return result
        sent_any = True
        message_id = message_id or message.message_id
    return SendResult("sent", message_id)


def _classify(exc: Exception) -> SendResult:
    """Not delivered, so tried again: 429; an error status from the server (5xx); a request that never
    left (no connection, pool full). Otherwise (timeout, connection lost) the log decides: in doubt if the
    request had gone out whole, else tried again."""
    if isinstance(exc, Forbidden):
        return SendResult("blocked", error=exc.message)
    if isinstance(exc, RetryAfter):
        return SendResult("retry", retry_after=retry_after_seconds(exc), error="429")
    if isinstance(exc, (BadRequest, ChatMigrated)):  # BadRequest is a NetworkError: test it first
        return SendResult("failed", error=exc.message)
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        if not isinstance(cause, httpx.HTTPError) or isinstance(cause, _NOT_SENT):
            return SendResult("retry", error=f"not delivered: {str(exc)[:180]}")
    return SendResult("in_doubt", error=f"{exc.__class__.__name__}: {str(exc)[:180]}")


async def run_batch(bot, hd: Helpdesk, *, ignore_quiet_hours: bool = False,
                    should_stop: Callable[[], bool] = lambda: False, limiter=None) -> BatchSummary:
    """Send every reminder due now, paced. Stops claiming at the quiet hours (unless ignored) or once
    `should_stop()` (a shutdown); the calls already made are settled first, so a graceful stop leaves
    nothing half done. `bot` must come from `build_bot` (its client reports when a request has gone out)."""
    settings = hd.config.reminders
    summary = BatchSummary()
    store = Store(hd.config.db_path)  # the log's own connection: independent of the one answering users
    try:
        send_log = SendLog(store)
        summary.recovered = send_log.recover(hd.now())
        if any(summary.recovered):
            log.warning("reminders: an interrupted run left %d message(s) unsent (sending them now) and %d that "
                        "had gone out without an answer (not repeated)", *summary.recovered)
        groups = await asyncio.to_thread(_select, hd.config.db_path, hd.now(), hd)
        summary.messages = len(groups)
        summary.certificates = sum(len(g.items) for g in groups)
        if not groups:
            log.info("%s", summary.describe())
            return summary
        log.info("reminders: %d message(s) for %d certificate(s) to send at %.1f/s", summary.messages,
                 summary.certificates, settings.rate_per_second)
        pacer = RatePacer(settings.rate_per_second)
        chat_pacer = policy_for(bot).pacer
        on_blocked = policy_for(bot).on_blocked
        in_flight = InFlight(settings.rate_per_second, settings.max_in_flight)
        tasks: set[asyncio.Task] = set()
        last_progress = time.monotonic()

        def stopped() -> str:
            if should_stop():
                return "shutting down"
            if not ignore_quiet_hours and in_quiet_hours(hd.now(), settings):
                return "quiet hours"
            return ""

        async def attempt_once(group: ReminderGroup, reply) -> SendResult | None:
            attempt = send_log.claim(group, hd.now())
            if attempt is None:
                return None
            if not _TELEGRAM_CHAT.match(group.chat_id):  # e.g. linked in the terminal chat only
                result = SendResult("failed", error="not a Telegram chat")
            else:
                token = _TRACER.set(_WriteTracer(send_log, attempt))
                called = time.monotonic()
                try:
                    result = await _call(bot, reply, limiter)
                finally:
                    _TRACER.reset(token)
                in_flight.observe(time.monotonic() - called)
            outcome = send_log.settle(attempt, group, result, hd.now())
            return result if outcome == result.outcome else SendResult(outcome, error=result.error)

        async def send_one(group: ReminderGroup) -> None:
            try:
                reply = render_reminder(hd, group)
                failures = 0
                while True:
                    result = await attempt_once(group, reply)
                    if result is None:
                        summary.skipped += 1
                        return
                    if result.outcome != "retry":
                        break
                    if result.retry_after:
                        log.warning("reminders: Telegram asked to slow down: pausing %.1f s", result.retry_after)
                        pacer.pause(result.retry_after + 0.1)
                    else:
                        failures += 1
                        if failures > MAX_FAILURES:
                            log.error("reminders: Bot API failing (%s); %s left for the next run", result.error,
                                      group.key)
                            summary.held += 1
                            return
                        log.warning("reminders: %s not delivered (%s); trying again", group.key, result.error)
                        await asyncio.sleep(min(30.0, 0.5 * 2 ** failures))
                    if stopped():
                        summary.held += 1
                        return
                    await pacer.wait()
                    await chat_pacer.wait(group.chat_id)
                if result.outcome == "sent":
                    summary.sent += 1
                    summary.first_send = summary.first_send or time.monotonic()
                    summary.last_send = time.monotonic()
                elif result.outcome == "blocked":
                    summary.blocked += 1
                    log.info("reminders: %s blocked the bot; marked unreachable", group.employee_id)
                    if on_blocked is not None:
                        on_blocked(group.chat_id, result.error)
                elif result.outcome == "failed":
                    summary.failed += 1
                    log.error("reminders: Telegram refused %s: %s", group.key, result.error)
                else:
                    summary.in_doubt += 1
                    log.warning("reminders: %s went out but got no answer (%s); not repeated", group.key,
                                result.error)
            finally:
                in_flight.release()

        for index, group in enumerate(groups):
            reason = stopped()
            if reason:
                summary.held += len(groups) - index
                log.info("reminders: stopping (%s); %d message(s) left for the next run", reason, len(groups) - index)
                break
            await in_flight.acquire()  # a free slot first, then the pace: tokens are not spent while waiting
            await pacer.wait()
            await chat_pacer.wait(group.chat_id)
            task = asyncio.create_task(send_one(group))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if time.monotonic() - last_progress >= PROGRESS_EVERY:
                last_progress = time.monotonic()
                log.info("reminders: %d/%d sent (%.1f/s), %d blocked, %d failed, %d in doubt", summary.sent,
                         summary.messages, summary.rate, summary.blocked, summary.failed, summary.in_doubt)
        if tasks:
            await asyncio.gather(*tasks)
        log.info("%s", summary.describe())
        return summary
    finally:
        store.close()


# -- the staff digest ---------------------------------------------------------------------------------------

async def send_digest(bot, hd: Helpdesk) -> bool:
    """The daily digest to the staff chat, once a day; True if it was sent now."""
    now = hd.now()
    if not digest_due(hd, now):
        return False

    def build() -> list:
        store = Store(hd.config.db_path)
        try:
            return digest_replies(hd, now, with_files=False, chat_id=hd.config.staff_chat_id, store=store)
        finally:
            store.close()

    replies = await asyncio.to_thread(build)
    result = await deliver(bot, replies, hd.config.staff_chat_id)
    if result.sent:
        mark_digest_sent(hd.store, now)
    return bool(result.sent)


# -- `helpdesk run`: the schedule ---------------------------------------------------------------------------

_RUNNING = "reminders.batch"


async def _reminder_job(context) -> None:
    hd: Helpdesk = context.job.data
    app = context.application
    if not send_window_open(hd.now(), hd.config.reminders):
        return
    task = app.bot_data.get(_RUNNING)
    if task is not None and not task.done():
        return  # the previous batch is still going (a very large one): it covers this run too
    # A task of its own, so the job queue and the update handlers never wait for the batch; Application.stop()
    # awaits it, and the batch stops claiming as soon as the application is no longer running.
    app.bot_data[_RUNNING] = app.create_task(_batch_guarded(app, hd), name="reminders")


async def _batch_guarded(app, hd: Helpdesk) -> None:
    try:
        async with build_bot(hd) as bot:
            await run_batch(bot, hd, should_stop=lambda: not app.running,
                            limiter=getattr(app.bot, "rate_limiter", None))
    except Exception:  # a bug here must not take the bot down; the next run retries what is left
        log.exception("reminders: the batch stopped on an error")


async def _digest_job(context) -> None:
    try:
        await send_digest(context.application.bot, context.job.data)
    except Exception:
        log.exception("reminders: the staff digest failed")


def schedule(application, hd: Helpdesk) -> None:
    """Daily reminder run at send_time and staff digest at digest_time (Asia/Seoul), and a catch-up run
    shortly after start (a run missed while the bot was down happens now, if it is not quiet)."""
    settings = hd.config.reminders
    jobs = application.job_queue
    send_at = clock_time(settings.send_time)
    jobs.run_daily(_reminder_job, time=dtime(send_at.hour, send_at.minute, tzinfo=SEOUL), data=hd,
                   name="reminders")
    jobs.run_once(_reminder_job, when=2, data=hd, name="reminders:catch-up")
    digest_at = clock_time(settings.digest_time)
    jobs.run_daily(_digest_job, time=dtime(digest_at.hour, digest_at.minute, tzinfo=SEOUL), data=hd,
                   name="reminders:digest")
    jobs.run_once(_digest_job, when=3, data=hd, name="reminders:digest-catch-up")


# -- `helpdesk remind` --------------------------------------------------------------------------------------

def send_from_cli(hd: Helpdesk, *, ignore_quiet_hours: bool = False) -> BatchSummary:
    """`helpdesk remind`: one batch now, then exit. SIGTERM / Ctrl-C stop it gracefully (calls in flight
    are settled); progress goes to the log on stderr."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)

    async def main() -> BatchSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The same overall limit as `helpdesk run` applies (a 429 is handled by the batch: max_retries=0).
        limiter = AIORateLimiter(overall_max_rate=hd.config.telegram_overall_rate, overall_time_period=1,
                                 max_retries=0)
        await limiter.initialize()
        try:
            async with build_bot(hd) as bot:
                return await run_batch(bot, hd, ignore_quiet_hours=ignore_quiet_hours, should_stop=stop.is_set,
                                       limiter=limiter)
        finally:
            await limiter.shutdown()

    return asyncio.run(main())
