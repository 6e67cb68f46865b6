"""Conversation state: one active flow per chat (its step and data), kept in SQLite so restarts lose nothing."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, to_iso
from bot.store import Store


@dataclass
class FlowState:
    """Where a chat is in a multi-step flow (e.g. flow="clarify", step="choose")."""

    chat_id: str
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""


class Flows:
    """Read and write the `conversations` table."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get(self, chat_id: str) -> FlowState | None:
        """The chat's active flow, or None."""
        row = self.store.db.execute(
            "SELECT flow, step, data, updated_at FROM conversations WHERE chat_id = ?", [chat_id]
        ).fetchone()
        if row is None:
            return None
        return FlowState(chat_id, row[0], row[1], json.loads(row[2]), row[3])

    def set(self, chat_id: str, flow: str, step: str, data: dict[str, Any] | None = None) -> FlowState:
        """Start or move a flow (replaces whatever flow the chat had)."""
        state = FlowState(chat_id, flow, step, dict(data or {}), to_iso(self.clock.now()))
        self.store.db.execute(
            "INSERT INTO conversations (chat_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET flow = excluded.flow, step = excluded.step, "
            "data = excluded.data, updated_at = excluded.updated_at",
            [chat_id, flow, step, json.dumps(state.data, ensure_ascii=False), state.updated_at],
        )
        return state

    def clear(self, chat_id: str, flow: str | None = None) -> None:
        """End the chat's flow (only if it is `flow`, when given)."""
        if flow is None:
            self.store.db.execute("DELETE FROM conversations WHERE chat_id = ?", [chat_id])
        else:
            self.store.db.execute("DELETE FROM conversations WHERE chat_id = ? AND flow = ?", [chat_id, flow])
