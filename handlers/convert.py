"""Update -> Inbound, and Reply -> the Bot API calls that send it (HTML parts of <= 4,096, inline keyboards)."""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from telegram import (InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, MessageEntity,
                      ReplyParameters, Update)
from telegram.constants import ParseMode

from bot.types import Button, Document, Inbound, Reply

MAX_TEXT = 4096  # Telegram's limit for one message, after entity parsing
_PIECE = MAX_TEXT - 256  # longest piece of one line: leaves room to close and reopen tags around it
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_ATOM = re.compile(r"<[^>]*>|&#?\w+;|\s+|[^<&\s]+|[<&]")


# -- Update -> Inbound -------------------------------------------------------------------------------
def chat_key(update: Update) -> str:
    """The chat an update belongs to: its updates are handled one at a time, in order."""
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    if update.effective_user is not None:
        return f"user:{update.effective_user.id}"
    return "other"


def is_addressed(message: Message, username: str, bot_id: int) -> bool:
    """In a group the bot answers only a command for it, a mention of it, or a reply to one of its messages."""
    if message.chat.type == "private":
        return True
    reply_to = message.reply_to_message
    if reply_to is not None and reply_to.from_user is not None and reply_to.from_user.id == bot_id:
        return True
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities or ()
    for entity in entities:
        part = _entity_text(text, entity)
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            target = part.partition("@")[2]
            if not target or target.lower() == username.lower():
                return True
        elif entity.type == MessageEntity.MENTION and part[1:].lower() == username.lower():
            return True
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            return True
    return False


def _entity_text(text: str, entity: MessageEntity) -> str:
    # Entity offsets count UTF-16 code units, not characters.
    encoded = text.encode("utf-16-le")
    return encoded[entity.offset * 2:(entity.offset + entity.length) * 2].decode("utf-16-le", "replace")


def _base(update: Update) -> dict[str, Any]:
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    fields: dict[str, Any] = {
        "chat_id": str(chat.id) if chat else "",
        "user_id": str(user.id) if user else "",
        "user_name": (user.first_name or "") if user else "",
        "channel": "telegram",
        "chat_type": chat.type if chat else "private",
    }
    if isinstance(message, Message):
        fields["message_id"] = message.message_id
        fields["thread_id"] = message.message_thread_id if message.is_topic_message else None
        if message.reply_to_message is not None:
            fields["reply_to_message_id"] = message.reply_to_message.message_id
    return fields


def text_inbound(update: Update, username: str) -> Inbound:
    """A text or command; in a group the bot's @mention is taken out of the question."""
    message = update.effective_message
    text = message.text or message.caption or ""
    if message.chat.type != "private" and username:
        text = re.sub(rf"(?<!\w)@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()
    return Inbound(text=text, **_base(update))


def button_inbound(update: Update) -> Inbound:
    """A press on one of the bot's buttons (on any message, however old)."""
    return Inbound(action=update.callback_query.data or "", **_base(update))


def document_inbound(update: Update, content: bytes) -> Inbound:
    """A file the user sent, downloaded into memory only."""
    doc = update.effective_message.document
    document = Document(doc.file_name or "file", content, doc.mime_type or "application/octet-stream")
    return Inbound(document=document, text=update.effective_message.caption or "", **_base(update))


_MEDIA_KEYS = (  # message attribute -> message key in knowledge/messages/telegram.yaml
    ("photo", "telegram.photo"), ("sticker", "telegram.sticker"), ("animation", "telegram.sticker"),
    ("voice", "telegram.voice"), ("audio", "telegram.voice"), ("video_note", "telegram.voice"),
    ("video", "telegram.video"), ("location", "telegram.location"), ("venue", "telegram.location"),
)


def media_message_key(message: Message) -> str:
    """Which short answer a non-text message gets."""
    for attribute, key in _MEDIA_KEYS:
        if getattr(message, attribute, None):
            return key
    return "telegram.other"


# -- Reply -> Bot API calls ----------------------------------------------------------------------------
def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Telegram HTML in parts of at most `limit` characters, cut at line breaks (else at spaces).

    Tags open at a cut are closed at the end of the part and opened again at the start of the next,
    so each part parses on its own. Lengths are counted on the source in UTF-16 units, which is never
    less than what Telegram counts.
    """
    if utf16_len(text) <= limit:
        return [text] if text.strip() else []
    budget = min(_PIECE, limit // 2)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # open tags: (name, the opening tag as written)
    current = ""
    for piece in _pieces(text, budget):
        after = _advance(stack, piece)
        if _has_text(current) and utf16_len(current + piece + _closers(after)) > limit:
            parts.append(current.rstrip() + _closers(stack))
            current = "".join(tag for _, tag in stack) + piece.lstrip("\n")
        else:
            current += piece
        stack = after
    if _has_text(current):
        parts.append(current.rstrip() + _closers(stack))
    return parts


def _pieces(text: str, budget: int) -> list[str]:
    """Lines (with their line break); a line longer than `budget` is cut at spaces, never inside a tag."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        if utf16_len(line) <= budget:
            pieces.append(line)
            continue
        current = ""
        for atom in _ATOM.findall(line):
            while utf16_len(atom) > budget:  # one word longer than a message: cut it anywhere
                pieces.append(current + atom[:budget - utf16_len(current)])
                atom, current = atom[budget - utf16_len(current):], ""
            if utf16_len(current + atom) > budget:
                pieces.append(current)
                current = ""
            current += atom
        if current:
            pieces.append(current)
    return pieces


def _advance(stack: list[tuple[str, str]], piece: str) -> list[tuple[str, str]]:
    stack = list(stack)
    for match in _TAG.finditer(piece):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            stack.append((name, match.group(0)))
        elif stack and stack[-1][0] == name:
            stack.pop()
    return stack


def _closers(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _has_text(html_text: str) -> bool:
    return bool(_TAG.sub("", html_text).strip())


_TELEGRAM_TAG = re.compile(r"</?(?:b|strong|i|em|u|ins|s|strike|del|span|tg-spoiler|a|code|pre|blockquote|tg-emoji)"
                           r"(?:\s[^<>]*)?>", re.IGNORECASE)


def html_to_plain(text: str) -> str:
    """What the user would have read, for sending without parse mode: Telegram's tags go, the rest stays."""
    return html.unescape(_TELEGRAM_TAG.sub("", text))


def keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard (callback data is the button's short ASCII action)."""
    rows = [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in buttons if row]
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True)
class Part:
    """One Bot API call of a reply: a text message or a document; the last part carries the buttons."""

    text: str = ""
    document: Document | None = None
    markup: InlineKeyboardMarkup | None = None
    reply_to_message_id: int | None = None
    plain: bool = False  # send without parse mode (the fallback when Telegram cannot parse the HTML)

    async def send(self, bot, chat_id: str, thread_id: int | None) -> Message:
        common: dict[str, Any] = {"chat_id": chat_id, "message_thread_id": thread_id, "reply_markup": self.markup}
        if self.reply_to_message_id is not None:
            common["reply_parameters"] = ReplyParameters(self.reply_to_message_id, allow_sending_without_reply=True)
        if self.document is not None:
            file = InputFile(self.document.content, filename=self.document.filename)
            return await bot.send_document(document=file, **common)
        return await bot.send_message(text=self.text, parse_mode=None if self.plain else ParseMode.HTML,
                                      **common)


def parts(reply: Reply) -> list[Part]:
    """The calls that send a reply: its text in parts, then its document; buttons on the last one."""
    texts = split_html(reply.text)
    calls = [Part(text=t, reply_to_message_id=reply.reply_to_message_id if i == 0 else None)
             for i, t in enumerate(texts)]
    if reply.document is not None:
        calls.append(Part(document=reply.document, reply_to_message_id=None if texts else reply.reply_to_message_id))
    if calls:
        last = calls[-1]
        calls[-1] = Part(last.text, last.document, keyboard(reply.buttons), last.reply_to_message_id)
    return calls


# -- Reply <-> JSON (the durable plan of an update's replies) -------------------------------------------
def reply_to_json(reply: Reply) -> str:
    doc = reply.document
    return json.dumps({
        "text": reply.text,
        "buttons": [[[b.label, b.action] for b in row] for row in reply.buttons],
        "document": None if doc is None else [doc.filename, base64.b64encode(doc.content).decode(), doc.mime_type],
        "chat_id": reply.chat_id, "thread_id": reply.thread_id,
        "reply_to_message_id": reply.reply_to_message_id, "tags": list(reply.tags),
    }, ensure_ascii=False)


def reply_from_json(raw: str) -> Reply:
    data = json.loads(raw)
    doc = data["document"]
    return Reply(
        text=data["text"],
        buttons=tuple(tuple(Button(label, action) for label, action in row) for row in data["buttons"]),
        document=None if doc is None else Document(doc[0], base64.b64decode(doc[1]), doc[2]),
        chat_id=data["chat_id"], thread_id=data["thread_id"],
        reply_to_message_id=data["reply_to_message_id"], tags=tuple(data["tags"]),
    )
