"""The reissue feature: /reissue, every `act:reissue` button, the flow's `rf:` buttons, and the staff side
(`rs:` buttons and /reissue in the staff chat). The state machine itself is `bot.reissue`."""
from __future__ import annotations

from bot.features import Feature, Replies
from bot.flows import FlowState
from bot.reissue import FLOW, PREFIX, REJECT_REASONS, STAFF_PREFIX, Reissue, Request, TransitionError, destination
from bot.types import Button, Inbound, Reply


class ReissueFeature(Feature):
    """재발급 in chat for users; approve / reject for staff."""

    name = "reissue"
    commands = ("reissue",)
    actions = ("reissue",)
    prefixes = (PREFIX, STAFF_PREFIX)
    flows = (FLOW,)

    @property
    def engine(self) -> Reissue:
        return Reissue(self.hd)

    # -- users ------------------------------------------------------------------------------------
    def _is_staff(self, inbound: Inbound) -> bool:
        return inbound.chat_id == self.engine.staff_chat()

    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        if name != "reissue":
            return None
        if self._is_staff(inbound):
            return self._staff_command(inbound, args)
        return self.engine.start(inbound)

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data == "act:reissue":
            if self._is_staff(inbound):
                return self._staff_list()
            return self.engine.start(inbound)
        parts = data.split(":")
        if parts[0] == STAFF_PREFIX:
            return self._staff_button(inbound, parts[1:])
        if parts[0] != PREFIX or len(parts) < 3:
            return None
        if parts[1] == "q" and len(parts) == 4:
            return self.engine.on_request_button(inbound, parts[2], parts[3])
        return self.engine.on_button(inbound, parts[1], parts[2], ":".join(parts[3:]))

    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        return self.engine.on_text(inbound)

    def on_cancel(self, inbound: Inbound, state: FlowState) -> Replies:
        return self.engine.cancel_draft(inbound.chat_id)

    # -- staff ------------------------------------------------------------------------------------
    def _staff_button(self, inbound: Inbound, parts: list[str]) -> Replies:
        if not self._is_staff(inbound):
            return [Reply(self.hd.msg("reissue.staff_only"), tags=("reissue:staff_only",))]
        if len(parts) == 2 and parts[0] == "a":
            return self._decide(inbound, parts[1], "approved", None)
        if len(parts) == 2 and parts[0] == "r":
            rows = tuple((Button(self.hd.msg(f"reissue.button.reject_reason.{code}"),
                                 f"{STAFF_PREFIX}:rr:{parts[1]}:{code}"),) for code in REJECT_REASONS)
            return [Reply(self.hd.msg("reissue.staff_reject_pick", ref=parts[1]), rows,
                          tags=("reissue:staff_reject_pick",))]
        if len(parts) == 3 and parts[0] == "rr" and parts[2] in REJECT_REASONS:
            return self._decide(inbound, parts[1], "rejected", self.hd.msg(f"reissue.reject_reason.{parts[2]}"))
        return None

    def _decide(self, inbound: Inbound, ref: str, target: str, note: str | None) -> list[Reply]:
        engine = self.engine
        actor = f"staff:{inbound.user_id}"
        try:
            request, to_user = engine.decide(ref, target, actor, note, inbound=inbound)
        except LookupError:
            return [Reply(self.hd.msg("reissue.staff_unknown", ref=ref), tags=("reissue:staff_unknown",))]
        except TransitionError:
            current = engine.request(ref)
            return [Reply(self.hd.msg("reissue.request_closed", ref=ref,
                                      status=self.hd.msg(f"reissue.status.{current.status}") if current else ""),
                          tags=("reissue:closed",))]
        by = inbound.user_name or actor
        done = Reply(self.hd.msg("reissue.staff_done", ref=request.ref,
                                 status=self.hd.msg(f"reissue.status.{request.status}"), by=by),
                     tags=(f"reissue:staff_{request.status}",))
        return [done, *to_user]

    def _staff_command(self, inbound: Inbound, args: str) -> list[Reply]:
        words = args.split(maxsplit=2)
        if not words:
            return self._staff_list()
        if words[0] == "approve" and len(words) == 2:
            return self._decide(inbound, words[1].upper(), "approved", None)
        if words[0] == "reject" and len(words) == 3:
            return self._decide(inbound, words[1].upper(), "rejected", words[2].strip())
        if words[0] == "show" and len(words) == 2:
            request = self.engine.request(words[1])
            if request is None:
                return [Reply(self.hd.msg("reissue.staff_unknown", ref=words[1]), tags=("reissue:staff_unknown",))]
            return [self._staff_view(request)]
        return [Reply(self.hd.msg("reissue.staff_usage"), tags=("reissue:staff_usage",))]

    def _staff_list(self) -> list[Reply]:
        engine = self.engine
        rows = [r for status in ("submitted", "approved") for r in engine.requests(status)]
        if not rows:
            return [Reply(self.hd.msg("reissue.staff_none"), tags=("reissue:staff_list",))]
        views = [engine.view(r) for r in rows[:20]]
        buttons = tuple(engine.staff_buttons(r) for r in rows[:20] if r.status == "submitted")
        return [Reply(self.hd.text("reissue/staff_list.j2", rows=views), buttons, tags=("reissue:staff_list",))]

    def _staff_view(self, request: Request) -> Reply:
        engine = self.engine
        text = self.hd.text("reissue/staff_new.j2", r=engine.view(request), dest=destination(request.cert_usage),
                            contact=self.hd.config.contact_text)
        buttons = (engine.staff_buttons(request),) if request.status == "submitted" else ()
        return Reply(text, buttons, tags=("reissue:staff_show",))
