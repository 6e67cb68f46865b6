"""A fake Telegram Bot API on 127.0.0.1 (aiohttp), for adapter tests, end-to-end tests and benchmarks.

In a test (a thread with its own event loop, on a free port):

    fake = FakeTelegram().start()
    env = fake.env()                        # HELPDESK_TELEGRAM_TOKEN / _BASE_URL / _BASE_FILE_URL
    fake.send_text(1001, "인증서 비밀번호를 잊었어요")
    [reply] = fake.wait_messages(1001, 1)   # Call objects: reply.text (parsed), reply.params, reply.buttons
    fake.stop()

Standalone: `python -m tests.fake_telegram --port 8081` prints its env as JSON and is driven over a small
control API under /_fake/ (updates, calls, faults, limits; see `_control_routes`).

It keeps the Telegram rules the adapter must respect: text at most 4,096 characters after entity
parsing, HTML that must parse (only Telegram's tags, properly nested), callback data of 1-64 bytes,
getUpdates offsets (an update is dropped only when a later call confirms it), 409 for getUpdates while
a webhook is set, 403 for chats that blocked the bot, optional flood limits (429 with retry_after), and
faults on demand: `fail(method, status)` and `slow(method, seconds)` (a request whose client gave up
while it was slow is not carried out, as if it never reached Telegram).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import html
import itertools
import json
import math
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import ClientSession, ClientTimeout, web

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_abcdefghijklmnopqr"
SEND_METHODS = {"sendmessage", "senddocument", "sendphoto", "copymessage", "forwardmessage"}
_JSON_PARAMS = {"reply_markup", "entities", "caption_entities", "commands", "scope", "reply_parameters",
                "link_preview_options", "allowed_updates", "media"}
_INT_PARAMS = {"chat_id", "from_chat_id", "message_id", "message_thread_id", "offset", "limit", "timeout",
               "reply_to_message_id", "max_connections"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
                 "pre", "blockquote", "tg-emoji"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ApiError(Exception):
    """A Bot API error answer."""

    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


def parse_html(text: str) -> str:
    """Telegram HTML -> the plain text Telegram would show; ApiError(400) where Telegram would refuse it."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end < 0:
                raise ApiError(400, f"Bad Request: can't parse entities: unclosed start tag at byte offset {i}")
            tag = text[i + 1:end]
            if tag.startswith("/"):
                name = tag[1:].strip().lower()
                if not stack or stack[-1] != name:
                    raise ApiError(400, f'Bad Request: can\'t parse entities: unmatched end tag "{name}" at {i}')
                stack.pop()
            else:
                match = re.match(r"^([a-zA-Z][\w-]*)(\s[^<>]*)?$", tag)
                name = match.group(1).lower() if match else tag
                if not match or name not in _ALLOWED_TAGS:
                    raise ApiError(400, f'Bad Request: can\'t parse entities: unsupported start tag "{name}" at {i}')
                stack.append(name)
            i = end + 1
        elif char == "&":
            match = re.match(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);", text[i:])
            if match and (match.group(1).startswith("#") or match.group(1) in _NAMED_ENTITIES):
                out.append(html.unescape(match.group(0)))
                i += len(match.group(0))
            else:
                out.append("&")
                i += 1
        else:
            out.append(char)
            i += 1
    if stack:
        raise ApiError(400, f'Bad Request: can\'t parse entities: can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the bot made: method, parameters (decoded), HTTP status and what was answered."""

    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None
    description: str = ""
    at: float = field(default_factory=time.monotonic)  # when the request arrived
    done_at: float = 0.0  # when it was answered
    text: str = ""  # for messages: the text as the user sees it (entities parsed)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if isinstance(value, (int, str)) and str(value).lstrip("-").isdigit() else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of the inline keyboard, in reading order."""
        markup = self.params.get("reply_markup") or {}
        return [(b.get("text", ""), b.get("callback_data", "")) for row in markup.get("inline_keyboard", [])
                for b in row]

    @property
    def message_id(self) -> int | None:
        return self.result.get("message_id") if isinstance(self.result, dict) else None

    def as_json(self) -> dict:
        params = {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in self.params.items()}
        return {"method": self.method, "params": params, "status": self.status, "result": self.result,
                "description": self.description, "at": self.at, "text": self.text}


@dataclass
class Fault:
    method: str  # lower-case method name, or "*"
    status: int = 0  # 0: no error answer (only `delay`)
    times: int = 1
    retry_after: int = 1
    delay: float = 0.0


class _Bucket:
    """A token bucket: `rate` per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class FakeTelegram:
    """The fake server and the users who talk to the bot through it."""

    def __init__(self, token: str = DEFAULT_TOKEN, username: str = "gpki_helpdesk_bot", port: int = 0,
                 host: str = "127.0.0.1") -> None:
        self.token, self.username, self.host, self.port = token, username, host, port
        self.bot_id = int(token.split(":")[0])
        self.calls: list[Call] = []
        self.flood_429s = 0  # 429s the flood limits caused (not the injected ones)
        self.flood_kinds: dict[str, int] = {"overall": 0, "chat": 0}  # which limit they were for
        self.commands: dict[str, list[dict]] = {}
        self.webhook: dict[str, Any] | None = None
        self.on_message: Callable[[Call], None] | None = None  # called in the server thread per sent message
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._updates: list[dict] = []
        self._update_ids = itertools.count(700_000)
        self._message_ids: dict[int, itertools.count] = {}
        self._messages: dict[tuple[int, int], dict] = {}
        self._chats: dict[int, dict] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._file_ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._blocked: set[int] = set()
        self._overall: _Bucket | None = None
        self._per_chat: tuple[float, float] | None = None
        self._chat_buckets: dict[int, _Bucket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "FakeTelegram":
        """Serve in a background thread; returns once the port is open."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-telegram", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _open(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        for method, path, handler in self._control_routes():
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the free port chosen for port 0

    async def _close(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> "FakeTelegram":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    def env(self) -> dict[str, str]:
        """The settings that point `helpdesk run` at this server."""
        return {"HELPDESK_TELEGRAM_TOKEN": self.token, "HELPDESK_TELEGRAM_BASE_URL": self.base_url,
                "HELPDESK_TELEGRAM_BASE_FILE_URL": self.base_file_url}

    # -- faults and limits ---------------------------------------------------------------------------
    def fail(self, method: str, status: int = 500, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` ("*": any) with `status` (429 carries retry_after)."""
        with self._lock:
            self._faults.append(Fault(method.lower(), status, times, retry_after))

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds`."""
        with self._lock:
            self._faults.append(Fault(method.lower(), 0, times, delay=seconds))

    def limit(self, overall_rate: float | None = None, overall_burst: float | None = None,
              chat_rate: float | None = None, chat_burst: float | None = None) -> None:
        """Flood limits on sent messages, as Telegram applies them (None: no limit); excess gets 429."""
        with self._lock:
            self._overall = _Bucket(overall_rate, overall_burst or overall_rate) if overall_rate else None
            self._per_chat = (chat_rate, chat_burst or 1) if chat_rate else None
            self._chat_buckets.clear()

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends to the chat get 403 from now on."""
        with self._lock:
            self._blocked.add(chat_id)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _check_flood(self, chat_id: int | None) -> None:
        with self._lock:
            waits = {}
            if self._per_chat is not None and chat_id is not None:
                bucket = self._chat_buckets.setdefault(chat_id, _Bucket(*self._per_chat))
                waits["chat"] = bucket.take()
            if self._overall is not None and not waits.get("chat"):
                waits["overall"] = self._overall.take()
            wait = max(waits.values(), default=0.0)
            if wait > 0:
                self.flood_429s += 1
                self.flood_kinds[max(waits, key=waits.get)] += 1
                seconds = max(1, math.ceil(wait))
                raise ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    # -- users: what they send ------------------------------------------------------------------------
    def _user(self, user_id: int, first_name: str) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ko"}

    def _chat(self, chat_id: int) -> dict:
        with self._lock:
            return dict(self._chats.get(chat_id) or {"id": chat_id, "type": "private", "first_name": "사용자"})

    def _next_message_id(self, chat_id: int) -> int:
        with self._lock:
            return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def enqueue(self, update: dict) -> int:
        """Queue a raw update (an `update_id` is added); returns the update id."""
        with self._lock:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._changed.notify_all()
        self._poke()
        return update["update_id"]

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def _message(self, chat_id: int, user_id: int | None, *, chat_type: str, first_name: str, title: str | None,
                 thread_id: int | None, forum: bool, **content: Any) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or "업무 단체방"
            if forum:
                chat["is_forum"] = True
        with self._lock:
            self._chats[chat_id] = chat
        message = {"message_id": self._next_message_id(chat_id), "date": int(time.time()), "chat": chat,
                   "from": self._user(user_id or abs(chat_id), first_name), **content}
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    def send_text(self, chat_id: int, text: str, *, user_id: int | None = None, first_name: str = "테스터",
                  chat_type: str | None = None, title: str | None = None, thread_id: int | None = None,
                  forum: bool = False, reply_to: int | None = None) -> int:
        """A user writes `text` (commands and @mentions get their entities); `reply_to`: a bot message id."""
        chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
        content: dict[str, Any] = {"text": text}
        entities = _entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            content["reply_to_message"] = self._bot_message_stub(chat_id, reply_to)
        message = self._message(chat_id, user_id, chat_type=chat_type, first_name=first_name, title=title,
                                thread_id=thread_id, forum=forum, **content)
        return self.enqueue({"message": message})

    def group_text(self, chat_id: int, text: str, *, mention: bool = False, reply_to: int | None = None,
                   user_id: int = 5001, thread_id: int | None = None, forum: bool = False) -> int:
        """A message in a group (chat ids are negative): optionally @mentioning the bot or replying to it."""
        if mention:
            text = f"@{self.username} {text}"
        return self.send_text(chat_id, text, user_id=user_id, chat_type="supergroup", thread_id=thread_id,
                              forum=forum, reply_to=reply_to)

    def press(self, chat_id: int, data: str, *, message_id: int | None = None, user_id: int | None = None) -> int:
        """A user presses a button with callback `data` on the bot's message `message_id` (else the latest)."""
        if message_id is None:
            with self._lock:
                ids = [mid for (cid, mid) in self._messages if cid == chat_id]
            message_id = max(ids) if ids else 1
        query = {"id": str(next(self._file_ids) * 7919), "from": self._user(user_id or abs(chat_id), "테스터"),
                 "chat_instance": str(chat_id), "data": data,
                 "message": self._bot_message_stub(chat_id, message_id)}
        return self.enqueue({"callback_query": query})

    def _bot_message_stub(self, chat_id: int, message_id: int) -> dict:
        with self._lock:
            stored = self._messages.get((chat_id, message_id))
        if stored is not None:
            return stored
        return {"message_id": message_id, "date": int(time.time()), "chat": self._chat(chat_id),
                "from": self._bot_user(), "text": "…"}

    def add_file(self, content: bytes, path_hint: str = "documents/file") -> tuple[str, str]:
        """Store a file the Bot API can hand out; returns (file_id, file_unique_id)."""
        number = next(self._file_ids)
        file_id, unique = f"BQACAgUAAx{number:06d}", f"AgAD{number:06d}"
        with self._lock:
            self._files[file_id] = (content, f"{path_hint}_{number}")
        return file_id, unique

    def send_document(self, chat_id: int, filename: str, content: bytes, *, mime_type: str = "application/pkix-cert",
                      file_size: int | None = None, caption: str | None = None, **kwargs: Any) -> int:
        """A user sends a file (`file_size` may claim another size than the content's, like a large file)."""
        file_id, unique = self.add_file(content, "documents/file")
        document = {"file_id": file_id, "file_unique_id": unique, "file_name": filename, "mime_type": mime_type,
                    "file_size": len(content) if file_size is None else file_size}
        content_fields: dict[str, Any] = {"document": document}
        if caption:
            content_fields["caption"] = caption
            if _entities(caption):
                content_fields["caption_entities"] = _entities(caption)
        return self._send_content(chat_id, content_fields, **kwargs)

    def _send_content(self, chat_id: int, content: dict, *, user_id: int | None = None, chat_type: str | None = None,
                      thread_id: int | None = None, forum: bool = False, reply_to: int | None = None) -> int:
        if reply_to is not None:
            content["reply_to_message"] = self._bot_message_stub(chat_id, reply_to)
        message = self._message(chat_id, user_id, chat_type=chat_type or ("private" if chat_id > 0 else "supergroup"),
                                first_name="테스터", title=None, thread_id=thread_id, forum=forum, **content)
        return self.enqueue({"message": message})

    def send_photo(self, chat_id: int, caption: str | None = None, **kwargs: Any) -> int:
        file_id, unique = self.add_file(b"\xff\xd8\xff\xe0 fake jpeg", "photos/file")
        content: dict[str, Any] = {"photo": [{"file_id": file_id, "file_unique_id": unique, "width": 90, "height": 90,
                                              "file_size": 16}]}
        if caption:
            content["caption"] = caption
        return self._send_content(chat_id, content, **kwargs)

    def send_sticker(self, chat_id: int, **kwargs: Any) -> int:
        file_id, unique = self.add_file(b"RIFF fake webp", "stickers/file")
        sticker = {"file_id": file_id, "file_unique_id": unique, "type": "regular", "width": 512, "height": 512,
                   "is_animated": False, "is_video": False, "emoji": "👍"}
        return self._send_content(chat_id, {"sticker": sticker}, **kwargs)

    def send_voice(self, chat_id: int, **kwargs: Any) -> int:
        file_id, unique = self.add_file(b"OggS fake voice", "voice/file")
        return self._send_content(chat_id, {"voice": {"file_id": file_id, "file_unique_id": unique, "duration": 3}},
                                  **kwargs)

    def send_location(self, chat_id: int, **kwargs: Any) -> int:
        return self._send_content(chat_id, {"location": {"latitude": 37.5665, "longitude": 126.978}}, **kwargs)

    def edit_text(self, chat_id: int, message_id: int, text: str) -> int:
        """A user edits their message `message_id` to `text`."""
        chat = self._chat(chat_id)
        message = {"message_id": message_id, "date": int(time.time()) - 5, "edit_date": int(time.time()),
                   "chat": chat, "from": self._user(abs(chat_id), "테스터"), "text": text}
        return self.enqueue({"edited_message": message})

    def block_bot(self, chat_id: int) -> int:
        """The user blocks the bot: a my_chat_member update, and 403 for every later send to the chat."""
        self.block(chat_id)
        bot = self._bot_user()
        return self.enqueue({"my_chat_member": {
            "chat": self._chat(chat_id), "from": self._user(chat_id, "테스터"), "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0}}})

    # -- what the bot did ----------------------------------------------------------------------------
    def calls_of(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method.lower() == method.lower()]

    def messages(self, chat_id: int | None = None) -> list[Call]:
        """Messages the bot sent successfully (text, documents, photos, copies), oldest first."""
        with self._lock:
            return [c for c in self.calls if c.ok and c.method.lower() in SEND_METHODS
                    and (chat_id is None or c.chat_id == chat_id)]

    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot."""
        with self._lock:
            return len(self._updates)

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Wait until `predicate()` is truthy (re-checked on every call and update); returns its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
                self._changed.wait(min(remaining, 0.2))

    def wait_messages(self, chat_id: int, count: int, timeout: float = 20.0) -> list[Call]:
        """The first `count` messages sent to `chat_id`, waiting up to `timeout` seconds for them."""
        return self.wait_until(lambda: (m := self.messages(chat_id)) and len(m) >= count and m[:count],
                               timeout, f"{count} message(s) to chat {chat_id} (have {len(self.messages(chat_id))})")

    def wait_calls(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        return self.wait_until(lambda: (c := self.calls_of(method)) and len(c) >= count and c,
                               timeout, f"{count} {method} call(s)")

    # -- the Bot API ----------------------------------------------------------------------------------
    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "GPKI 상담", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _record(self, call: Call) -> None:
        call.done_at = time.monotonic()
        with self._lock:
            self.calls.append(call)
            self._changed.notify_all()
        if call.ok and call.method.lower() in SEND_METHODS and self.on_message is not None:
            self.on_message(call)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params)
        if request.match_info["token"] != self.token:
            call.status, call.description = 401, "Unauthorized"
            self._record(call)
            return _error(401, "Unauthorized")
        fault = self._take_fault(method.lower())
        try:
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
                if request.transport is None or request.transport.is_closing():
                    call.status, call.description = 499, "client gave up before the answer"
                    self._record(call)
                    return web.Response(status=499)
            if fault is not None and fault.status:
                extra = {"retry_after": fault.retry_after} if fault.status == 429 else None
                raise ApiError(fault.status, "Too Many Requests: retry after 1" if fault.status == 429
                               else "Internal Server Error", extra)
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            call.result = await handler(params, call)
        except ApiError as exc:
            call.status, call.description = exc.status, exc.description
            self._record(call)
            return _error(exc.status, exc.description, exc.parameters)
        self._record(call)
        return web.json_response({"ok": True, "result": call.result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        with self._lock:
            content = next((c for c, p in self._files.values() if p == path), None)
        self._record(Call("download", {"path": path}, 200 if content is not None else 404))
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    async def _m_getme(self, params: dict, call: Call) -> dict:
        return self._bot_user()

    async def _m_getupdates(self, params: dict, call: Call) -> list[dict]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset, limit = params.get("offset"), min(int(params.get("limit") or 100), 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            self._wake.clear()
            with self._lock:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                batch = self._updates[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _m_deletewebhook(self, params: dict, call: Call) -> bool:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            with self._lock:
                self._updates.clear()
        return True

    async def _m_setwebhook(self, params: dict, call: Call) -> bool:
        secret = params.get("secret_token")
        if secret is not None and not re.match(r"^[A-Za-z0-9_-]{1,256}$", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": params.get("url"), "secret_token": secret}
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.get_running_loop().create_task(self._push_updates())
        return True

    async def _m_getwebhookinfo(self, params: dict, call: Call) -> dict:
        return {"url": (self.webhook or {}).get("url") or "", "has_custom_certificate": False,
                "pending_update_count": self.pending_updates()}

    async def _push_updates(self) -> None:
        """Deliver updates to the webhook one by one, in order, until it answers 200 (as Telegram does)."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while self.webhook:
                self._wake.clear()
                with self._lock:
                    update = self._updates[0] if self._updates else None
                if update is None:
                    try:
                        await asyncio.wait_for(self._wake.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
                    continue
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                try:
                    async with session.post(self.webhook["url"], json=update, headers=headers) as response:
                        delivered = response.status == 200
                except Exception:  # noqa: BLE001 - the bot is down or slow: try again
                    delivered = False
                if delivered:
                    with self._lock:
                        self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                        self._changed.notify_all()
                else:
                    await asyncio.sleep(0.2)

    def _check_text(self, text: Any, parse_mode: Any, limit: int = 4096) -> str:
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Bad Request: message text is empty")
        plain = parse_html(text) if str(parse_mode).upper() == "HTML" else text
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(plain) > limit:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    @staticmethod
    def _check_markup(markup: Any) -> None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _target(self, params: dict) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _sent(self, chat_id: int, params: dict, **content: Any) -> dict:
        message = {"message_id": self._next_message_id(chat_id), "date": int(time.time()),
                   "chat": self._chat(chat_id), "from": self._bot_user(), **content}
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        with self._lock:
            self._messages[(chat_id, message["message_id"])] = message
        return message

    async def _m_sendmessage(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        call.text = self._check_text(params.get("text"), params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        self._check_flood(chat_id)
        return self._sent(chat_id, params, text=call.text)

    async def _m_editmessagetext(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        call.text = self._check_text(params.get("text"), params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        with self._lock:
            message = self._messages.get((chat_id, params.get("message_id")))
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            message.update(text=call.text, edit_date=int(time.time()))
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return dict(message)

    async def _m_editmessagereplymarkup(self, params: dict, call: Call) -> dict:
        self._check_markup(params.get("reply_markup"))
        with self._lock:
            message = self._messages.get((self._target(params), params.get("message_id")))
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            message["reply_markup"] = params.get("reply_markup") or {}
            return dict(message)

    async def _m_answercallbackquery(self, params: dict, call: Call) -> bool:
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _m_getfile(self, params: dict, call: Call) -> dict:
        with self._lock:
            found = self._files.get(str(params.get("file_id")))
        if found is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        content, path = found
        return {"file_id": params["file_id"], "file_unique_id": f"u{params['file_id']}", "file_size": len(content),
                "file_path": path}

    async def _m_senddocument(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        document = params.get("document")
        if not isinstance(document, bytes) and not isinstance(document, str):
            raise ApiError(400, "Bad Request: there is no document in the request")
        if params.get("caption"):
            call.text = self._check_text(params["caption"], params.get("parse_mode"), limit=1024)
        self._check_markup(params.get("reply_markup"))
        self._check_flood(chat_id)
        file_id, unique = self.add_file(document if isinstance(document, bytes) else b"", "documents/sent")
        return self._sent(chat_id, params, document={"file_id": file_id, "file_unique_id": unique,
                                                     "file_name": params.get("document_filename", "file")})

    async def _m_sendphoto(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        if params.get("caption"):
            call.text = self._check_text(params["caption"], params.get("parse_mode"), limit=1024)
        self._check_flood(chat_id)
        file_id, unique = self.add_file(b"", "photos/sent")
        return self._sent(chat_id, params, photo=[{"file_id": file_id, "file_unique_id": unique, "width": 1,
                                                   "height": 1}])

    async def _m_copymessage(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        self._check_flood(chat_id)
        return {"message_id": self._sent(chat_id, params, text="(copy)")["message_id"]}

    async def _m_forwardmessage(self, params: dict, call: Call) -> dict:
        chat_id = self._target(params)
        self._check_flood(chat_id)
        return self._sent(chat_id, params, text="(forward)")

    async def _m_setmycommands(self, params: dict, call: Call) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100")
        for command in commands:
            if not re.match(r"^[a-z0-9_]{1,32}$", str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is invalid")
        scope = params.get("scope") or {"type": "default"}
        self.commands[json.dumps(scope, sort_keys=True)] = commands
        return True

    async def _m_createforumtopic(self, params: dict, call: Call) -> dict:
        self._target(params)
        thread_id = self._next_message_id(int(params["chat_id"]))
        return {"message_thread_id": thread_id, "name": params.get("name", ""), "icon_color": 7322096}

    async def _m_editforumtopic(self, params: dict, call: Call) -> bool:
        return True

    async def _m_closeforumtopic(self, params: dict, call: Call) -> bool:
        return True

    async def _m_reopenforumtopic(self, params: dict, call: Call) -> bool:
        return True

    async def _m_sendchataction(self, params: dict, call: Call) -> bool:
        return True

    async def _m_deletemessage(self, params: dict, call: Call) -> bool:
        return True

    # -- the control API (standalone mode) -----------------------------------------------------------
    def _control_routes(self) -> list[tuple[str, str, Callable]]:
        return [("POST", "/_fake/updates", self._c_update), ("GET", "/_fake/calls", self._c_calls),
                ("POST", "/_fake/faults", self._c_fault), ("POST", "/_fake/limits", self._c_limits)]

    async def _c_update(self, request: web.Request) -> web.Response:
        """{"type": "text"|"press"|"document"|"photo"|"sticker"|"voice"|"location"|"edit"|"raw", ...}"""
        body = await request.json()
        kind = body.pop("type", "text")
        if kind == "document":
            body["content"] = base64.b64decode(body["content"])
        senders = {"text": self.send_text, "press": self.press, "document": self.send_document,
                   "photo": self.send_photo, "sticker": self.send_sticker, "voice": self.send_voice,
                   "location": self.send_location, "edit": self.edit_text, "raw": self.enqueue}
        update_id = await asyncio.get_running_loop().run_in_executor(None, lambda: senders[kind](**body))
        return web.json_response({"update_id": update_id})

    async def _c_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        return web.json_response([c.as_json() for c in self.calls_of(method)])

    async def _c_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("delay"):
            self.slow(body["method"], float(body["delay"]), int(body.get("times", 1)))
        else:
            self.fail(body["method"], int(body.get("status", 500)), int(body.get("times", 1)),
                      int(body.get("retry_after", 1)))
        return web.json_response({"ok": True})

    async def _c_limits(self, request: web.Request) -> web.Response:
        self.limit(**(await request.json()))
        return web.json_response({"ok": True})


def _entities(text: str) -> list[dict]:
    """bot_command at the start, and @mentions, with offsets in UTF-16 units as Telegram counts them."""
    entities = []
    for match in re.finditer(r"(?:^/[A-Za-z0-9_]+(?:@\w+)?)|(?<!\w)@\w{5,32}", text):
        kind = "bot_command" if match.group(0).startswith("/") else "mention"
        entities.append({"type": kind, "offset": utf16_len(text[:match.start()]),
                         "length": utf16_len(match.group(0))})
    return entities


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    params[key] = value.file.read()
                    params[f"{key}_filename"] = value.filename
                else:
                    params[key] = value
    for key in list(params):
        value = params[key]
        if key in _JSON_PARAMS and isinstance(value, str):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
        elif key in _INT_PARAMS and isinstance(value, str) and value.lstrip("-").isdigit():
            params[key] = int(value)
    return params


def _error(status: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Telegram Bot API for tests and benchmarks")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    fake = FakeTelegram(token=args.token, port=args.port, host=args.host).start()
    print(json.dumps(fake.env()), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    fake.stop()


if __name__ == "__main__":
    main()
