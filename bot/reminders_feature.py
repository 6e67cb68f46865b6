"""Expiry reminders, the conversation side: /reminders on|off, the mute button on each reminder, and
/digest for staff (the summary and two CSV files). What is due and the sending log: bot/reminders.py."""
from __future__ import annotations

from bot.clock import to_iso
from bot.features import Feature, Replies
from bot.reminders import MUTE_ACTION, UNMUTE_ACTION, digest_replies
from bot.types import Button, Inbound, Reply

_OFF = {"off", "끄기", "끔", "0", "no", "mute", "stop"}
_ON = {"on", "켜기", "켬", "1", "yes", "unmute", "start"}


class RemindersFeature(Feature):
    """Lets a linked holder turn reminders off and on; gives staff the digest on request."""

    name = "reminders"
    commands = ("reminders",)
    staff_commands = ("digest",)
    prefixes = ("rm",)

    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        if name == "digest":
            if not self.hd.is_staff_chat(inbound):
                return None  # not a command outside the staff chat
            return digest_replies(self.hd, self.hd.now(), with_files=True)
        if name != "reminders":
            return None
        word = args.strip().lower()
        if word in _OFF:
            return self._set_muted(inbound, True)
        if word in _ON:
            return self._set_muted(inbound, False)
        return self._show(inbound, hint=bool(word))

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data == MUTE_ACTION:
            return self._set_muted(inbound, True)
        if data == UNMUTE_ACTION:
            return self._set_muted(inbound, False)
        return None

    # -- helpers ------------------------------------------------------------------------------------
    def _holder(self, chat_id: str) -> tuple[str, bool] | None:
        row = self.hd.store.db.execute(
            "SELECT employee_id, reminders_muted FROM holders WHERE chat_id = ?", [chat_id]).fetchone()
        return (row[0], bool(row[1])) if row else None

    def _not_linked(self) -> list[Reply]:
        rows = [(self.hd.action_button("link"),)] if self.hd.has_action("link") else []
        rows.append((self.hd.home_button(),))
        return [Reply(self.hd.msg("reminders.not_linked"), tuple(rows), tags=("reminders:not_linked",))]

    def _set_muted(self, inbound: Inbound, muted: bool) -> list[Reply]:
        holder = self._holder(inbound.chat_id)
        if holder is None:
            return self._not_linked()
        now = to_iso(self.hd.now())
        # Whoever turns reminders on is talking to the bot, so a past block (403) no longer holds.
        self.hd.store.db.execute(
            "UPDATE holders SET reminders_muted = ?, updated_at = ?"
            + ("" if muted else ", unreachable_at = NULL") + " WHERE employee_id = ?",
            [1 if muted else 0, now, holder[0]])
        if muted:
            button = Button(self.hd.msg("reminders.button.unmute"), UNMUTE_ACTION)
            return [Reply(self.hd.msg("reminders.muted"), ((button,), (self.hd.home_button(),)),
                          tags=("reminders:muted",))]
        button = Button(self.hd.msg("reminders.button.mute"), MUTE_ACTION)
        return [Reply(self.hd.msg("reminders.unmuted", first=max(self.hd.config.reminders.steps)),
                      ((button,), (self.hd.home_button(),)), tags=("reminders:unmuted",))]

    def _show(self, inbound: Inbound, hint: bool) -> list[Reply]:
        holder = self._holder(inbound.chat_id)
        if holder is None:
            return self._not_linked()
        muted = holder[1]
        if muted:
            text = self.hd.msg("reminders.state_off")
            button = Button(self.hd.msg("reminders.button.unmute"), UNMUTE_ACTION)
        else:
            text = self.hd.msg("reminders.state_on", first=max(self.hd.config.reminders.steps))
            button = Button(self.hd.msg("reminders.button.mute"), MUTE_ACTION)
        if hint:
            text = f"{self.hd.msg('reminders.usage_hint')}\n{text}"
        return [Reply(text, ((button,), (self.hd.home_button(),)), tags=("reminders:state",))]
