"""Running `helpdesk run` as a subprocess against the fake Bot API (tests/fake_telegram.py).

    with FakeTelegram() as fake:
        bot = BotProcess(fake, tmp_path).start()      # returns once it polls getUpdates
        fake.send_text(1001, "/start")
        fake.wait_messages(1001, 1)
        assert bot.stop() == 0                          # SIGTERM: a clean exit
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
TEST_NOW = "2026-11-25T10:00:00+09:00"  # the same Wednesday morning as tests/conftest.py


def bot_env(fake: FakeTelegram | None, db_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for `helpdesk run` (no HELPDESK_* of the developer's shell leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    if fake is not None:
        env.update(fake.env())
    env.update(HELPDESK_DB=str(db_path), HELPDESK_PII_KEY="test-pii-key", HELPDESK_NOW=TEST_NOW,
               HELPDESK_TELEGRAM_POLL_SECONDS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def helpdesk(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a `helpdesk` command (e.g. `demo seed`) on the same settings."""
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


class BotProcess:
    """`helpdesk run` in a subprocess, its output in a log file."""

    def __init__(self, fake: FakeTelegram, tmp_path: Path, db_path: Path | None = None, **env: str) -> None:
        self.fake = fake
        self.db_path = db_path or tmp_path / "helpdesk.db"
        self.log_path = tmp_path / "bot.log"
        self.env = bot_env(fake, self.db_path, **env)
        self.proc: subprocess.Popen | None = None

    def start(self, ready: str = "getUpdates", timeout: float = 60) -> "BotProcess":
        """Start; wait until it makes its first `ready` call (getUpdates, or setWebhook for a webhook)."""
        mark = len(self.fake.calls_of())
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.fake.wait_until(
            lambda: self.proc.poll() is not None or any(c.method == ready for c in self.fake.calls_of()[mark:]),
            timeout, f"`helpdesk run` to call {ready}")
        if self.proc.poll() is not None:
            raise AssertionError(f"helpdesk run exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def rss_mb(self) -> float:
        """Resident memory of the process (Linux /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        """Read the bot's database (WAL mode: readers do not disturb the running bot)."""
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    """Poll `predicate` until truthy (for things the fake does not see, like database rows)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
