"""Expiry reminders: which certificate is due for which step, what the message says, and the sending log.

Steps are whole calendar days before the expiry date in Asia/Seoul (D-30 ... D-1, and D-0 on the day
itself). On a given day a certificate is due for its *latest* step whose day has come (the smallest
configured step >= days left), unless that step or a later one is already in the log: so a bot that
was down at D-14 and comes back at D-10 sends D-14 once ("10 days left"), never D-30 and D-14 in a pile.

Who gets one: holders linked to a chat, not muted, not marked unreachable (a 403), for certificates that
are `valid` in the registry (not revoked, not suspended: a suspended certificate is a matter for the
registration authority, and once it is restored its latest due step is sent), not expired, and not
replaced by a newer certificate of the same holder, usage and kind (a renewal or reissue).

Exactly once, per (holder, certificate, step) -- the UNIQUE key of `reminder_log`, which also holds the
certificate's not_after, so that a corrected expiry date of the same certificate gets its own reminders.
Around the one Bot API call (`sendMessage`) for a group:
1. `claim`: the group's rows are inserted as `sending` in one transaction, re-checking that the holder is
   still linked, unmuted and reachable and that no row exists yet (a concurrent sender loses here);
2. `mark_written`: as the request's body is handed to the network (the adapter learns it from its HTTP
   client; headers alone make the server do nothing), the rows become `written`. `mark_refused` turns them
   back when the server answers with an error status (the message was not delivered);
3. `settle`: `sent` (with message_id); `blocked` (403; the holder is marked unreachable in the same
   transaction); `failed` (another refusal, e.g. 400); or the claim is deleted and the step tried again
   when the call did not deliver (429, a 5xx answer, no connection, or a failure while still `sending`).
   A call that failed *after* its request went out (timeout, connection lost) is `unknown`.
A crash leaves `sending` rows (the request had not gone out whole: the server cannot have acted on it) and
`written` rows (it had). `recover`, at the start of the next run, drops the first (they are sent again) and
turns the second into `unknown` (never sent again: Telegram has no idempotency key nor a way to read a chat's
history, and a duplicate is what the official sees). That is exactly once but for two narrow cases, both
losses, never duplicates: a crash in the microseconds between the `written` commit and the body entering the
socket, and a crash while Telegram was refusing a request that had gone out (429/5xx: rare, as the batch
keeps under the limits). Each such holder still gets the next step.
"""
from __future__ import annotations

import csv
import io
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Iterable

from bot.clock import SEOUL, parse_instant, to_iso
from bot.config import ReminderSettings
from bot.store import Store
from bot.types import Button, Document, Reply

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

MUTE_ACTION = "rm:mute"
UNMUTE_ACTION = "rm:on"
STALE_SENDING = timedelta(minutes=15)  # longer than any one Bot API call with its timeouts
MMAP_BYTES = 1 << 30
# Who arranges a new certificate, by usage (gpki-facts.md section 6): personal ones the organisation's
# registration authority (configurable contact text), 기관용/서버용 KLID, EPKI the education office.
WHO_BY_USAGE = {"org": "klid", "server": "klid",
                "epki-personal": "epki", "epki-org": "epki", "epki-server": "epki", "epki-special": "epki"}


# -- time of day ------------------------------------------------------------------------------------

def clock_time(text: str) -> time:
    """"10:00" -> time(10, 0) (validated by bot/config.py)."""
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(now: datetime, settings: ReminderSettings) -> bool:
    """Whether `now` (Asia/Seoul) is within the quiet hours, which may wrap past midnight."""
    start, end = clock_time(settings.quiet_start), clock_time(settings.quiet_end)
    t = now.astimezone(SEOUL).time()
    if start == end:
        return False
    return start <= t < end if start < end else (t >= start or t < end)


def quiet_hours_end(now: datetime, settings: ReminderSettings) -> datetime:
    """When the current quiet period ends (now, if it is not quiet)."""
    if not in_quiet_hours(now, settings):
        return now
    local = now.astimezone(SEOUL)
    end = datetime.combine(local.date(), clock_time(settings.quiet_end), tzinfo=SEOUL)
    return end if end > local else end + timedelta(days=1)


def send_window_open(now: datetime, settings: ReminderSettings) -> bool:
    """The scheduled run sends from the daily send time on, outside the quiet hours (a late start catches up)."""
    local = now.astimezone(SEOUL)
    return local.time() >= clock_time(settings.send_time) and not in_quiet_hours(local, settings)


def step_for(days_left: int, steps: Iterable[int]) -> int | None:
    """The latest step whose day has come: the smallest step >= days_left (None: none due, or expired)."""
    if days_left < 0:
        return None
    due = [s for s in steps if s >= days_left]
    return min(due) if due else None


# -- what is due ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DueReminder:
    """One certificate due for one step today."""

    employee_id: str
    serial: str
    step: int
    not_after: str  # as stored in the registry (ISO-8601, Asia/Seoul)
    expires: datetime
    days_left: int  # calendar days from today to the expiry date, Asia/Seoul
    usage: str
    kind: str
    scheme: str
    chat_id: str | None
    name: str = ""
    agency: str = ""

    def as_json(self) -> dict:
        """The `helpdesk remind --dry-run --json` row (design.md)."""
        return {"employee_id": self.employee_id, "serial": self.serial, "step": self.step, "not_after": self.not_after}


@dataclass(frozen=True)
class ReminderGroup:
    """One message: a holder's certificates due at one step (a sig/env pair is one reminder)."""

    employee_id: str
    chat_id: str
    step: int
    items: tuple[DueReminder, ...]

    @property
    def days_left(self) -> int:
        return min(item.days_left for item in self.items)

    @property
    def key(self) -> str:
        return f"{self.employee_id}/D-{self.step}"


# A holder whom Telegram refused (403) is reachable again once they write to the bot (the core's `chats`).
_REACHABLE = ("(h.unreachable_at IS NULL OR EXISTS (SELECT 1 FROM chats ch WHERE ch.chat_id = h.chat_id"
              " AND ch.last_seen > h.unreachable_at))")

_DUE_SQL = """
SELECT c.employee_id, c.serial, c.usage, c.kind, c.scheme, c.not_after, h.chat_id, h.name, h.agency,
       (SELECT MIN(l.step) FROM reminder_log l
         WHERE l.employee_id = c.employee_id AND l.serial = c.serial AND l.not_after = c.not_after)
FROM certificates c {hint}
CROSS JOIN holders h ON h.employee_id = c.employee_id   -- CROSS JOIN: certificates (the not_after range) first
WHERE c.not_after > :low AND c.not_after < :high
  AND c.status = 'valid'
  {audience}
  AND NOT EXISTS (
      SELECT 1 FROM certificates n
      WHERE n.employee_id = c.employee_id AND n.usage = c.usage AND n.kind = c.kind
        AND n.not_after > c.not_after AND n.status != 'revoked')
"""


def due_reminders(store: Store, now: datetime, settings: ReminderSettings, *, use_index: bool = True,
                  any_holder: bool = False) -> list[DueReminder]:
    """Every certificate due for a reminder now, ordered by holder and serial (see the module docstring).

    The SQL range on `certificates.not_after` (indexed) is one day wider on each side than needed, so
    that an instant stored with another UTC offset is not missed; the exact test is done here in Seoul
    time. `use_index=False` is the benchmark's baseline (the same query over a full table scan);
    `any_holder=True` also lists what holders who cannot get a reminder (not linked, muted, blocked) would get.
    """
    local = now.astimezone(SEOUL)
    today = local.date()
    horizon = today + timedelta(days=max(settings.steps))
    low = to_iso(local - timedelta(days=1))
    high = to_iso(datetime.combine(horizon + timedelta(days=2), time(0), tzinfo=SEOUL))
    audience = "" if any_holder else f"AND h.chat_id IS NOT NULL AND h.reminders_muted = 0 AND {_REACHABLE}"
    sql = _DUE_SQL.format(hint="" if use_index else "NOT INDEXED", audience=audience)
    # Each candidate costs a few B-tree seeks in pages spread over the file: reading them through a memory
    # map rather than one read() each makes the selection about a third faster on a large registry.
    store.db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    due: list[DueReminder] = []
    for (employee_id, serial, usage, kind, scheme, not_after, chat_id, name, agency, logged) in store.db.execute(
            sql, {"low": low, "high": high}):
        expires = parse_instant(not_after)
        if expires <= local:
            continue
        days_left = (expires.date() - today).days
        step = step_for(days_left, settings.steps)
        if step is None or (logged is not None and logged <= step):
            continue  # not due yet, or this step (or a later one) was already sent or attempted
        due.append(DueReminder(employee_id, serial, step, not_after, expires, days_left, usage, kind, scheme,
                               chat_id, name or "", agency or ""))
    due.sort(key=lambda d: (d.employee_id, d.serial))
    return due


def group_reminders(due: Iterable[DueReminder]) -> list[ReminderGroup]:
    """One group per holder and step; the most urgent steps first (they matter most if a run is cut short)."""
    groups: dict[tuple[str, int], list[DueReminder]] = {}
    for item in due:
        groups.setdefault((item.employee_id, item.step), []).append(item)
    result = [ReminderGroup(emp, items[0].chat_id, step,
                            tuple(sorted(items, key=lambda i: (i.expires, i.usage, _KIND_ORDER.get(i.kind, 9), i.serial))))
              for (emp, step), items in groups.items()]
    result.sort(key=lambda g: (g.step, g.days_left, g.employee_id))
    return result


_KIND_ORDER = {"sig": 0, "env": 1}


# -- the message ------------------------------------------------------------------------------------

def certificate_label(hd: "Helpdesk", usage: str, kind: str) -> str:
    """"행정기관 개인용 서명용" from usage and kind."""
    usage_label = hd.msg(f"reminders.usage.{usage}") if hd.renderer.has_message(f"reminders.usage.{usage}") \
        else hd.msg("reminders.usage.unknown")
    kind_key = f"reminders.kind.{kind}"
    kind_label = hd.msg(kind_key) if hd.renderer.has_message(kind_key) else ""
    return " ".join(part for part in (usage_label, kind_label) if part)


def reminder_buttons(hd: "Helpdesk") -> tuple[tuple[Button, ...], ...]:
    """Check status and start a reissue (when those features are there), and mute."""
    first = tuple(hd.action_button(a) for a in ("status", "reissue") if hd.has_action(a))
    mute = (Button(hd.msg("reminders.button.mute"), MUTE_ACTION),)
    return (first, mute) if first else (mute,)


def render_reminder(hd: "Helpdesk", group: ReminderGroup) -> Reply:
    """The reminder message for one group, addressed to the holder's chat."""
    certs = [{"label": certificate_label(hd, i.usage, i.kind), "serial": i.serial, "expires": i.expires,
              "days_left": i.days_left} for i in group.items]
    whos: list[str] = []
    for item in group.items:
        who_key = WHO_BY_USAGE.get(item.usage)
        who = hd.msg(f"reminders.who.{who_key}") if who_key else hd.config.contact_text
        if who not in whos:
            whos.append(who)
    text = hd.text("reminders/reminder.j2", name=group.items[0].name, days_left=group.days_left,
                   certs=certs, whos=whos, can_reissue=hd.has_action("reissue"))
    return Reply(text, reminder_buttons(hd), chat_id=group.chat_id,
                 tags=("reminder", f"reminder:D-{group.step}"))


# -- the sending log ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendResult:
    """What the Bot API call for a group came to (the adapter maps its errors onto these)."""

    outcome: str  # sent | blocked | failed | retry (not delivered: try again) | in_doubt (see SendLog.settle)
    message_id: int | None = None
    retry_after: float = 0.0
    error: str = ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@dataclass
class SendLog:
    """The `reminder_log` table around each Bot API call (see the module docstring for the states)."""

    store: Store
    run_id: str = field(default_factory=lambda: f"{os.getpid()}.{secrets.token_hex(4)}")
    _counter: int = 0

    def new_attempt(self) -> str:
        self._counter += 1
        return f"{self.run_id}.{self._counter}"

    def claim(self, group: ReminderGroup, now: datetime) -> str | None:
        """Write the group's rows as `sending`; None if the holder is no longer eligible or a row exists."""
        db = self.store.db
        attempt = self.new_attempt()
        with self.store.transaction():
            eligible = db.execute(
                "SELECT 1 FROM holders h WHERE h.employee_id = ? AND h.chat_id = ? AND h.reminders_muted = 0 "
                f"AND {_REACHABLE}", [group.employee_id, group.chat_id]).fetchone()
            if eligible is None:
                return None
            for item in group.items:
                taken = db.execute(
                    "SELECT 1 FROM reminder_log WHERE employee_id = ? AND serial = ? AND not_after = ? AND step <= ?"
                    " LIMIT 1", [item.employee_id, item.serial, item.not_after, item.step]).fetchone()
                if taken is not None:
                    return None
            stamp = to_iso(now)
            db.conn.executemany(
                "INSERT INTO reminder_log (employee_id, serial, step, not_after, chat_id, attempt_id, state, claimed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'sending', ?)",
                [(i.employee_id, i.serial, i.step, i.not_after, group.chat_id, attempt, stamp) for i in group.items])
        return attempt

    def mark_written(self, attempt: str) -> None:
        """The request's body is going out: from now on the message counts as sent unless the server refuses it."""
        self.store.db.execute("UPDATE reminder_log SET state = 'written' WHERE attempt_id = ? AND state = 'sending'",
                              [attempt])

    def mark_refused(self, attempt: str) -> None:
        """The server answered the request with an error status: it was not delivered after all."""
        self.store.db.execute("UPDATE reminder_log SET state = 'sending' WHERE attempt_id = ? AND state = 'written'",
                              [attempt])

    def settle(self, attempt: str, group: ReminderGroup, result: SendResult, now: datetime) -> str:
        """Record the outcome of the call made for `attempt`; returns the outcome that stands ("retry" when an
        in-doubt call is known never to have left whole, "in_doubt" when it had)."""
        db = self.store.db
        stamp = to_iso(now)
        outcome = result.outcome
        with self.store.transaction():
            if outcome == "in_doubt":
                written = db.execute("SELECT 1 FROM reminder_log WHERE attempt_id = ? AND state = 'written' LIMIT 1",
                                     [attempt]).fetchone()
                outcome = "in_doubt" if written else "retry"
            if outcome == "sent":
                db.execute("UPDATE reminder_log SET state = 'sent', sent_at = ?, message_id = ? WHERE attempt_id = ?",
                           [stamp, result.message_id, attempt])
            elif outcome == "retry":
                db.execute("DELETE FROM reminder_log WHERE attempt_id = ?", [attempt])
            elif outcome == "blocked":
                db.execute("UPDATE reminder_log SET state = 'blocked', error = ? WHERE attempt_id = ?",
                           [result.error[:200], attempt])
                db.execute("UPDATE holders SET unreachable_at = ? WHERE employee_id = ? AND chat_id = ?",
                           [stamp, group.employee_id, group.chat_id])
            elif outcome == "failed":
                db.execute("UPDATE reminder_log SET state = 'failed', error = ? WHERE attempt_id = ?",
                           [result.error[:200], attempt])
            else:  # the whole request went out and no answer came back: counted as sent, never repeated
                db.execute("UPDATE reminder_log SET state = 'unknown', error = ? WHERE attempt_id = ?",
                           [result.error[:200], attempt])
        return outcome

    def recover(self, now: datetime, alive=_pid_alive) -> tuple[int, int]:
        """After a crash: the claims of processes that are gone. `sending` ones never left whole, so they are
        dropped and sent again; `written` ones left, so they become `unknown` and are not repeated. A claim
        older than STALE_SENDING counts as gone whatever its process id says (ids are reused).
        Returns (claims dropped, claims left in doubt), in messages."""
        rows = self.store.db.execute(
            "SELECT DISTINCT attempt_id, state, claimed_at FROM reminder_log WHERE state IN ('sending', 'written')"
        ).fetchall()
        stale_before = to_iso(now - STALE_SENDING)
        gone = {}
        for attempt, state, claimed_at in rows:
            run, _, _ = attempt.rpartition(".")
            if run == self.run_id:
                continue
            pid = attempt.split(".", 1)[0]
            if claimed_at < stale_before or not (pid.isdigit() and alive(int(pid))):
                gone[attempt] = state
        dropped = [a for a, st in gone.items() if st == "sending"]
        doubtful = [a for a, st in gone.items() if st == "written"]
        with self.store.transaction():
            for attempt in dropped:
                self.store.db.execute("DELETE FROM reminder_log WHERE attempt_id = ? AND state = 'sending'", [attempt])
            for attempt in doubtful:
                self.store.db.execute("UPDATE reminder_log SET state = 'unknown', error = 'interrupted after sending'"
                                      " WHERE attempt_id = ? AND state = 'written'", [attempt])
        return len(dropped), len(doubtful)


def log_counts(store: Store, since: datetime | None = None) -> dict[str, int]:
    """Messages (a pair is one) in the sending log per state, since a time if given."""
    sql = "SELECT state, COUNT(DISTINCT attempt_id) FROM reminder_log"
    params: list = []
    if since is not None:
        sql += " WHERE claimed_at >= ?"
        params.append(to_iso(since))
    counts = {"sending": 0, "written": 0, "sent": 0, "blocked": 0, "failed": 0, "unknown": 0}
    counts.update({state: n for state, n in store.db.execute(sql + " GROUP BY state", params)})
    return counts


# -- the staff digest ---------------------------------------------------------------------------------

@dataclass
class AgencyLine:
    agency: str
    certificates: int = 0
    holders: int = 0
    not_linked: int = 0
    unreachable: int = 0
    muted: int = 0


@dataclass
class Digest:
    """What staff see each morning: expiring certificates per agency, and whom reminders cannot reach."""

    today: date
    days: int
    agencies: list[AgencyLine]
    total: AgencyLine
    holders_total: int
    holders_not_linked: int
    holders_unreachable: int
    holders_muted: int
    log_last_day: dict[str, int]


_EXPIRING_SQL = """
SELECT COALESCE(h.agency, ''), COALESCE(h.agency_code, ''), COALESCE(h.department, ''), c.employee_id,
       COALESCE(h.name, ''), c.usage, c.kind, c.serial, c.not_after, h.chat_id,
       CASE WHEN NOT {reachable} THEN h.unreachable_at END,
       COALESCE(h.reminders_muted, 0),
       (SELECT MIN(l.step) FROM reminder_log l WHERE l.employee_id = c.employee_id AND l.serial = c.serial
          AND l.not_after = c.not_after AND l.state = 'sent')
FROM certificates c
LEFT JOIN holders h ON h.employee_id = c.employee_id
WHERE c.not_after > :low AND c.not_after < :high AND c.status = 'valid'
  AND NOT EXISTS (
      SELECT 1 FROM certificates n
      WHERE n.employee_id = c.employee_id AND n.usage = c.usage AND n.kind = c.kind
        AND n.not_after > c.not_after AND n.status != 'revoked')
ORDER BY 1, c.not_after, c.employee_id
"""

CSV_EXPIRING_COLUMNS = ("agency", "agency_code", "department", "employee_id", "name", "usage", "kind", "serial",
                        "not_after", "days_left", "linked", "unreachable", "muted", "last_reminder")
CSV_HOLDER_COLUMNS = ("agency", "agency_code", "department", "employee_id", "name", "problem", "since",
                      "next_expiry")


def expiring_rows(store: Store, now: datetime, days: int) -> list[dict]:
    """Valid, unreplaced certificates expiring within `days` days, with their holder's reachability."""
    local = now.astimezone(SEOUL)
    end = datetime.combine(local.date() + timedelta(days=days + 1), time(0), tzinfo=SEOUL)
    rows = []
    for (agency, code, dept, emp, name, usage, kind, serial, not_after, chat_id, unreachable, muted,
         last) in store.db.execute(_EXPIRING_SQL.format(reachable=_REACHABLE), {"low": to_iso(local), "high": to_iso(end)}):
        expires = parse_instant(not_after)
        rows.append({"agency": agency, "agency_code": code, "department": dept, "employee_id": emp or "",
                     "name": name, "usage": usage, "kind": kind, "serial": serial, "not_after": not_after,
                     "days_left": (expires.date() - local.date()).days,
                     "linked": "yes" if chat_id else "no", "unreachable": "yes" if unreachable else "no",
                     "muted": "yes" if muted else "no", "last_reminder": f"D-{last}" if last is not None else ""})
    return rows


def build_digest(store: Store, now: datetime, days: int) -> Digest:
    """Counts for the staff digest."""
    lines: dict[str, AgencyLine] = {}
    seen: dict[str, set[str]] = {}
    total = AgencyLine("")
    holders_seen: set[str] = set()
    for row in expiring_rows(store, now, days):
        line = lines.setdefault(row["agency"], AgencyLine(row["agency"]))
        line.certificates += 1
        total.certificates += 1
        emp = row["employee_id"]
        if emp in seen.setdefault(row["agency"], set()):
            continue
        seen[row["agency"]].add(emp)
        for target in (line, total) if emp not in holders_seen else (line,):
            target.holders += 1
            target.not_linked += row["linked"] == "no"
            target.unreachable += row["linked"] == "yes" and row["unreachable"] == "yes"
            target.muted += row["linked"] == "yes" and row["unreachable"] == "no" and row["muted"] == "yes"
        holders_seen.add(emp)
    h_total, h_not_linked, h_unreachable, h_muted = store.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(chat_id IS NULL), 0), "
        f"COALESCE(SUM(chat_id IS NOT NULL AND NOT {_REACHABLE}), 0), "
        f"COALESCE(SUM(chat_id IS NOT NULL AND {_REACHABLE} AND reminders_muted != 0), 0) FROM holders h"
    ).fetchone()
    agencies = sorted(lines.values(), key=lambda a: (-a.certificates, a.agency))
    return Digest(now.astimezone(SEOUL).date(), days, agencies, total, h_total, h_not_linked, h_unreachable,
                  h_muted, log_counts(store, since=now - timedelta(days=1)))


def holders_to_follow_up(store: Store, now: datetime) -> list[dict]:
    """Holders with a valid certificate not yet expired whom reminders cannot reach (not linked, or 403)."""
    rows = []
    for agency, code, dept, emp, name, chat_id, unreachable, next_expiry in store.db.execute(
            "SELECT h.agency, h.agency_code, h.department, h.employee_id, h.name, h.chat_id, h.unreachable_at, "
            "(SELECT MIN(c.not_after) FROM certificates c WHERE c.employee_id = h.employee_id "
            "  AND c.status = 'valid' AND c.not_after > ?) AS next_expiry "
            f"FROM holders h WHERE (h.chat_id IS NULL OR NOT {_REACHABLE}) "
            "AND next_expiry IS NOT NULL ORDER BY h.agency, next_expiry, h.employee_id", [to_iso(now)]):
        rows.append({"agency": agency, "agency_code": code, "department": dept, "employee_id": emp, "name": name,
                     "problem": "not_linked" if chat_id is None else "unreachable",
                     "since": unreachable or "", "next_expiry": next_expiry})
    return rows


def csv_document(filename: str, rows: list[dict], columns: tuple[str, ...]) -> Document:
    """UTF-8 with a byte-order mark, so that Excel on a Korean Windows PC shows Hangul correctly."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return Document(filename, ("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv")


def render_digest(hd: "Helpdesk", digest: Digest, *, max_agencies: int = 20) -> str:
    return hd.text("reminders/digest.j2", d=digest, agencies=digest.agencies[:max_agencies],
                   more=max(0, len(digest.agencies) - max_agencies))


def digest_replies(hd: "Helpdesk", now: datetime, *, with_files: bool, chat_id: str | None = None,
                   store: Store | None = None) -> list[Reply]:
    """The digest message; with the two CSV files when staff ask with /digest. `store`: another connection."""
    store = store or hd.store
    days = hd.config.reminders.digest_days
    digest = build_digest(store, now, days)
    replies = [Reply(render_digest(hd, digest), chat_id=chat_id, tags=("reminders:digest",))]
    if with_files:
        stamp = now.astimezone(SEOUL).strftime("%Y%m%d")
        replies.append(Reply(hd.msg("reminders.digest.file_expiring", days=days), chat_id=chat_id,
                             document=csv_document(f"expiring-{stamp}.csv", expiring_rows(store, now, days),
                                                   CSV_EXPIRING_COLUMNS), tags=("reminders:csv",)))
        replies.append(Reply(hd.msg("reminders.digest.file_holders"), chat_id=chat_id,
                             document=csv_document(f"unreachable-{stamp}.csv", holders_to_follow_up(store, now),
                                                   CSV_HOLDER_COLUMNS), tags=("reminders:csv",)))
    return replies


DIGEST_META_KEY = "reminders.digest_day"


def digest_due(hd: "Helpdesk", now: datetime) -> bool:
    """The daily digest: a staff chat is configured, its time has come, not quiet, not yet sent today."""
    settings = hd.config.reminders
    local = now.astimezone(SEOUL)
    return (bool(hd.config.staff_chat_id) and local.time() >= clock_time(settings.digest_time)
            and not in_quiet_hours(local, settings) and hd.store.meta_get(DIGEST_META_KEY) != local.date().isoformat())


def mark_digest_sent(store: Store, now: datetime) -> None:
    store.meta_set(DIGEST_META_KEY, now.astimezone(SEOUL).date().isoformat())
