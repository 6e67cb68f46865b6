"""The terminal chat (`helpdesk chat`): the same core as Telegram, buttons shown as numbered choices."""
from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from bot.helpdesk import Helpdesk
from bot.render import to_plain
from bot.types import Button, Document, Inbound, Reply

PROMPT = "나> "
QUIT = {"/quit", "/exit", "/q"}
MAX_FILE_BYTES = 1_000_000


def display_width(text: str) -> int:
    """Terminal columns: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@dataclass
class ConsoleChat:
    """A chat session in a terminal. `step` handles one line and returns what was printed (for tests)."""

    hd: Helpdesk
    chat_id: str = "console:local"
    user_name: str = ""
    out: TextIO = field(default_factory=lambda: sys.stdout)
    choices: list[Button] = field(default_factory=list)

    def show(self, replies: list[Reply]) -> None:
        """Print replies; remember their buttons as numbered choices."""
        self.choices = []
        for reply in replies:
            if reply.chat_id not in (None, self.chat_id):
                continue  # meant for another chat (e.g. the staff chat)
            self.out.write("\n" + _indent(to_plain(reply.text)) + "\n")
            if reply.document is not None:
                saved = self._save_document(reply.document)
                self.out.write(f"  📎 {reply.document.filename} -> {saved}\n")
            for button in reply.all_buttons():
                self.choices.append(button)
                self.out.write(f"  [{len(self.choices)}] {button.label}\n")
        self.out.write("\n")
        self.out.flush()

    def _save_document(self, document: Document) -> str:
        path = Path.cwd() / document.filename
        path.write_bytes(document.content)
        return str(path)

    def inbound_for(self, line: str) -> Inbound | None:
        """Turn a typed line into an Inbound: a number picks a button, `/file PATH` sends a file."""
        line = line.strip()
        base = dict(chat_id=self.chat_id, user_id=self.chat_id, user_name=self.user_name, channel="console")
        if line.isdigit() and len(line) <= 2 and self.choices:  # longer numbers are answers (a code, a phone)
            index = int(line) - 1
            if 0 <= index < len(self.choices):
                return Inbound(action=self.choices[index].action, **base)
            self.out.write("  " + self._say("console.pick_range", count=len(self.choices)) + "\n")
            return None
        if line.startswith("/file"):
            return self._file_inbound(line[5:].strip(), base)
        return Inbound(text=line, **base)

    def _file_inbound(self, raw_path: str, base: dict) -> Inbound | None:
        path = Path(raw_path).expanduser()
        if not raw_path or not path.is_file():
            self.out.write("  " + self._say("console.file_usage") + "\n")
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            self.out.write("  " + self._say("console.file_too_big") + "\n")
            return None
        return Inbound(document=Document(path.name, path.read_bytes()), **base)

    def _say(self, key: str, **context) -> str:
        return to_plain(self.hd.msg(key, **context))

    def step(self, line: str) -> None:
        """Handle one typed line."""
        inbound = self.inbound_for(line)
        if inbound is not None:
            self.show(self.hd.handle(inbound))

    def poll(self) -> None:
        """Show messages other chats queued for this one (e.g. staff answers), if a feature provides them."""
        pending: Callable[[str], list[Reply]] | None = getattr(self.hd, "pending_for", None)
        if pending is not None:
            replies = pending(self.chat_id)
            if replies:
                self.show(replies)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else "" for line in text.splitlines())


def run_console(hd: Helpdesk, chat_id: str = "console:local", user_name: str = "",
                stdin: TextIO | None = None, opening: str = "/start") -> int:
    """The interactive loop; returns the exit code."""
    interactive = stdin is None and sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for Korean input)
        except ImportError:
            pass
    stdin = stdin or sys.stdin
    chat = ConsoleChat(hd, chat_id=chat_id, user_name=user_name)
    chat.out.write(chat._say("console.banner") + "\n")
    chat.step(opening)
    while True:
        chat.poll()
        try:
            line = input(PROMPT) if interactive else _read_line(stdin, chat.out)
        except (EOFError, KeyboardInterrupt):
            chat.out.write("\n")
            break
        if line is None:
            break
        if line.strip().lower() in QUIT:
            break
        if not line.strip():
            continue
        try:
            chat.step(line)
        except Exception as exc:  # the session goes on; the operator sees what failed
            import logging

            logging.getLogger("helpdesk.console").exception("turn failed")
            chat.out.write("  " + chat._say("console.failed") + f" ({type(exc).__name__})\n")
    chat.out.write(chat._say("console.bye") + "\n")
    return 0


def _read_line(stdin: TextIO, out: TextIO) -> str | None:
    out.write(PROMPT)
    out.flush()
    line = stdin.readline()
    if not line:
        return None
    return line.rstrip("\n")
