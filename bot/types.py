"""The plain data that flows between adapters and the core: Inbound in, Reply out. No telegram objects."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Button:
    """An inline button: a label and short ASCII callback data (<= 64 bytes)."""

    label: str
    action: str

    def __post_init__(self) -> None:
        if len(self.action.encode("ascii")) > 64:
            raise ValueError(f"callback data over 64 bytes: {self.action!r}")


@dataclass(frozen=True)
class Document:
    """A file, in memory only."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Inbound:
    """One thing a user did: a text, a button press (`action`), or a file (`document`)."""

    chat_id: str
    user_id: str
    text: str = ""
    action: str | None = None
    document: Document | None = None
    user_name: str = ""
    channel: str = "console"  # console | telegram
    chat_type: str = "private"  # private | group | supergroup
    thread_id: int | None = None
    message_id: int | None = None
    reply_to_message_id: int | None = None

    @property
    def is_private(self) -> bool:
        return self.chat_type == "private"


@dataclass(frozen=True)
class Reply:
    """One message the bot sends. `text` is Telegram HTML (the console strips it to plain text)."""

    text: str = ""
    buttons: tuple[tuple[Button, ...], ...] = ()
    document: Document | None = None
    chat_id: str | None = None  # None: the chat the inbound came from
    thread_id: int | None = None  # forum topic in the target chat
    reply_to_message_id: int | None = None
    tags: tuple[str, ...] = field(default=())  # what the reply is (e.g. "answer:password.forgotten"), for logs/tests

    def all_buttons(self) -> list[Button]:
        """Buttons in reading order."""
        return [button for row in self.buttons for button in row]
