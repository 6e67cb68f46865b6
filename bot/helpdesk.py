"""The facade: `Helpdesk.handle(Inbound) -> list[Reply]`. Every adapter calls only this."""
from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bot.clock import Clock, FixedClock, parse_instant, to_iso
from bot.config import Config
from bot.features import FEATURES, Feature, Replies
from bot.flows import Flows
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from bot.matcher import Decision, Matcher
from bot.normalize import normalize, set_synonyms_file
from bot.privacy import hmac_id, mask_pii, resolve_pii_key
from bot.render import Renderer, to_plain
from bot.store import Store
from bot.types import Button, Inbound, Reply

log = logging.getLogger("helpdesk")

MAX_INPUT_CHARS = 4000  # longer messages are cut before matching (Telegram's own limit is 4096)
_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class CommandInfo:
    """A command for /help and the Telegram menu."""

    name: str
    description: str


class Helpdesk:
    """The helpdesk core: knowledge, matching, storage, flows, and the features built on them."""

    def __init__(self, config: Config, clock: Clock | None = None, store: Store | None = None,
                 kb: KnowledgeBase | None = None) -> None:
        self.config = config
        self.clock = clock or (FixedClock(parse_instant(config.fixed_now)) if config.fixed_now else Clock())
        self.store = store or Store(config.db_path)
        set_synonyms_file(f"{config.knowledge_dir}/synonyms.yaml")
        self.kb = kb or load_knowledge(config.knowledge_dir)
        if self.kb.problems:
            raise KnowledgeError(self.kb.problems)
        self.pii_key = resolve_pii_key(config.pii_key, self.store)
        self.renderer = Renderer(config.knowledge_dir, {"contact": config.contact_text, "cfg": {}})
        self.matcher = Matcher(self.kb, config.matching)
        self.flows = Flows(self.store, self.clock)
        # Consulted by `decide` before the matcher (e.g. error reports); features append to it.
        self.deciders: list[Callable[[str], Decision | None]] = []
        self.features: list[Feature] = [self._load_feature(path) for path in FEATURES]
        self._by_prefix: dict[str, Feature] = {}
        self._by_action: dict[str, Feature] = {}
        self._by_flow: dict[str, Feature] = {}
        for feature in self.features:
            for prefix in feature.prefixes:
                self._by_prefix[prefix] = feature
            for action in feature.actions:
                self._by_action[action] = feature
            for flow in feature.flows:
                self._by_flow[flow] = feature

    def _load_feature(self, path: str) -> Feature:
        module_name, class_name = path.split(":")
        return getattr(importlib.import_module(module_name), class_name)(self)

    def feature(self, name: str) -> Feature | None:
        """The loaded feature called `name`, if any."""
        return next((f for f in self.features if f.name == name), None)

    # -- helpers for features -------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def chat_key(self, chat_id: str) -> str:
        """A keyed hash of a chat id, for statistics that must not identify anyone."""
        return hmac_id(self.pii_key, f"chat:{chat_id}")[:16]

    def text(self, template: str, /, **context) -> str:
        """Render a template from knowledge/templates."""
        return self.renderer.render(template, **context)

    def msg(self, key: str, /, **context) -> str:
        """Render a one-line message from knowledge/messages."""
        return self.renderer.message(key, **context)

    def has_action(self, action: str) -> bool:
        """Whether some feature answers the `act:<action>` button."""
        return action in self._by_action

    def action_button(self, action: str) -> Button:
        return Button(self.kb.action_labels.get(action, action), f"act:{action}")

    def home_button(self) -> Button:
        return Button(self.msg("button.home"), "home")

    def is_staff_chat(self, inbound: Inbound) -> bool:
        return bool(self.config.staff_chat_id) and inbound.chat_id == self.config.staff_chat_id

    def decide(self, text: str) -> Decision:
        """The answer / clarify / fallback decision for a question: the chat and `helpdesk ask` share it."""
        text = text[:MAX_INPUT_CHARS]
        for decider in self.deciders:
            decision = decider(text)
            if decision is not None:
                return decision
        return self.matcher.decide(text)

    def command_list(self) -> list[CommandInfo]:
        """Commands users can send, with Korean descriptions (for /help and setMyCommands)."""
        names = ["start", "help"]
        for feature in self.features:
            names.extend(c for c in feature.commands if c not in names)
        names.append("cancel")
        return [CommandInfo(n, self.msg(f"command.{n}")) for n in names]

    # -- the one entry point --------------------------------------------------------------------
    def handle(self, inbound: Inbound) -> list[Reply]:
        """Everything a user does goes through here; the replies say what to send where."""
        # One transaction per turn: the step, its logs and its replies' record land together or not at all.
        with self.store.transaction():
            self._touch_chat(inbound)
            self._log_turn(inbound.chat_id, "in", self._describe_inbound(inbound))
            replies = self._dispatch(inbound)
            for reply in replies:
                self._log_turn(reply.chat_id or inbound.chat_id, "out", to_plain(reply.text))
        return replies

    def _dispatch(self, inbound: Inbound) -> list[Reply]:
        if inbound.action is not None:
            return self._on_action(inbound, inbound.action)
        if inbound.document is not None:
            return self._first(lambda f: f.on_document(inbound)) or [Reply(self.msg("document.unsupported"))]
        text = inbound.text.strip()
        command = _COMMAND.match(text)
        if command:
            return self._on_command(inbound, command.group(1).lower(), (command.group(2) or "").strip())
        state = self.flows.get(inbound.chat_id)
        if state is not None and state.flow in self._by_flow:
            replies = self._by_flow[state.flow].on_flow_text(inbound, state)
            if replies is not None:
                return replies
        if self.is_staff_chat(inbound):
            return self._first(lambda f: f.intercept_text(inbound)) or []
        return self._first(lambda f: f.intercept_text(inbound)) or [Reply(self.msg("input.empty"))]

    def _first(self, call) -> Replies:
        for feature in self.features:
            replies = call(feature)
            if replies is not None:
                return replies
        return None

    def _on_command(self, inbound: Inbound, name: str, args: str) -> list[Reply]:
        if name == "cancel":
            return self.cancel(inbound)
        if name == "start" and not args:
            return self.welcome(inbound)
        if name == "help":
            return [Reply(self.text("help.j2", commands=self.command_list()), ((self.home_button(),),))]
        owners = [f for f in self.features if name in f.commands or name in f.staff_commands or name == "start"]
        for feature in owners:
            replies = feature.on_command(inbound, name, args)
            if replies is not None:
                return replies
        if name == "start":
            return self.welcome(inbound)
        return [Reply(self.msg("command.unknown", name=name), ((self.home_button(),),))]

    def _on_action(self, inbound: Inbound, data: str) -> list[Reply]:
        if data == "home":
            self.cancel(inbound, quiet=True)
            return self.welcome(inbound)
        if data.startswith("act:"):
            action = data[4:]
            feature = self._by_action.get(action)
            replies = feature.on_action(inbound, data) if feature else None
            if replies is None and action == "staff":
                return [Reply(self.text("contact.j2"), ((self.home_button(),),))]
            if replies is not None:
                return replies
        else:
            feature = self._by_prefix.get(data.split(":", 1)[0])
            replies = feature.on_action(inbound, data) if feature else None
            if replies is not None:
                return replies
        return [Reply(self.msg("button.expired"), ((self.home_button(),),))]

    def cancel(self, inbound: Inbound, quiet: bool = False) -> list[Reply]:
        """/cancel: leave the current flow (its feature may say something), then back to the start."""
        state = self.flows.get(inbound.chat_id)
        replies: list[Reply] = []
        if state is not None:
            owner = self._by_flow.get(state.flow)
            replies = (owner.on_cancel(inbound, state) if owner else None) or []
            self.flows.clear(inbound.chat_id, state.flow)
            if not replies and not quiet:
                replies = [Reply(self.msg("cancel.done"), ((self.home_button(),),))]
        elif not quiet:
            replies = [Reply(self.msg("cancel.nothing"), ((self.home_button(),),))]
        return replies

    def welcome(self, inbound: Inbound) -> list[Reply]:
        """The start screen: what the bot does, and buttons for the live features."""
        buttons = [self.action_button(a) for a in ("status", "diagnose", "reissue", "staff")
                   if self.has_action(a) or a == "staff"]
        rows = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
        return [Reply(self.text("welcome.j2", name=inbound.user_name), rows, tags=("welcome",))]

    # -- bookkeeping ----------------------------------------------------------------------------
    def _touch_chat(self, inbound: Inbound) -> None:
        now = to_iso(self.now())
        self.store.db.execute(
            "INSERT INTO chats (chat_id, channel, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET last_seen = excluded.last_seen",
            [inbound.chat_id, inbound.channel, now, now],
        )

    @staticmethod
    def _describe_inbound(inbound: Inbound) -> str:
        if inbound.action is not None:
            return f"[button] {inbound.action}"
        if inbound.document is not None:
            return f"[file] {inbound.document.filename}"
        return inbound.text[:MAX_INPUT_CHARS]

    def _log_turn(self, chat_id: str, direction: str, text: str) -> None:
        self.store.db.execute(
            "INSERT INTO turns (chat_id, direction, text, at) VALUES (?, ?, ?, ?)",
            [chat_id, direction, mask_pii(text), to_iso(self.now())],
        )

    def log_question(self, inbound: Inbound, decision: Decision) -> None:
        """Record a question and what the bot decided (masked), for `kb unanswered` and `stats`."""
        now = self.now()
        masked = mask_pii(decision.question[:500])
        self.store.db.execute(
            "INSERT INTO questions (chat_key, question, normalized, action, entry_id, score, day, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.chat_key(inbound.chat_id), masked, normalize(masked), decision.action, decision.id,
             decision.score, now.date().isoformat(), to_iso(now)],
        )

    def recent_turns(self, chat_id: str, limit: int = 10) -> list[tuple[str, str, str]]:
        """The chat's last turns, oldest first: (direction, masked text, time)."""
        rows = self.store.db.execute(
            "SELECT direction, text, at FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?", [chat_id, limit]
        ).fetchall()
        return [tuple(r) for r in reversed(rows)]

    def miss_streak(self, chat_id: str, missed: bool) -> int:
        """Count clarifications/fallbacks in a row (reset by an answer); returns the new count."""
        if missed:
            self.store.db.execute("UPDATE chats SET miss_streak = miss_streak + 1 WHERE chat_id = ?", [chat_id])
        else:
            self.store.db.execute("UPDATE chats SET miss_streak = 0 WHERE chat_id = ?", [chat_id])
        row = self.store.db.execute("SELECT miss_streak FROM chats WHERE chat_id = ?", [chat_id]).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.store.close()
