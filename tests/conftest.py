"""Shared fixtures: a fresh SQLite file per test, a fixed clock, and a way to talk to the bot as text."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import SEOUL, FixedClock
from bot.config import Config, load_config
from bot.helpdesk import Helpdesk
from bot.render import to_plain
from bot.types import Button, Document, Inbound, Reply

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=SEOUL)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "helpdesk.db"


@pytest.fixture
def config(db_path: Path) -> Config:
    return load_config(environ={"HELPDESK_DB": str(db_path), "HELPDESK_PII_KEY": "test-pii-key"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def hd(config: Config, clock: FixedClock) -> Helpdesk:
    helpdesk = Helpdesk(config, clock=clock)
    yield helpdesk
    helpdesk.close()


@dataclass
class Talk:
    """A user talking to the bot: `say` text, `press` a button by label or data, `send` a file."""

    hd: Helpdesk
    chat_id: str = "console:tester"
    user_name: str = "테스터"
    last: list[Reply] = field(default_factory=list)

    def _inbound(self, **kwargs) -> Inbound:
        return Inbound(chat_id=self.chat_id, user_id=self.chat_id, user_name=self.user_name, **kwargs)

    def say(self, text: str) -> list[Reply]:
        self.last = self.hd.handle(self._inbound(text=text))
        return self.last

    def press(self, label_or_action: str) -> list[Reply]:
        for button in self.buttons():
            if label_or_action in (button.label, button.action):
                self.last = self.hd.handle(self._inbound(action=button.action))
                return self.last
        raise AssertionError(f"no button {label_or_action!r} among {[b.label for b in self.buttons()]}")

    def press_data(self, action: str) -> list[Reply]:
        self.last = self.hd.handle(self._inbound(action=action))
        return self.last

    def send(self, filename: str, content: bytes) -> list[Reply]:
        self.last = self.hd.handle(self._inbound(document=Document(filename, content)))
        return self.last

    def text(self) -> str:
        return "\n".join(to_plain(r.text) for r in self.last if r.chat_id in (None, self.chat_id))

    def buttons(self) -> list[Button]:
        return [b for r in self.last if r.chat_id in (None, self.chat_id) for b in r.all_buttons()]

    def tags(self) -> list[str]:
        return [t for r in self.last for t in r.tags]


@pytest.fixture
def talk(hd: Helpdesk) -> Talk:
    return Talk(hd)
