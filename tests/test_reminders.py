"""Expiry reminders in the core: what is due when, grouping, the message, the sending log, mute, digest."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from bot.clock import SEOUL, to_iso
from bot.config import ConfigError, ReminderSettings, load_config
from bot.reminders import (SendLog, SendResult, build_digest, due_reminders, group_reminders, in_quiet_hours,
                           log_counts, quiet_hours_end, render_reminder, send_window_open, step_for)
from bot.helpdesk import Helpdesk
from bot.render import to_plain
from bot.store import Store
from tests.conftest import NOW

# NOW is 2026-11-25 10:00 Asia/Seoul.
SETTINGS = ReminderSettings()


def end_of(day: str) -> str:
    return f"{day}T23:59:59+09:00"


def _store(target) -> Store:
    return target.store if isinstance(target, Helpdesk) else target


@pytest.fixture
def store(db_path) -> Store:
    """The database alone (no knowledge base): enough for selection and the sending log."""
    opened = Store(db_path)
    yield opened
    opened.close()


def add_holder(target, employee_id: str, *, chat_id: str | None = "auto", muted: bool = False,
               unreachable: bool = False, name: str = "홍길동", agency: str = "행정안전부") -> str | None:
    chat = f"tg:{employee_id}" if chat_id == "auto" else chat_id
    stamp = to_iso(NOW)
    _store(target).db.execute(
        "INSERT INTO holders (employee_id, name, agency, agency_code, chat_id, linked_at, reminders_muted, "
        "unreachable_at, created_at, updated_at) VALUES (?, ?, ?, '1741000', ?, ?, ?, ?, ?, ?)",
        [employee_id, name, agency, chat, stamp if chat else None, int(muted), stamp if unreachable else None,
         stamp, stamp])
    return chat


def add_cert(target, employee_id: str, serial: str, not_after: str, *, kind: str = "sig",
             usage: str = "personal-admin", status: str = "valid") -> None:
    stamp = to_iso(NOW)
    _store(target).db.execute(
        "INSERT INTO certificates (employee_id, issuer, serial, kind, usage, not_before, not_after, status, "
        "created_at, updated_at) VALUES (?, 'CN=CA131000002,OU=GPKI,O=Government of Korea,C=KR', ?, ?, ?, ?, ?, ?, ?, ?)",
        [employee_id, serial, kind, usage, "2024-12-01T00:00:00+09:00", not_after, status, stamp, stamp])


def due_pairs(target, now=NOW) -> list[tuple[str, str, int]]:
    return [(d.employee_id, d.serial, d.step) for d in due_reminders(_store(target), now, SETTINGS)]


# -- steps --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("days_left, step", [
    (31, None), (30, 30), (29, 30), (20, 30), (15, 30), (14, 14), (10, 14), (8, 14), (7, 7), (2, 7), (1, 1),
    (0, 0), (-1, None),
])
def test_the_latest_step_whose_day_has_come(days_left, step):
    assert step_for(days_left, SETTINGS.steps) == step


# One holder per case: (holder options, certificates as (serial, not_after, options), expected (serial, step)).
CASES = {
    "D-30 on the day": ({}, [("A1", end_of("2026-12-25"), {})], [("A1", 30)]),
    "D-31: not yet": ({}, [("A1", end_of("2026-12-26"), {})], []),
    "D-14": ({}, [("A1", end_of("2026-12-09"), {})], [("A1", 14)]),
    "D-7": ({}, [("A1", end_of("2026-12-02"), {})], [("A1", 7)]),
    "D-1": ({}, [("A1", end_of("2026-11-26"), {})], [("A1", 1)]),
    "on the day of expiry": ({}, [("A1", end_of("2026-11-25"), {})], [("A1", 0)]),
    "expired this morning": ({}, [("A1", "2026-11-25T09:00:00+09:00", {})], []),
    "expired yesterday": ({}, [("A1", end_of("2026-11-24"), {})], []),
    "between steps: the latest due one": ({}, [("A1", end_of("2026-12-05"), {})], [("A1", 14)]),
    "a 'Z' time is read in Seoul time": ({}, [("A1", "2026-12-25T14:59:59Z", {})], [("A1", 30)]),
    "muted": ({"muted": True}, [("A1", end_of("2026-12-02"), {})], []),
    "not linked": ({"chat_id": None}, [("A1", end_of("2026-12-02"), {})], []),
    "unreachable (blocked the bot)": ({"unreachable": True}, [("A1", end_of("2026-12-02"), {})], []),
    "revoked": ({}, [("A1", end_of("2026-12-02"), {"status": "revoked"})], []),
    "suspended": ({}, [("A1", end_of("2026-12-02"), {"status": "suspended"})], []),
    "renewed: a newer one of the same usage and kind": (
        {}, [("A1", end_of("2026-12-02"), {}), ("B1", end_of("2028-12-01"), {})], []),
    "renewed pair: neither old half is due": (
        {}, [("A1", end_of("2026-12-02"), {}), ("A2", end_of("2026-12-02"), {"kind": "env"}),
             ("B1", end_of("2028-12-01"), {}), ("B2", end_of("2028-12-01"), {"kind": "env"})], []),
    "the newer one is revoked: still due": (
        {}, [("A1", end_of("2026-12-02"), {}), ("B1", end_of("2028-12-01"), {"status": "revoked"})], [("A1", 7)]),
    "a newer one of another usage does not replace it": (
        {}, [("A1", end_of("2026-12-02"), {}), ("B1", end_of("2028-12-01"), {"usage": "personal-public"})],
        [("A1", 7)]),
    "only the sig half renewed: the env half is due": (
        {}, [("A1", end_of("2026-12-02"), {}), ("A2", end_of("2026-12-02"), {"kind": "env"}),
             ("B1", end_of("2028-12-01"), {})], [("A2", 7)]),
    "a sig/env pair": (
        {}, [("A1", end_of("2026-12-02"), {}), ("A2", end_of("2026-12-02"), {"kind": "env"})],
        [("A1", 7), ("A2", 7)]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_due_selection(store, case):
    holder, certs, expected = CASES[case]
    add_holder(store, "S0001", **holder)
    for serial, not_after, options in certs:
        add_cert(store, "S0001", serial, not_after, **options)
    assert due_pairs(store) == [("S0001", serial, step) for serial, step in expected]


def test_a_pair_is_one_message_and_each_holder_gets_their_own(store):
    add_holder(store, "S0001")
    add_holder(store, "S0002")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    add_cert(store, "S0001", "A2", end_of("2026-12-02"), kind="env")
    add_cert(store, "S0001", "A3", end_of("2026-12-25"), usage="personal-public")
    add_cert(store, "S0002", "B1", end_of("2026-11-26"))
    groups = group_reminders(due_reminders(store, NOW, SETTINGS))
    assert [(g.employee_id, g.step, [i.serial for i in g.items]) for g in groups] == [
        ("S0002", 1, ["B1"]), ("S0001", 7, ["A1", "A2"]), ("S0001", 30, ["A3"])]


def test_a_logged_step_is_not_due_again_and_a_missed_one_is_sent_once(store):
    chat = add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-25"))
    log = SendLog(store)
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    attempt = log.claim(group, NOW)
    log.settle(attempt, group, SendResult("sent", message_id=7), NOW)
    assert due_pairs(store) == []
    # The bot is down from D-29 to D-10: at D-10 only D-14 is sent, never D-30 again nor a pile.
    later = NOW + timedelta(days=20)
    assert due_pairs(store, later) == [("S0001", "A1", 14)]
    assert due_pairs(store, later + timedelta(days=1)) == [("S0001", "A1", 14)]
    rows = store.db.execute("SELECT step, state, chat_id, message_id FROM reminder_log").fetchall()
    assert rows == [(30, "sent", chat, 7)]


def test_a_corrected_expiry_date_gets_its_own_reminders(store):
    add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    log = SendLog(store)
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    log.settle(log.claim(group, NOW), group, SendResult("sent", message_id=1), NOW)
    assert due_pairs(store) == []
    store.db.execute("UPDATE certificates SET not_after = ?", [end_of("2026-12-20")])  # the registry is fixed
    assert due_pairs(store) == [("S0001", "A1", 30)]


@pytest.mark.parametrize("outcome, written, state, due_again, unreachable", [
    ("sent", True, "sent", False, False),
    ("blocked", True, "blocked", False, True),
    ("failed", True, "failed", False, False),
    ("retry", True, None, True, False),  # 429, 5xx, no connection: not delivered, so tried again
    ("in_doubt", False, None, True, False),  # failed before the request went out whole: tried again
    ("in_doubt", True, "unknown", False, False),  # went out, no answer: counted as sent, never repeated
])
def test_settling_a_claim(store, outcome, written, state, due_again, unreachable):
    add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    add_cert(store, "S0001", "A2", end_of("2026-12-02"), kind="env")
    log = SendLog(store)
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    attempt = log.claim(group, NOW)
    assert attempt is not None
    assert log.claim(group, NOW) is None  # a second sender (or the same one twice) cannot claim it
    if written:
        log.mark_written(attempt)
    log.settle(attempt, group, SendResult(outcome, message_id=5 if outcome == "sent" else None, error="x"), NOW)
    states = [r[0] for r in store.db.execute("SELECT state FROM reminder_log ORDER BY serial")]
    assert states == ([state, state] if state else [])
    assert bool(due_pairs(store)) is due_again
    blocked_at = store.db.execute("SELECT unreachable_at FROM holders").fetchone()[0]
    assert (blocked_at is not None) is unreachable


def test_a_refused_request_is_not_counted_as_gone_out(store):
    add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    log = SendLog(store)
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    attempt = log.claim(group, NOW)
    log.mark_written(attempt)
    log.mark_refused(attempt)  # e.g. a 500: the server did not act on it
    assert log.settle(attempt, group, SendResult("in_doubt"), NOW) == "retry"
    assert due_pairs(store) == [("S0001", "A1", 7)]


def test_a_claim_rechecks_the_holder(store):
    add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    store.db.execute("UPDATE holders SET reminders_muted = 1")  # muted after the batch was planned
    assert SendLog(store).claim(group, NOW) is None
    assert log_counts(store)["sending"] == 0


# (the crashed sender's process, claim age in minutes, whether its request had gone out) -> after recovery
@pytest.mark.parametrize("alive, age, written, state, due_again", [
    (False, 1, False, None, True),  # died before the request went out whole: sent again
    (False, 1, True, "unknown", False),  # died after: in doubt, never repeated
    (True, 1, False, "sending", False),  # another sender still at work: left alone
    (True, 60, False, None, True),  # "alive" but stale: the process id was reused
])
def test_recovering_an_interrupted_run(store, alive, age, written, state, due_again):
    add_holder(store, "S0001")
    add_cert(store, "S0001", "A1", end_of("2026-12-02"))
    [group] = group_reminders(due_reminders(store, NOW, SETTINGS))
    crashed = SendLog(store, run_id="4242.dead")
    attempt = crashed.claim(group, NOW - timedelta(minutes=age))
    if written:
        crashed.mark_written(attempt)
    recovered = SendLog(store).recover(NOW, alive=lambda pid: alive and pid == 4242)
    assert recovered == ((1 if state is None else 0), (1 if state == "unknown" else 0))
    assert [r[0] for r in store.db.execute("SELECT state FROM reminder_log")] == ([state] if state else [])
    assert bool(due_pairs(store)) is due_again


# -- when -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hhmm, quiet, window", [
    ("00:30", True, False), ("07:59", True, False), ("08:00", False, False), ("09:59", False, False),
    ("10:00", False, True), ("15:00", False, True), ("20:59", False, True), ("21:00", True, False),
    ("23:30", True, False),
])
def test_quiet_hours_and_the_send_time(hhmm, quiet, window):
    hour, minute = map(int, hhmm.split(":"))
    now = datetime(2026, 11, 25, hour, minute, tzinfo=SEOUL)
    assert in_quiet_hours(now, SETTINGS) is quiet
    assert send_window_open(now, SETTINGS) is window
    end = quiet_hours_end(now, SETTINGS)
    assert (end > now) is quiet and (not quiet or end.strftime("%H:%M") == "08:00")


def test_settings_from_env_and_their_checks(db_path):
    config = load_config(environ={"HELPDESK_DB": str(db_path), "HELPDESK_REMINDER_STEPS": "60, 30,0",
                                  "HELPDESK_REMINDER_SEND_TIME": "09:30", "HELPDESK_REMINDER_RATE": "10"})
    assert (config.reminders.steps, config.reminders.send_time, config.reminders.rate_per_second) == (
        (60, 30, 0), "09:30", 10.0)
    for env in ({"HELPDESK_REMINDER_SEND_TIME": "22:00"}, {"HELPDESK_REMINDER_STEPS": "7,7"},
                {"HELPDESK_REMINDER_QUIET_END": "8"}, {"HELPDESK_REMINDER_RATE": "0"},
                {"HELPDESK_REMINDER_RATE": "40"}):  # more than the bot's overall limit (30/s)
        with pytest.raises(ConfigError):
            load_config(environ={"HELPDESK_DB": str(db_path), **env})


# -- the message and the buttons ---------------------------------------------------------------------

def test_the_reminder_names_each_certificate_its_expiry_and_what_to_do(hd):
    add_holder(hd, "S0001", name="김민지")
    add_cert(hd, "S0001", "0A1B", end_of("2026-12-02"))
    add_cert(hd, "S0001", "0A1C", end_of("2026-12-02"), kind="env")
    [group] = group_reminders(due_reminders(hd.store, NOW, SETTINGS))
    reply = render_reminder(hd, group)
    text = to_plain(reply.text)
    assert reply.chat_id == "tg:S0001" and "reminder:D-7" in reply.tags
    for expected in ("인증서 만료 7일 전", "김민지님", "행정기관 개인용 서명용 인증서", "행정기관 개인용 암호화용 인증서",
                     "2026년 12월 2일", "7일 남음", "0A1B", "0A1C", "등록기관 인증담당자", "다시 등록"):
        assert expected in text
    actions = [b.action for b in reply.all_buttons()]
    assert "rm:mute" in actions
    assert all(a in actions for a in ("act:status", "act:reissue") if hd.has_action(a[4:]))


@pytest.mark.parametrize("serial, not_after, usage, title, who", [
    ("0B01", end_of("2026-11-25"), "org", "오늘 인증서가 만료돼요", "한국지역정보개발원"),
    ("0B02", end_of("2026-11-26"), "epki-personal", "내일 인증서가 만료돼요", "교육기관(EPKI)"),
])
def test_the_last_days_and_who_to_ask(hd, serial, not_after, usage, title, who):
    add_holder(hd, "S0001")
    add_cert(hd, "S0001", serial, not_after, usage=usage)
    [group] = group_reminders(due_reminders(hd.store, NOW, SETTINGS))
    text = to_plain(render_reminder(hd, group).text)
    assert title in text and who in text


# -- /reminders and the mute button --------------------------------------------------------------------

def test_mute_and_unmute(hd, talk):
    talk.chat_id = add_holder(hd, "S0001")
    add_cert(hd, "S0001", "A1", end_of("2026-12-02"))
    talk.say("/reminders")
    assert "켜져 있어요" in talk.text()
    talk.press("rm:mute")
    assert "껐어요" in talk.text() and due_pairs(hd) == []
    talk.say("/reminders")
    assert "꺼져 있어요" in talk.text()
    talk.say("/reminders on")
    assert "켰어요" in talk.text() and due_pairs(hd) == [("S0001", "A1", 7)]
    talk.say("/reminders off")
    assert hd.store.db.execute("SELECT reminders_muted FROM holders").fetchone()[0] == 1
    talk.press("rm:on")
    assert hd.store.db.execute("SELECT reminders_muted FROM holders").fetchone()[0] == 0


def test_turning_reminders_on_clears_a_past_block(hd, talk):
    talk.chat_id = add_holder(hd, "S0001", unreachable=True)
    add_cert(hd, "S0001", "A1", end_of("2026-12-02"))
    assert due_pairs(hd) == []
    talk.say("/reminders on")
    assert due_pairs(hd) == [("S0001", "A1", 7)]


def test_a_blocked_holder_who_writes_again_is_reachable_again(hd, talk):
    talk.chat_id = add_holder(hd, "S0001")
    add_cert(hd, "S0001", "A1", end_of("2026-12-02"))
    hd.store.db.execute("UPDATE holders SET unreachable_at = ?", [to_iso(NOW - timedelta(hours=1))])
    assert due_pairs(hd) == []
    talk.say("인증서 비밀번호를 잊어버렸어요")  # any message: the core notes the chat's last_seen
    assert due_pairs(hd) == [("S0001", "A1", 7)]


def test_reminders_need_a_linked_chat(hd, talk):
    talk.say("/reminders off")
    assert "/link" in talk.text()
    talk.press_data("rm:mute")
    assert "/link" in talk.text()


# -- the staff digest -------------------------------------------------------------------------------------

def staffed(hd):
    hd.config = hd.config.with_overrides(staff_chat_id="staff")
    return hd


def test_digest_counts_per_agency_and_who_cannot_be_reached(hd):
    add_holder(hd, "S0001", agency="행정안전부")
    add_holder(hd, "S0002", agency="행정안전부", chat_id=None)
    add_holder(hd, "S0003", agency="교육부", unreachable=True)
    add_holder(hd, "S0004", agency="교육부", muted=True)
    add_holder(hd, "S0005", agency="교육부", chat_id=None)
    add_cert(hd, "S0001", "A1", end_of("2026-12-02"))
    add_cert(hd, "S0001", "A2", end_of("2026-12-02"), kind="env")
    add_cert(hd, "S0002", "B1", end_of("2026-12-20"))
    add_cert(hd, "S0003", "C1", end_of("2026-12-01"))
    add_cert(hd, "S0004", "D1", end_of("2026-11-30"))
    add_cert(hd, "S0005", "E1", end_of("2027-06-01"))  # not expiring soon
    add_cert(hd, "S0001", "F1", end_of("2026-12-03"), status="revoked")
    digest = build_digest(hd.store, NOW, 30)
    got = {a.agency: (a.certificates, a.holders, a.not_linked, a.unreachable, a.muted) for a in digest.agencies}
    assert got == {"행정안전부": (3, 2, 1, 0, 0), "교육부": (2, 2, 0, 1, 1)}
    assert (digest.total.certificates, digest.total.holders) == (5, 4)
    assert (digest.holders_total, digest.holders_not_linked, digest.holders_unreachable, digest.holders_muted) == (
        5, 2, 1, 1)


def test_digest_command_gives_staff_the_csv_files(hd, talk):
    staffed(hd)
    add_holder(hd, "S0001", agency="행정안전부")
    add_holder(hd, "S0002", agency="교육부", chat_id=None)
    add_cert(hd, "S0001", "A1", end_of("2026-12-02"))
    add_cert(hd, "S0002", "B1", end_of("2026-12-20"))
    talk.chat_id = "staff"
    replies = talk.say("/digest")
    assert "인증서 만료 현황" in to_plain(replies[0].text)
    assert "행정안전부: 1 / 1 / 0 / 0 / 0" in to_plain(replies[0].text)
    docs = {r.document.filename: r.document for r in replies if r.document}
    expiring = next(d for name, d in docs.items() if name.startswith("expiring-20261125"))
    rows = list(csv.DictReader(io.StringIO(expiring.content.decode("utf-8-sig"))))
    assert [(r["employee_id"], r["serial"], r["days_left"], r["linked"]) for r in rows] == [
        ("S0002", "B1", "25", "no"), ("S0001", "A1", "7", "yes")]
    holders = next(d for name, d in docs.items() if name.startswith("unreachable-"))
    rows = list(csv.DictReader(io.StringIO(holders.content.decode("utf-8-sig"))))
    assert [(r["employee_id"], r["problem"]) for r in rows] == [("S0002", "not_linked")]


def test_digest_is_for_the_staff_chat_only(hd, talk):
    staffed(hd)
    talk.say("/digest")
    assert "인증서 만료 현황" not in talk.text() and not any(r.document for r in talk.last)
