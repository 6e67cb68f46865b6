"""Reminders end to end: `helpdesk run` and `helpdesk remind` as subprocesses against the fake Bot API, day by
day from D-30 to the day of expiry (each day a new process: a restart), and `remind --dry-run --json`."""
from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import to_iso
from bot.config import load_config
from bot.helpdesk import Helpdesk
from bot.registry import Registry
from bot.store import Store
from tests.conftest import NOW
from tests.fake_telegram import FakeTelegram
from tests.telegram_support import BotProcess, bot_env, helpdesk, wait_for

EXPIRY = (NOW + timedelta(days=30)).replace(hour=23, minute=59, second=59)  # 2026-12-25: D-30 on NOW's day
LINKED, MUTED, RENEWED, MUTES_LATER, BLOCKS = 5001, 5002, 5003, 5004, 5005
STAFF = -1007770001
HOLDERS = {  # chat -> (employee id, muted, certificates as (serial, kind, not_after))
    LINKED: ("E0001", 0, [("0A01", "sig", EXPIRY), ("0A02", "env", EXPIRY)]),
    MUTED: ("E0002", 1, [("0B01", "sig", EXPIRY), ("0B02", "env", EXPIRY)]),
    RENEWED: ("E0003", 0, [("0C01", "sig", EXPIRY), ("0C02", "env", EXPIRY),
                           ("0C11", "sig", EXPIRY + timedelta(days=730)), ("0C12", "env", EXPIRY + timedelta(days=730))]),
    MUTES_LATER: ("E0004", 0, [("0D01", "sig", EXPIRY)]),
    BLOCKS: ("E0005", 0, [("0E01", "sig", EXPIRY)]),
}
DAYS = [(30, "run"), (14, "run"), (14, "run"), (7, "remind"), (1, "remind"), (0, "remind")]  # (D-n, how)


def populate(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    stamp = to_iso(NOW)
    for chat, (emp, muted, certs) in HOLDERS.items():
        conn.execute("INSERT INTO holders (employee_id, name, agency, chat_id, linked_at, reminders_muted, created_at,"
                     " updated_at) VALUES (?, '테스터', '데모시', ?, ?, ?, ?, ?)", [emp, str(chat), stamp, muted, stamp, stamp])
        for serial, kind, not_after in certs:
            conn.execute("INSERT INTO certificates (employee_id, issuer, serial, kind, usage, not_before, not_after,"
                         " created_at, updated_at) VALUES (?, 'CN=CA999000001', ?, ?, 'personal-admin', ?, ?, ?, ?)",
                         [emp, serial, kind, to_iso(NOW - timedelta(days=700)), to_iso(not_after), stamp, stamp])
    conn.close()


def reminders_to(fake: FakeTelegram, chat: int) -> list:
    return [m for m in fake.messages(chat) if any(data == "rm:mute" for _, data in m.buttons)]


def test_each_step_once_muted_none_renewed_none_across_restarts(tmp_path):
    db_path = tmp_path / "helpdesk.db"
    populate(db_path)
    with FakeTelegram() as fake:
        for day, (days_left, how) in enumerate(DAYS):
            now = to_iso((EXPIRY - timedelta(days=days_left)).replace(hour=10, minute=0, second=0))
            before = {chat: len(reminders_to(fake, chat)) for chat in HOLDERS}
            expected_new = 0 if day == 2 else 1  # the third start is a restart on the same day: nothing again
            if how == "run":
                bot = BotProcess(fake, tmp_path, db_path=db_path, HELPDESK_NOW=now, HELPDESK_STAFF_CHAT_ID=str(STAFF))
                try:
                    runs = bot.log().count(" sent of ")
                    bot.start()
                    wait_for(lambda: bot.log().count(" sent of ") > runs, 30, f"the D-{days_left} run")
                    if day < 2:  # the staff digest, once a day (not again at the same-day restart)
                        fake.wait_messages(STAFF, day + 1, 20)
                    if day == 0:  # a holder presses the mute button on their D-30 reminder
                        fake.press(MUTES_LATER, "rm:mute", message_id=reminders_to(fake, MUTES_LATER)[0].message_id)
                        fake.wait_until(lambda: any("껐어요" in m.text for m in fake.messages(MUTES_LATER)), 20, "mute")
                finally:
                    assert bot.stop() == 0, bot.log()
            else:
                done = helpdesk(bot_env(fake, db_path, HELPDESK_NOW=now), "remind")
                assert done.returncode == 0, done.stderr
                assert f"{expected_new} sent" in done.stdout
            got = {chat: len(reminders_to(fake, chat)) - before[chat] for chat in HOLDERS}
            assert got[LINKED] == expected_new, (days_left, got)
            assert got[MUTED] == 0 and got[RENEWED] == 0
            assert got[MUTES_LATER] == (1 if day == 0 else 0), (days_left, got)
            assert got[BLOCKS] == (1 if day == 0 else 0), (days_left, got)
            if day == 0:
                fake.block(BLOCKS)  # blocks the bot after the first reminder: the next one gets 403

        digests = [m.text for m in fake.messages(STAFF)]
        assert len(digests) == 2 and all("인증서 만료 현황" in d for d in digests)
        assert "30일 안에 만료: 인증서 6개, 보유자 4명" in digests[0]  # the renewed pair is not counted
        assert "보냄 3건" in digests[0]  # messages, not certificates

        steps = [m.text for m in reminders_to(fake, LINKED)]
        assert len(steps) == 5
        for text, days_left in zip(steps, (30, 14, 7, 1, 0)):
            assert "0A01" in text and "0A02" in text  # the pair in one message
            assert {30: "만료 30일 전", 14: "만료 14일 전", 7: "만료 7일 전", 1: "내일 인증서가 만료", 0: "오늘 인증서가 만료"}[
                days_left] in text
        assert "행정기관 개인용 서명용" in steps[0] and "2026년 12월 25일" in steps[0]
        # E0005: one 403 (D-14), then never tried again; E0002 / E0003 never tried at all.
        tried = [c.chat_id for c in fake.calls_of("sendMessage") if c.chat_id in (BLOCKS, MUTED, RENEWED)
                 and any(d == "rm:mute" for _, d in c.buttons)]
        assert tried == [BLOCKS, BLOCKS]
        conn = sqlite3.connect(db_path)
        log = sorted(conn.execute("SELECT employee_id, step, state FROM reminder_log").fetchall())
        assert conn.execute("SELECT unreachable_at IS NOT NULL FROM holders WHERE employee_id = 'E0005'").fetchone() == (1,)
        conn.close()
        assert log == sorted([("E0001", s, "sent") for s in (30, 14, 7, 1, 0)] * 2 + [("E0004", 30, "sent")]
                             + [("E0005", 30, "sent"), ("E0005", 14, "blocked")])


def test_remind_respects_quiet_hours_and_needs_a_token(tmp_path):
    db_path = tmp_path / "helpdesk.db"
    populate(db_path)
    with FakeTelegram() as fake:
        night = helpdesk(bot_env(fake, db_path, HELPDESK_NOW="2026-11-25T22:30:00+09:00"), "remind")
        assert night.returncode == 0 and "quiet hours" in night.stdout and fake.messages() == []
        forced = helpdesk(bot_env(fake, db_path, HELPDESK_NOW="2026-11-25T22:30:00+09:00"), "remind",
                          "--ignore-quiet-hours")
        assert forced.returncode == 0, forced.stderr
        assert {m.chat_id for m in fake.messages()} == {LINKED, MUTES_LATER, BLOCKS}
    no_token = helpdesk(bot_env(None, db_path), "remind")
    assert no_token.returncode == 2 and "HELPDESK_TELEGRAM_TOKEN" in no_token.stderr


# (what the Bot API does to the first sendMessage, reminders delivered, the log's states, summary words)
FAULTS = {
    "429 twice: waits retry_after, then all go": (
        lambda fake: fake.fail("sendMessage", 429, times=2, retry_after=1), 3, {"sent": 4}, "3 sent"),
    "500: not delivered, tried again": (lambda fake: fake.fail("sendMessage", 500), 3, {"sent": 4}, "3 sent"),
    "400: refused for good, not retried": (
        lambda fake: fake.fail("sendMessage", 400), 2, {"sent": 2, "failed": 2}, "1 failed"),
    "timed out after sending: in doubt, never resent": (
        lambda fake: fake.slow("sendMessage", 3), 2, {"sent": 2, "unknown": 2}, "1 in doubt"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_bot_api_failures(tmp_path, fault):
    inject, delivered, states, words = FAULTS[fault]
    db_path = tmp_path / "helpdesk.db"
    populate(db_path)
    with FakeTelegram() as fake:
        inject(fake)
        env = bot_env(fake, db_path, HELPDESK_TELEGRAM_TIMEOUT_SECONDS="1")
        done = helpdesk(env, "remind")
        assert done.returncode in (0, 1), done.stderr
        assert words in done.stdout
        assert len(fake.messages()) == delivered
        again = helpdesk(env, "remind")  # the next run sends nothing twice and retries nothing refused
        assert "0 sent of 0 message(s)" in again.stdout and len(fake.messages()) == delivered
    conn = sqlite3.connect(db_path)
    got = dict(conn.execute("SELECT state, COUNT(*) FROM reminder_log GROUP BY state").fetchall())
    conn.close()
    assert got == states


def test_dry_run_json_on_the_demo_data(tmp_path):
    db_path = tmp_path / "helpdesk.db"
    env = bot_env(None, db_path)
    seeded = helpdesk(env, "demo", "seed")
    assert seeded.returncode == 0, seeded.stderr
    config = load_config(environ={"HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "test-pii-key"})
    hd = Helpdesk(config)
    try:
        serials = dict(hd.store.db.execute(
            "SELECT employee_id || kind, serial FROM certificates WHERE employee_id IN ('S0002', 'S0003')").fetchall())
        expiry = dict(hd.store.db.execute(
            "SELECT employee_id, not_after FROM certificates WHERE employee_id IN ('S0002', 'S0003')").fetchall())
    finally:
        hd.close()
    expected = sorted([
        {"employee_id": emp, "serial": serials[emp + kind], "step": step, "not_after": expiry[emp]}
        for emp, step in (("S0002", 30), ("S0003", 7)) for kind in ("sig", "env")],
        key=lambda r: (r["employee_id"], r["serial"]))
    # The seed links S0002 and S0003 to their terminal chats: their reminders are due at once.
    seeded_only = helpdesk(env, "remind", "--dry-run", "--json")
    assert seeded_only.returncode == 0
    assert sorted(json.loads(seeded_only.stdout), key=lambda r: (r["employee_id"], r["serial"])) == expected
    hd = Helpdesk(config)
    try:
        registry = Registry(hd)
        for index, emp in enumerate(("S0001", "S0004", "S0005", "S0006", "S0009")):
            registry.link_chat(emp, str(7000 + index))
    finally:
        hd.close()
    listed = helpdesk(env, "remind", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    # S0002 expires in 20 days (latest due step D-30), S0003 in 3 (D-7); S0001 is far off, S0004 expired,
    # S0005 revoked, S0006 suspended, S0009's old pair was replaced by its reissue.
    assert sorted(rows, key=lambda r: (r["employee_id"], r["serial"])) == expected
    text = helpdesk(env, "remind", "--dry-run")
    assert "4 certificate(s) due, 2 message(s)" in text.stdout
