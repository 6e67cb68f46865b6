"""The plug-in surface of the core: each capability (FAQ, certificates, diagnosis, ...) is a Feature.

`Helpdesk.handle` offers every inbound to the features in order; the first that returns replies
(not None) wins. A feature owns the flows it names, the `act:<name>` buttons it names, and the
callback prefixes it names (`kb`, `fb`, ...). To add one, append its "module:Class" to FEATURES.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bot.flows import FlowState
from bot.types import Inbound, Reply

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

Replies = list[Reply] | None

# Order matters: earlier features see inbound first. The FAQ answers whatever is left, so it stays last.
FEATURES: list[str] = [
    "bot.handoff_feature:HandoffFeature",  # first: while a ticket is open, staff answer, not the bot
    "bot.certs_feature:CertFileFeature",
    "bot.reminders_feature:RemindersFeature",
    "bot.registry_feature:RegistryFeature",
    "bot.reissue_feature:ReissueFeature",
    "bot.diagnosis_feature:DiagnosisFeature",  # error reports before the FAQ matcher sees them
    "bot.datacheck:DataCheckFeature",
    "bot.faq:FaqFeature",
]


class Feature:
    """Base class: every hook returns None ("not mine") unless overridden."""

    name: str = ""
    commands: tuple[str, ...] = ()  # slash commands it answers (without "/"), listed in /help
    staff_commands: tuple[str, ...] = ()  # commands for the staff chat
    actions: tuple[str, ...] = ()  # `act:<name>` buttons it answers (see knowledge/actions.yaml)
    prefixes: tuple[str, ...] = ()  # callback-data prefixes it answers ("kb" for "kb:...")
    flows: tuple[str, ...] = ()  # flow names it owns

    def __init__(self, hd: "Helpdesk") -> None:
        self.hd = hd

    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        """A slash command in `commands` (or /start, which any feature may take when it has args)."""
        return None

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        """A button press whose data starts with one of `prefixes`, or `act:<name>` for `actions`."""
        return None

    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        """Free text while the chat is in one of this feature's flows."""
        return None

    def on_cancel(self, inbound: Inbound, state: FlowState) -> Replies:
        """/cancel or 처음으로 while in one of this feature's flows (the core clears the flow after)."""
        return None

    def on_document(self, inbound: Inbound) -> Replies:
        """A file sent by the user."""
        return None

    def intercept_text(self, inbound: Inbound) -> Replies:
        """Free text outside any flow, before the FAQ sees it (e.g. an open ticket, an error report)."""
        return None
