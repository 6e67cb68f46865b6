"""The FAQ feature: a question -> answer, "did you mean" choices, or an honest fallback; feedback."""
from __future__ import annotations

from bot.features import Feature, Replies
from bot.flows import FlowState
from bot.knowledge import Entry
from bot.matcher import Decision
from bot.normalize import normalize
from bot.privacy import mask_pii
from bot.clock import to_iso
from bot.types import Button, Inbound, Reply

MAX_RELATED = 3
CLARIFY_FLOW = "clarify"


class FaqFeature(Feature):
    """Answers free text from the knowledge base (the last feature to see a text)."""

    name = "faq"
    prefixes = ("kb", "fb", "cl")
    flows = (CLARIFY_FLOW,)

    # -- free text ------------------------------------------------------------------------------
    def intercept_text(self, inbound: Inbound) -> Replies:
        text = inbound.text.strip()
        if not normalize(text[:2000]):
            return [Reply(self.hd.msg("input.empty"), ((self.hd.home_button(),),))]
        decision = self.hd.decide(text)
        self.hd.log_question(inbound, decision)
        if decision.action == "answer":
            self.hd.miss_streak(inbound.chat_id, missed=False)
            self.hd.flows.clear(inbound.chat_id, CLARIFY_FLOW)
            return [self.answer_reply(self.hd.kb.entries[decision.id])]
        streak = self.hd.miss_streak(inbound.chat_id, missed=True)
        if decision.action == "clarify":
            return [self._clarify(inbound, decision, streak)]
        return [self._fallback(inbound, decision, streak)]

    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        # A new question while choices are shown: the choices lapse, and the text goes the usual way
        # (an error report to the diagnosis, anything else back here).
        self.hd.flows.clear(inbound.chat_id, CLARIFY_FLOW)
        return None

    # -- buttons ----------------------------------------------------------------------------------
    def on_action(self, inbound: Inbound, data: str) -> Replies:
        kind, _, rest = data.partition(":")
        if kind == "kb":
            entry = self.hd.kb.get(rest)
            if entry is None:
                return None
            self.hd.flows.clear(inbound.chat_id, CLARIFY_FLOW)
            self.hd.miss_streak(inbound.chat_id, missed=False)
            return [self.answer_reply(entry)]
        if kind == "fb":
            return self._feedback(inbound, rest)
        if kind == "cl" and rest == "none":
            self.hd.flows.clear(inbound.chat_id, CLARIFY_FLOW)
            streak = self.hd.miss_streak(inbound.chat_id, missed=True)
            return [self._fallback_reply(streak)]
        return None

    def _feedback(self, inbound: Inbound, rest: str) -> Replies:
        entry_id, _, vote = rest.rpartition(":")
        if entry_id not in self.hd.kb.entries or vote not in ("u", "d"):
            return None
        now = self.hd.now()
        self.hd.store.db.execute(
            "INSERT INTO feedback (chat_key, entry_id, value, day, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(chat_key, entry_id, day) DO UPDATE SET value = excluded.value, at = excluded.at",
            [self.hd.chat_key(inbound.chat_id), entry_id, 1 if vote == "u" else -1, now.date().isoformat(), to_iso(now)],
        )
        if vote == "u":
            return [Reply(self.hd.msg("feedback.thanks_up"), tags=("feedback",))]
        rows = [(self.hd.action_button("staff"),), (self.hd.home_button(),)]
        return [Reply(self.hd.msg("feedback.thanks_down"), tuple(rows), tags=("feedback",))]

    # -- replies ----------------------------------------------------------------------------------
    def answer_reply(self, entry: Entry) -> Reply:
        """An entry's answer with its action, related-topic, feedback and home buttons."""
        text = self.hd.renderer.from_source(f"kb:{entry.id}", entry.answer)
        rows: list[tuple[Button, ...]] = []
        actions = [self.hd.action_button(a) for a in entry.actions if self.hd.has_action(a) or a == "staff"]
        rows.extend(tuple(actions[i:i + 2]) for i in range(0, len(actions), 2))
        for related_id in entry.related[:MAX_RELATED]:
            related = self.hd.kb.get(related_id)
            if related is not None:
                rows.append((Button(related.title, f"kb:{related.id}"),))
        rows.append((
            Button("👍", f"fb:{entry.id}:u"),
            Button("👎", f"fb:{entry.id}:d"),
            self.hd.home_button(),
        ))
        tag = "redirect" if entry.is_redirect else "answer"
        return Reply(text, tuple(rows), tags=(f"{tag}:{entry.id}",))

    def _clarify(self, inbound: Inbound, decision: Decision, streak: int) -> Reply:
        choices = [c for c in decision.candidates if c.id in self.hd.kb.entries][:3]
        self.hd.flows.set(inbound.chat_id, CLARIFY_FLOW, "choose", {
            "question": mask_pii(decision.question[:500]),
            "candidates": [c.id for c in choices],
        })
        rows: list[tuple[Button, ...]] = [(Button(self.hd.kb.entries[c.id].title, f"kb:{c.id}"),) for c in choices]
        if streak >= 2:
            rows.insert(0, (self.hd.action_button("staff"),))
        rows.append((Button(self.hd.msg("button.none_of_these"), "cl:none"), self.hd.home_button()))
        text = self.hd.text("clarify.j2", offer_person=streak >= 2)
        return Reply(text, tuple(rows), tags=("clarify",))

    def _fallback(self, inbound: Inbound, decision: Decision, streak: int) -> Reply:
        redirect = self.hd.kb.get(decision.id) if decision.id else None
        if redirect is not None:
            return self.answer_reply(redirect)
        return self._fallback_reply(streak)

    def _fallback_reply(self, streak: int) -> Reply:
        rows: list[tuple[Button, ...]] = [(self.hd.action_button("staff"),)]
        if self.hd.has_action("diagnose"):
            rows.append((self.hd.action_button("diagnose"),))
        rows.append((self.hd.home_button(),))
        text = self.hd.text("fallback.j2", offer_person=streak >= 2)
        return Reply(text, tuple(rows), tags=("fallback",))
