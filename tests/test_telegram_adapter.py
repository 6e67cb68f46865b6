"""The Telegram adapter in-process against the fake Bot API over real HTTP: delivery (parts, 403, 429,
5xx, bad HTML), the durable inbox, pacing, and the error handler."""
from __future__ import annotations

import asyncio
import logging
import re

import pytest
from telegram import Update

from bot.helpdesk import Helpdesk
from bot.types import Button, Document, Reply
from handlers.app import Runtime, build_application
from handlers.inbox import Inbox, Intake
from handlers.outbound import ChatPacer, deliver
from tests.fake_telegram import FakeTelegram


@pytest.fixture
def fake() -> FakeTelegram:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def tg_config(config, fake, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # as `helpdesk run` does: no deprecation warnings
    return config.with_overrides(telegram_token=fake.token, telegram_base_url=fake.base_url,
                                 telegram_base_file_url=fake.base_file_url, telegram_timeout_seconds=2.0)


@pytest.fixture
def tg_hd(tg_config, clock):
    """The core with the Telegram settings (the jobs other features add read them from it)."""
    helpdesk = Helpdesk(tg_config, clock=clock)
    yield helpdesk
    helpdesk.close()


def run_app(tg_config, hd, body):
    """Build the real Application, start it, run `body(app, runtime)`, shut it down."""
    async def main():
        app = build_application(tg_config, hd)
        runtime: Runtime = app.bot_data["runtime"]
        runtime.intake = Intake(app, runtime.inbox)
        await app.initialize()
        await app.start()
        try:
            return await body(app, runtime)
        finally:
            await runtime.intake.drain(5)
            await app.stop()
            await app.shutdown()
    return asyncio.run(main())


async def fetch_and_handle(app, runtime: Runtime) -> list[Update]:
    """One getUpdates round, recorded and handled to the end."""
    updates = await app.bot.get_updates(timeout=0)
    runtime.intake.accept(updates)
    await runtime.intake.drain(20)
    await app.bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) if updates else None
    return updates


# -- delivery --------------------------------------------------------------------------------------------
def test_delivery_splits_retries_and_records_blocked_chats(tg_config, tg_hd, fake):
    hd = tg_hd
    long_text = "\n".join(f"{i}. <b>단계</b> 안내 문장입니다 &amp; 확인" for i in range(200))  # ~7,000 characters
    buttons = ((Button("처음으로", "home"),),)
    fake.block(3003)
    fake.fail("sendMessage", 429, times=1, retry_after=1)
    fake.fail("sendMessage", 502, times=2)

    form = Document("신청서.pdf", b"%PDF-1.4 fake", "application/pdf")

    async def body(app, runtime):
        return await deliver(app.bot, [Reply(long_text, buttons), Reply("차단됨", chat_id="3003"),
                                       Reply("<b>끝</b>"), Reply("", document=form)], "3001")

    result = run_app(tg_config, hd, body)
    sent = fake.messages(3001)
    assert len(sent) == 4  # two parts of the long reply, then the others: nothing lost to 429/502
    assert [m.buttons for m in sent] == [[], [("처음으로", "home")], [], []]
    assert "".join(m.text for m in sent[:2]).count("단계") == 200
    assert sent[2].text == "끝"
    assert (sent[3].method, sent[3].params["document"], sent[3].params["document_filename"]) == (
        "sendDocument", b"%PDF-1.4 fake", "신청서.pdf")
    assert result.blocked == ["3003"] and result.failed == []
    assert [(s.index, s.part) for s in result.sent] == [(0, 0), (0, 1), (2, 0), (3, 0)]
    assert Inbox(hd.store, hd.now).is_blocked("3003")
    assert [c.status for c in fake.calls_of("sendMessage") if c.chat_id == 3003] == [403]  # not retried


def test_html_telegram_cannot_parse_is_sent_as_plain_text(tg_config, tg_hd, fake, caplog):
    hd = tg_hd
    async def body(app, runtime):
        return await deliver(app.bot, [Reply("값 <x> 이 잘못됐어요")], "3101")

    with caplog.at_level(logging.ERROR, logger="helpdesk.telegram"):
        result = run_app(tg_config, hd, body)
    assert [m.text for m in fake.messages(3101)] == ["값 <x> 이 잘못됐어요"]
    assert result.ok and "could not parse" in caplog.text


@pytest.mark.parametrize("rate, burst, times, expected_delays", [
    (1.0, 3, [0, 0, 0, 0, 0.5, 1.0, 5.0], [0, 0, 0, 1.0, 0.5, 0, 0]),
    (2.0, 1, [0, 0, 0.5, 0.6], [0, 0.5, 0, 0.4]),
    (0.0, 1, [0, 0, 0], [0, 0, 0]),  # 0: no per-chat pacing
])
def test_chat_pacer_allows_bursts_then_about_rate_per_second(rate, burst, times, expected_delays):
    clock = iter(times)
    pacer = ChatPacer(rate, burst, clock=lambda: next(clock))
    assert [pytest.approx(pacer._take("1001")) for _ in times] == expected_delays


# -- the inbox ---------------------------------------------------------------------------------------------
def test_inbox_records_once_plans_once_and_replays_only_what_was_not_sent(hd):
    fake = FakeTelegram()  # only its update builders
    inbox = Inbox(hd.store, hd.now)
    fake.send_text(4001, "첫 질문")
    fake.send_text(4001, "둘째 질문")
    updates = [Update.de_json(u, None) for u in fake._updates[-2:]]
    assert [u.update_id for u in inbox.record(updates)] == [u.update_id for u in updates]
    assert inbox.record(updates) == []  # Telegram sent them again: ignored
    first = updates[0].update_id

    computed = []
    replies = [Reply("하나"), Reply("둘", chat_id="-100")]
    plan = inbox.plan(first, lambda: computed.append(1) or replies)
    plan.log.part_sent(0, 1, 77, True)
    again = inbox.plan(first, lambda: computed.append(1) or [])  # a replay after a crash
    assert computed == [1]
    assert again.replies[1] == replies[1] and again.progress == [10**9, 0]
    assert [u.update_id for u in inbox.pending(None)] == [u.update_id for u in updates]

    inbox.fail(first, "ABC123")  # what was still pending is dropped with it
    inbox.finish(updates[1].update_id)
    assert inbox.pending(None) == []
    rows = hd.store.db.execute(
        "SELECT state, payload IS NULL, incident FROM tg_inbox ORDER BY update_id").fetchall()
    assert rows == [("failed", 1, "ABC123"), ("done", 1, None)]
    assert hd.store.db.execute("SELECT idx, state, message_ids, payload IS NULL FROM tg_replies").fetchall() == [
        (0, "sent", "77", 1), (1, "failed", "", 1)]


def test_inbox_prunes_handled_updates_after_two_days(hd, clock):
    fake = FakeTelegram()  # only its update builders
    inbox = Inbox(hd.store, hd.now)
    for text in ("하나", "둘", "셋"):
        fake.send_text(4101, text)
    updates = [Update.de_json(u, None) for u in fake._updates[-3:]]
    inbox.record(updates)
    for update in updates[:2]:
        inbox.finish(update.update_id)
    clock.advance(days=3)
    assert inbox.prune() == 2  # the unhandled one stays, and the newest id always stays
    assert [u.update_id for u in inbox.pending(None)] == [updates[2].update_id]


# -- the error handler --------------------------------------------------------------------------------------
def test_an_error_gets_an_apology_with_an_incident_id_and_a_masked_traceback(tg_config, tg_hd, fake, caplog):
    hd = tg_hd
    def broken(inbound):
        raise ValueError(f"could not handle {inbound.text}")

    hd.handle = broken  # a bug in the core, for this one test
    fake.send_text(4201, "제 번호는 010-1234-5678 이고 주민번호는 900101-1234567 이에요")

    with caplog.at_level(logging.ERROR, logger="helpdesk.telegram"):
        run_app(tg_config, hd, fetch_and_handle)
    [apology] = fake.messages(4201)
    incident = re.search(r"오류 번호: ([0-9A-F]{6})", apology.text).group(1)
    assert apology.text.startswith("죄송해요")
    assert f"incident {incident}" in caplog.text and "ValueError" in caplog.text
    assert "1234567" not in caplog.text and "1234-5678" not in caplog.text
    row = hd.store.db.execute("SELECT state, incident, payload FROM tg_inbox").fetchone()
    assert row == ("failed", incident, None)
