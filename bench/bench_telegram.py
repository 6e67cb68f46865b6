"""`helpdesk run` end to end through the fake Bot API (tests/fake_telegram.py) on 127.0.0.1.

1. Throughput: 100 users x 20 questions each, every user asking the next question as soon as the answer
   to the last one arrived (closed loop). First a minimal python-telegram-bot echo bot (PTB's own Updater
   and httpx transport, no rate limiter), then `helpdesk run`, against the same server in the same run.
   Telegram's pacing would decide both figures (30 messages/s overall), so here the server allows 1,000/s
   and the helpdesk is configured to 900/s without per-chat pacing: what is measured is the adapter's own
   cost (durable inbox, SQLite, the core's matching, its aiohttp transport). Reported: questions answered
   per second, p50/p99 latency from a question to its first reply, CPU per question of each bot process,
   the ratio to the echo bot (target >= 0.7), lost and duplicated replies (target 0 each).
2. Telegram's limits: the server enforces 30 messages/s overall and 1/s per chat (bursts of 4), the
   helpdesk runs with its defaults (30/s spread evenly, 1/s per chat with bursts of 3): 100 users x 5
   questions. Reported: throughput against the 30/s limit and the 429 answers the bot caused (target 0).
3. Idle RSS of `helpdesk run` once started (target <= 150 MB), and after phase 1.

The figures move with the machine's load (the load average is printed); CPU per question moves least.
Run: .venv/bin/python bench/bench_telegram.py [--quick]   (--quick: 20 users; phase 2 with 3 questions)
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_telegram import Call, FakeTelegram  # noqa: E402

NOW = "2026-11-25T10:00:00+09:00"


@dataclass
class User:
    chat_id: int
    questions: list[str]
    expected: list[int]  # messages the bot sends for each question
    index: int = 0
    got: int = 0
    asked_at: float = 0.0
    received: int = 0


@dataclass
class ClosedLoop:
    """Users who ask their next question the moment the previous answer is complete (run in the server thread)."""

    fake: FakeTelegram
    users: dict[int, User]
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    _left: int = 0

    def run(self, timeout: float) -> bool:
        self._left = len(self.users)
        self.fake.on_message = self._on_message
        self.started = time.monotonic()
        for user in self.users.values():
            self._ask(user)
        ok = self.done.wait(timeout)
        time.sleep(1.0)  # late duplicates would show up now
        self.fake.on_message = None
        return ok

    def _ask(self, user: User) -> None:
        user.asked_at = time.monotonic()
        self.fake.send_text(user.chat_id, user.questions[user.index])

    def _on_message(self, call: Call) -> None:
        user = self.users.get(call.chat_id)
        if user is None:
            return
        user.received += 1
        if user.index >= len(user.questions):
            return  # a duplicate: counted in `received`
        user.got += 1
        if user.got == 1:
            self.latencies.append(call.at - user.asked_at)
        if user.got < user.expected[user.index]:
            return
        user.index, user.got = user.index + 1, 0
        if user.index < len(user.questions):
            self._ask(user)
            return
        self.finished = max(self.finished, call.at)
        self._left -= 1
        if self._left == 0:
            self.done.set()

    def report(self, label: str) -> dict:
        asked = sum(len(u.questions) for u in self.users.values())
        answered = sum(min(u.index, len(u.questions)) for u in self.users.values())
        expected = sum(sum(u.expected) for u in self.users.values())
        received = sum(u.received for u in self.users.values())
        elapsed = (self.finished or time.monotonic()) - self.started
        quantiles = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else [0.0] * 99
        figures = {"throughput": answered / elapsed, "p50": quantiles[49] * 1000, "p99": quantiles[98] * 1000,
                   "lost": expected - min(received, expected) if answered < asked else 0,
                   "duplicated": max(received - expected, 0), "answered": answered, "asked": asked,
                   "elapsed": elapsed}
        print(f"[{label}] {answered}/{asked} questions in {elapsed:.1f} s: {figures['throughput']:.1f} answered/s, "
              f"latency p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms; lost {figures['lost']}, "
              f"duplicated {figures['duplicated']}", flush=True)
        return figures


def questions_for(users: int, per_user: int) -> dict[int, list[str]]:
    lines = (ROOT / "tests" / "data" / "faq_dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    pool = [line.split("\t")[1] for line in lines if "\t" in line]
    return {10_000 + u: [pool[(u * 37 + i * 11) % len(pool)] for i in range(per_user)] for u in range(users)}


def expected_messages(asked: dict[int, list[str]]) -> dict[int, list[int]]:
    """How many messages the bot sends for each question: the same core, in-process, on a fresh database."""
    from bot.config import load_config
    from bot.helpdesk import Helpdesk
    from bot.types import Inbound
    from handlers.convert import parts

    with tempfile.TemporaryDirectory() as folder:
        hd = Helpdesk(load_config(environ={"HELPDESK_DB": f"{folder}/expect.db", "HELPDESK_PII_KEY": "bench",
                                           "HELPDESK_NOW": NOW}))
        counts = {}
        for chat, questions in asked.items():
            counts[chat] = []
            for question in questions:
                replies = hd.handle(Inbound(chat_id=str(chat), user_id=str(chat), text=question, channel="telegram",
                                            user_name="테스터"))
                counts[chat].append(sum(len(parts(r)) for r in replies if r.chat_id in (None, str(chat))))
        hd.close()
    return counts


def start(fake: FakeTelegram, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    mark = len(fake.calls_of())
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    fake.wait_until(lambda: proc.poll() is not None or any(c.method == "getUpdates" for c in fake.calls_of()[mark:]),
                    60, "the bot to poll")
    if proc.poll() is not None:
        raise SystemExit(f"{command} exited with {proc.returncode}: see {log}\n{log.read_text()[-2000:]}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bot_env(fake: FakeTelegram, db: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(fake.env(), HELPDESK_DB=db, HELPDESK_PII_KEY="bench", HELPDESK_NOW=NOW, **extra)
    return env


def run_phase(label: str, command: list[str], env_extra: dict[str, str], asked: dict[int, list[str]],
              expected: dict[int, list[int]], folder: str, limits: dict, measure_rss: bool = False) -> dict:
    with FakeTelegram() as fake:
        fake.limit(**limits)
        env = bot_env(fake, f"{folder}/{label}.db", **env_extra)
        proc = start(fake, command, env, Path(folder) / f"{label}.log")
        idle = 0.0
        if measure_rss:
            time.sleep(2.0)
            idle = rss_mb(proc.pid)
        users = {chat: User(chat, questions, expected[chat]) for chat, questions in asked.items()}
        loop = ClosedLoop(fake, users)
        cpu_before = cpu_seconds(proc.pid)
        completed = loop.run(timeout=600)
        cpu = cpu_seconds(proc.pid) - cpu_before
        figures = loop.report(label)
        figures.update(flood_429s=fake.flood_429s, completed=completed, idle_rss=idle,
                       loaded_rss=rss_mb(proc.pid) if measure_rss else 0.0,
                       cpu_ms=1000 * cpu / max(figures["answered"], 1))
        print(f"[{label}] CPU of the bot process: {figures['cpu_ms']:.2f} ms per question", flush=True)
        stop(proc)
    return figures


def main() -> int:
    quick = "--quick" in sys.argv
    users = 20 if quick else 100
    python = sys.executable
    lab = {"overall_rate": 1000, "overall_burst": 1000}
    with tempfile.TemporaryDirectory(prefix="bench-telegram-") as folder:
        asked = questions_for(users, 20)
        expected = expected_messages(asked)
        echo_expected = {chat: [1] * len(qs) for chat, qs in asked.items()}
        print(f"[setup] {users} users x 20 questions; the helpdesk sends {sum(map(sum, expected.values()))} "
              f"messages for them", flush=True)
        echo = run_phase("echo bot", [python, str(Path(__file__).resolve()), "--echo-bot"], {}, asked, echo_expected,
                         folder, lab)
        helpdesk = run_phase("helpdesk run", [python, "-m", "bot", "run"],
                             {"HELPDESK_TELEGRAM_OVERALL_RATE": "900", "HELPDESK_TELEGRAM_CHAT_RATE": "0"},
                             asked, expected, folder, lab, measure_rss=True)
        ratio = helpdesk["throughput"] / echo["throughput"]
        print(f"[throughput] helpdesk {helpdesk['throughput']:.1f}/s vs echo bot {echo['throughput']:.1f}/s: "
              f"ratio {ratio:.2f} (target >= 0.7: {'PASS' if ratio >= 0.7 else 'FAIL'})")
        print(f"[cpu] per question: helpdesk {helpdesk['cpu_ms']:.2f} ms vs echo bot {echo['cpu_ms']:.2f} ms "
              f"(the core's matching and SQLite included); load average now {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")
        clean = helpdesk["lost"] == 0 and helpdesk["duplicated"] == 0 and helpdesk["completed"]
        print(f"[replies] lost {helpdesk['lost']}, duplicated {helpdesk['duplicated']} (target 0: "
              f"{'PASS' if clean else 'FAIL'}); 429s caused by the bot: {helpdesk['flood_429s']}")

        per_user = 3 if quick else 5
        paced_asked = {chat: qs[:per_user] for chat, qs in asked.items()}
        paced_expected = {chat: counts[:per_user] for chat, counts in expected.items()}
        paced = run_phase("telegram limits", [python, "-m", "bot", "run"], {}, paced_asked, paced_expected, folder,
                          {"overall_rate": 30, "overall_burst": 30, "chat_rate": 1, "chat_burst": 4})
        sent = sum(map(sum, paced_expected.values()))
        rate = sent / paced["elapsed"]
        polite = paced["flood_429s"] == 0 and paced["lost"] == 0 and paced["duplicated"] == 0
        print(f"[limits] {sent} messages at {rate:.1f}/s against the server's 30/s ({100 * rate / 30:.0f} %); "
              f"429s caused by the bot {paced['flood_429s']} (target 0: {'PASS' if polite else 'FAIL'})")
        print(f"[memory] helpdesk run RSS idle {helpdesk['idle_rss']:.1f} MB (target <= 150 MB: "
              f"{'PASS' if helpdesk['idle_rss'] <= 150 else 'FAIL'}), after phase 1 {helpdesk['loaded_rss']:.1f} MB")
        ok = ratio >= 0.7 and clean and polite and helpdesk["idle_rss"] <= 150 and helpdesk["flood_429s"] == 0
    return 0 if ok else 1


def echo_bot() -> None:
    """The baseline: python-telegram-bot's echo bot, as in its examples (PTB's Updater, no rate limiter)."""
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text)

    app = (ApplicationBuilder().token(os.environ["HELPDESK_TELEGRAM_TOKEN"])
           .base_url(os.environ["HELPDESK_TELEGRAM_BASE_URL"])
           .base_file_url(os.environ["HELPDESK_TELEGRAM_BASE_FILE_URL"]).build())
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.run_polling()


if __name__ == "__main__":
    if "--echo-bot" in sys.argv:
        echo_bot()
    else:
        sys.exit(main())
