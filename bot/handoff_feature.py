"""Staff hand-off as a Feature: a user reaches a person in one tap; staff answer in the staff chat.

Who is staff: whoever writes in the staff chat (`HELPDESK_STAFF_CHAT_ID`; without one, the terminal staff
chat `console:staff`, so `helpdesk chat --staff` works without Telegram). Everything else is a user.

The user side: `act:staff` (any "상담원 연결" button) or /staff opens a ticket at once (its number is in the
first reply), asks for one optional line about the problem, and from then on every text, file and photo
of the user goes to the ticket until it closes (/cancel or the "상담 끝내기" button ends it from the user
side). The staff side: every message for the staff chat about a ticket is tagged `ticket:<ref>`. For a
Telegram staff chat it waits in `ticket_outbox` (written with the ticket's change, in one transaction), and
the adapter (handlers/staff.py) posts it in the ticket's forum topic: it creates the topic (`topic_name`)
when there is none yet, recreates it with the context (`context_reply_for`) when it was deleted, and reports
where each message went (`record_staff_message`), so that staff messages in the topic, or replies to any
of the ticket's messages in a group without topics, map back to the ticket. `ticket:context` marks the
ticket's first message, `ticket:closed` a message after which the topic is closed.

Replies for a terminal chat other than the one being served (a staff terminal answering a user terminal
on the same database) wait in the `outbox` table; `Helpdesk.pending_for(chat_id)` (set up here, called by
`ConsoleChat.poll`) hands them out.

Other features may open a ticket with what they know: `hd.feature("handoff").open_ticket(inbound,
category="diagnose", details=["..."])`, and any feature may offer `handoff_context(chat_id) -> list[str] |
None`, lines the staff should see (e.g. the diagnosis so far).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime

from bot.features import Feature, Replies
from bot.flows import FlowState
from bot.handoff import OfficeHours, Ticket, TicketStore, chunks, mask_name
from bot.privacy import mask_pii
from bot.types import Button, Document, Inbound, Reply

log = logging.getLogger("helpdesk.handoff")

CONSOLE_STAFF_CHAT = "console:staff"
TICKET_FLOW = "ticket"
# The same flow under a second name: the core clears a flow by name when 처음으로 is pressed; a ticket
# must survive that (only /cancel ends it), so on 처음으로 the flow is re-set under the other name.
TICKET_FLOW_KEPT = "ticket.kept"
DESK_FLOW = "ticketdesk"  # a terminal staff chat working on one ticket (`/open T-...`)
STAFF_COMMANDS = ("tickets", "close", "claim", "release", "reply", "open", "transcript")
RECENT_TURNS = 12
TURN_CHARS = 160
LAST_ANSWER_CHARS = 900
SUMMARY_CHARS = 200
WEEKDAYS = "월화수목금토일"


class HandoffFeature(Feature):
    """Tickets for staff: open, relay both ways, claim / release / close, satisfaction."""

    name = "handoff"
    commands = ("staff",)
    staff_commands = STAFF_COMMANDS
    actions = ("staff",)
    prefixes = ("tk",)
    flows = (TICKET_FLOW, TICKET_FLOW_KEPT, DESK_FLOW)

    def __init__(self, hd) -> None:
        super().__init__(hd)
        self.tickets = TicketStore(hd.store, hd.clock)
        self.office = OfficeHours.from_config(hd.config)
        hd.pending_for = self.pending_for  # ConsoleChat.poll looks for it on the core

    # -- who is who -----------------------------------------------------------------------------
    @property
    def staff_chat_id(self) -> str:
        return self.hd.config.staff_chat_id or CONSOLE_STAFF_CHAT

    def is_staff(self, inbound: Inbound) -> bool:
        return inbound.chat_id == self.staff_chat_id

    def _reachable(self, inbound: Inbound) -> bool:
        """Tickets can reach staff: a staff chat is configured, or the user is in a terminal (terminal staff)."""
        return bool(self.hd.config.staff_chat_id) or inbound.channel == "console"

    def _is_console(self, chat_id: str) -> bool:
        if chat_id.startswith("console:"):
            return True
        row = self.hd.store.db.execute("SELECT channel FROM chats WHERE chat_id = ?", [chat_id]).fetchone()
        return bool(row) and row[0] == "console"

    # -- commands -------------------------------------------------------------------------------
    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        if name == "staff":
            if self.is_staff(inbound):
                return self._list(inbound)
            return self.open_ticket(inbound) or [Reply(self.hd.text("contact.j2"), ((self.hd.home_button(),),))]
        if name not in STAFF_COMMANDS:
            return None
        if not self.is_staff(inbound):
            return [Reply(self.hd.msg("handoff.staff_only"), ((self.hd.home_button(),),), tags=("handoff:refused",))]
        if name == "tickets":
            return self._list(inbound)
        text = ""
        if name == "reply":
            ref, _, text = args.partition(" ")
            ticket = self.tickets.find(ref)
        else:
            ticket = self.tickets.find(args) if args else self._ticket_in_context(inbound)
        if ticket is None:
            return self._route(inbound, [Reply(self.hd.msg("handoff.staff_which"), tags=("handoff:which",))])
        if name == "claim":
            return self._claim(inbound, ticket)
        if name == "release":
            return self._release(inbound, ticket)
        if name == "close":
            return self._close_by_staff(inbound, ticket)
        if name == "transcript":
            return [Reply(self.hd.text("handoff/transcript.j2", t=ticket, lines=self._transcript_lines(ticket)),
                          tags=("handoff:transcript",))]
        if name == "open":
            return self._open_desk(inbound, ticket)
        if not text.strip():
            return [Reply(self.hd.msg("handoff.staff_reply_usage"))]
        return self._relay_from_staff(inbound, ticket, text.strip())

    # -- buttons --------------------------------------------------------------------------------
    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data == "act:staff":
            if self.is_staff(inbound):
                return self._list(inbound)
            return self.open_ticket(inbound)
        parts = data.split(":")
        if len(parts) < 3 or parts[0] != "tk" or not parts[2].isdigit():
            return None
        op, ticket = parts[1], self.tickets.get(int(parts[2]))
        if op in ("c", "r", "x", "o"):
            if not self.is_staff(inbound):
                return [Reply(self.hd.msg("handoff.staff_only"), ((self.hd.home_button(),),),
                              tags=("handoff:refused",))]
            if ticket is None:
                return [Reply(self.hd.msg("handoff.staff_which"))]
            if op == "c":
                return self._claim(inbound, ticket)
            if op == "r":
                return self._release(inbound, ticket)
            if op == "o":
                return self._open_desk(inbound, ticket)
            return self._close_by_staff(inbound, ticket)
        # The user's own buttons: a ticket that is not theirs is as good as an expired button.
        if ticket is None or ticket.chat_id != inbound.chat_id:
            return [Reply(self.hd.msg("button.expired"), ((self.hd.home_button(),),))]
        if op == "k":
            return self._skip_summary(inbound, ticket)
        if op == "q":
            state = self.hd.flows.get(inbound.chat_id)
            if state is not None and state.flow in (TICKET_FLOW, TICKET_FLOW_KEPT):
                self.hd.flows.clear(inbound.chat_id, state.flow)
            return self._close_by_user(inbound, ticket)
        if op == "s" and len(parts) == 4 and parts[3] in "12345" and len(parts[3]) == 1:
            if ticket.is_open:
                return [Reply(self.hd.msg("button.expired"), ((self.hd.home_button(),),))]
            self.tickets.rate(ticket, int(parts[3]))
            return [Reply(self.hd.msg("handoff.rated"), ((self.hd.home_button(),),), tags=("handoff:rated",))]
        return None

    # -- opening --------------------------------------------------------------------------------
    def open_ticket(self, inbound: Inbound, category: str | None = None,
                    details: list[str] | None = None) -> Replies:
        """Open a ticket for the user (or show the one already open); None if no staff can be reached."""
        if not self._reachable(inbound):
            return None
        existing = self.tickets.open_for_chat(inbound.chat_id)
        if existing is not None:
            self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "open", {"ticket": existing.id})
            return [Reply(self.hd.msg("handoff.already_open", ref=existing.ref), self._user_buttons(existing),
                          tags=("handoff:already_open", f"ticket:{existing.ref}"))]
        previous = self.hd.flows.get(inbound.chat_id)
        category = category or self._category(inbound, previous)
        context = self._context(inbound, previous, details or [])
        ticket = self.tickets.open(
            chat_id=inbound.chat_id, channel=inbound.channel, user_id=inbound.user_id,
            user_name=inbound.user_name, category=category, context=context, staff_chat_id=self.staff_chat_id,
        )
        self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "describe", {"ticket": ticket.id})
        now = self.hd.now()
        when = None if self.office.is_open(now) else self.office.next_open(now)
        text = self.hd.text("handoff/opened.j2", ref=ticket.ref, after_hours=when is not None,
                            when=_when_ko(when) if when else "", hours=self.hd.config.office_hours)
        buttons = ((Button(self.hd.msg("handoff.button_skip"), f"tk:k:{ticket.id}"),),
                   (Button(self.hd.msg("handoff.button_end"), f"tk:q:{ticket.id}"),))
        user = Reply(text, buttons, tags=("handoff:opened", f"ticket:{ticket.ref}"))
        log.info("ticket %s opened (%s)", ticket.ref, category)
        return self._route(inbound, [user, self.context_reply(ticket)])

    def _category(self, inbound: Inbound, state: FlowState | None) -> str:
        """The topic of the ticket: the flow the user was in, else the last entry shown, else the last question."""
        if state is not None and state.flow not in (*self.flows, "clarify"):
            return state.flow
        for direction, text, _ in reversed(self.hd.recent_turns(inbound.chat_id, RECENT_TURNS)):
            if direction != "in":
                continue
            pressed = re.match(r"\[button\] (kb|fb):([\w.-]+)", text)
            if pressed and pressed.group(2) in self.hd.kb.entries:
                return pressed.group(2).split(".")[0]
            if not text.startswith("[") and not text.startswith("/"):
                break  # a typed question: the question log knows what became of it
        row = self.hd.store.db.execute(
            "SELECT action, entry_id FROM questions WHERE chat_key = ? ORDER BY id DESC LIMIT 1",
            [self.hd.chat_key(inbound.chat_id)],
        ).fetchone()
        if row is None:
            return "other"
        action, entry_id = row
        if entry_id and action == "answer":
            return entry_id.split(".")[0]
        return "faq"

    def category_label(self, category: str) -> str:
        key = f"handoff.category.{category}"
        return self.hd.msg(key) if self.hd.renderer.has_message(key) else category

    def _context(self, inbound: Inbound, state: FlowState | None, details: list[str]) -> str:
        """What the bot knew, for staff (HTML): holder, diagnosis and other features' notes, recent turns."""
        notes = [mask_pii(str(line)) for line in details]
        if state is not None and state.flow not in self.flows:
            notes.append(self.hd.msg("handoff.note_flow", flow=state.flow, step=state.step))
        for feature in self.hd.features:
            provider = getattr(feature, "handoff_context", None)
            if provider is None or feature is self:
                continue
            try:
                extra = provider(inbound.chat_id)
            except Exception:  # a broken helper must not keep the user from a person
                log.exception("handoff_context of %s failed", feature.name)
                continue
            if extra:
                notes.extend(mask_pii(str(line)) for line in ([extra] if isinstance(extra, str) else extra))
        recent = _meaningful_turns(self.hd.recent_turns(inbound.chat_id, RECENT_TURNS))
        turns = [(direction, _one_line(text, TURN_CHARS)) for direction, text in recent]
        # The bot's last answer in full (a diagnosis, an answer the user found wanting): what staff build on.
        last = next((text for direction, text in reversed(recent) if direction == "out"), "")
        last = last if len(last) > TURN_CHARS else ""
        return self.hd.text("handoff/context.j2", holder=self._holder(inbound.chat_id), notes=notes, turns=turns,
                            channel=inbound.channel, last_answer=last[:LAST_ANSWER_CHARS])

    def _holder(self, chat_id: str) -> dict | None:
        """The linked holder's summary with masked identifiers, or None."""
        try:
            from bot.registry import Registry
        except ImportError:
            return None
        registry = Registry(self.hd)
        holder = registry.holder_by_chat(chat_id)
        if holder is None:
            return None
        now = self.hd.now()
        certs = [
            {"kind": c.kind, "usage": c.usage, "scheme": c.scheme, "serial": _mask_serial(c.serial),
             "status": c.effective_status(now), "days_left": c.days_left(now),
             "not_after": c.not_after.date().isoformat()}
            for c in registry.certificates(holder.employee_id, now)
        ]
        return {"name": holder.name, "agency": holder.agency, "department": holder.department,
                "employee_id": _mask_id(holder.employee_id), "certs": certs}

    # -- the staff-chat side of a ticket --------------------------------------------------------
    def topic_name(self, ticket: Ticket) -> str:
        return f"{ticket.ref} · {self.category_label(ticket.category)}"[:128]

    def _to_staff(self, ticket: Ticket, text: str, buttons=(), document: Document | None = None,
                  tags: tuple[str, ...] = ()) -> Reply:
        """A message for the ticket's place in the staff chat (its forum topic, or a reply to its message)."""
        fresh = self.tickets.get(ticket.id) or ticket
        return Reply(
            text, tuple(buttons), document=document, chat_id=fresh.staff_chat_id, thread_id=fresh.thread_id,
            reply_to_message_id=fresh.staff_message_id if fresh.topic_mode == "plain" else None,
            tags=(f"ticket:{fresh.ref}", *tags),
        )

    def _staff_buttons(self, ticket: Ticket) -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.hd.msg("handoff.button_claim"), f"tk:c:{ticket.id}"),
                 Button(self.hd.msg("handoff.button_release"), f"tk:r:{ticket.id}"),
                 Button(self.hd.msg("handoff.button_close"), f"tk:x:{ticket.id}")),)

    def context_reply(self, ticket: Ticket, for_desk: bool = False) -> Reply:
        """The ticket's first message in the staff chat (also re-posted when its topic was deleted)."""
        ticket = self.tickets.get(ticket.id) or ticket
        text = self.hd.text("handoff/staff_ticket.j2", t=ticket, category=self.category_label(ticket.category),
                            opened=_when_ko(ticket.opened), claimer=ticket.claimed_name,
                            after_hours=not self.office.is_open(ticket.opened), context=ticket.context,
                            unreachable=bool(ticket.unreachable_at), closed=not ticket.is_open)
        reply = self._to_staff(ticket, text, self._staff_buttons(ticket) if ticket.is_open else (),
                               tags=("ticket:context",))
        if for_desk:
            return Reply(reply.text, reply.buttons, tags=reply.tags)
        return reply

    def context_reply_for(self, ref: str) -> Reply | None:
        """For the adapter: the context message of the ticket `ref` (to re-post in a recreated topic)."""
        ticket = self.tickets.find(ref)
        return self.context_reply(ticket) if ticket else None

    def record_staff_message(self, ref: str, chat_id: str, thread_id: int | None, message_id: int | None,
                             mode: str = "") -> None:
        """For the adapter: a message of ticket `ref` went to the staff chat at (thread, message).

        `mode="plain"` says the staff chat has no forum topics (replies to the message map to the ticket).
        """
        ticket = self.tickets.find(ref)
        if ticket is not None:
            self.tickets.record_staff_message(ticket, chat_id, thread_id, message_id, mode)

    def topic_lost(self, ref: str) -> None:
        """For the adapter: the ticket's forum topic was deleted; the next message recreates it."""
        ticket = self.tickets.find(ref)
        if ticket is not None:
            self.tickets.forget_topic(ticket)

    def user_unreachable(self, chat_id: str) -> list[Reply]:
        """For the adapter: the user's chat refused a message (bot blocked); tells staff once per ticket."""
        ticket = self.tickets.open_for_chat(chat_id) or self.tickets.last_for_chat(chat_id)
        if ticket is None or not self.tickets.mark_unreachable(ticket):
            return []
        self.tickets.add_message(ticket, "system", "user unreachable", kind="event")
        return [self._to_staff(ticket, self.hd.msg("handoff.staff_unreachable", ref=ticket.ref),
                               tags=("handoff:unreachable",))]

    def ticket_for(self, inbound: Inbound) -> Ticket | None:
        """For the adapter: the open ticket an inbound belongs to (staff: by topic / reply; user: their own)."""
        if self.is_staff(inbound):
            ticket = self._ticket_in_context(inbound)
        else:
            ticket = self.tickets.open_for_chat(inbound.chat_id)
        return ticket if ticket is not None and ticket.is_open else None

    def _ticket_in_context(self, inbound: Inbound) -> Ticket | None:
        """The ticket a staff-chat message is about: its forum topic, the message it replies to, or /open."""
        if inbound.thread_id is not None:
            ticket = self.tickets.by_thread(inbound.chat_id, inbound.thread_id)
            if ticket is not None:
                return ticket
        if inbound.reply_to_message_id is not None:
            ticket = self.tickets.by_staff_message(inbound.chat_id, inbound.reply_to_message_id)
            if ticket is not None:
                return ticket
        state = self.hd.flows.get(inbound.chat_id)
        if state is not None and state.flow == DESK_FLOW and inbound.thread_id is None:
            return self.tickets.get(int(state.data.get("ticket", 0)))
        return None

    # -- relaying -------------------------------------------------------------------------------
    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        if state.flow == DESK_FLOW:
            return self._staff_text(inbound)
        ticket = self.tickets.open_for_chat(inbound.chat_id)
        if ticket is None:
            self.hd.flows.clear(inbound.chat_id, state.flow)
            return None  # the ticket was closed meanwhile: the bot answers again
        if state.step == "describe":
            return self._summary(inbound, ticket, inbound.text.strip())
        return self._relay_from_user(inbound, ticket, inbound.text.strip())

    def intercept_text(self, inbound: Inbound) -> Replies:
        if self.is_staff(inbound):
            return self._staff_text(inbound)
        ticket = self.tickets.open_for_chat(inbound.chat_id)
        if ticket is None:
            return None
        # An open ticket whose flow was replaced (e.g. another flow was started and finished): staff still answer.
        self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "open", {"ticket": ticket.id})
        return self._relay_from_user(inbound, ticket, inbound.text.strip())

    def on_document(self, inbound: Inbound) -> Replies:
        document = inbound.document
        assert document is not None
        if self.is_staff(inbound):
            ticket = self._ticket_in_context(inbound)
            if ticket is None:
                return None
            return self._relay_from_staff(inbound, ticket, inbound.text.strip(), document)
        ticket = self.tickets.open_for_chat(inbound.chat_id)
        if ticket is None:
            return None
        if _is_private_key(document, self.hd.now()):
            self.tickets.add_message(ticket, "system", f"private key refused: {document.filename}", kind="event")
            return [Reply(self.hd.msg("handoff.private_key"), self._user_buttons(ticket), tags=("handoff:key",))]
        state = self.hd.flows.get(inbound.chat_id)
        if state is None or state.flow not in (TICKET_FLOW, TICKET_FLOW_KEPT) or state.step == "describe":
            self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "open", {"ticket": ticket.id})
        return self._relay_from_user(inbound, ticket, inbound.text.strip(), document)

    def _summary(self, inbound: Inbound, ticket: Ticket, text: str) -> list[Reply]:
        summary = _one_line(mask_pii(text), SUMMARY_CHARS)
        self.tickets.set_summary(ticket, summary)
        self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "open", {"ticket": ticket.id})
        self.tickets.add_message(ticket, "user", mask_pii(text), author=ticket.user_name)
        staff = self._to_staff(ticket, self.hd.msg("handoff.staff_summary", ref=ticket.ref, text=mask_pii(text)),
                               tags=("handoff:summary",))
        user = Reply(self.hd.msg("handoff.summary_sent"), self._user_buttons(ticket), tags=("handoff:summary",))
        return self._route(inbound, [user, staff])

    def _skip_summary(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        if not ticket.is_open:
            return [Reply(self.hd.msg("button.expired"), ((self.hd.home_button(),),))]
        self.hd.flows.set(inbound.chat_id, TICKET_FLOW, "open", {"ticket": ticket.id})
        return [Reply(self.hd.msg("handoff.summary_skipped"), self._user_buttons(ticket), tags=("handoff:skipped",))]

    def _relay_from_user(self, inbound: Inbound, ticket: Ticket, text: str,
                         document: Document | None = None) -> list[Reply]:
        masked = mask_pii(text)
        if document is not None:
            kind = _file_kind(document)
            self.tickets.add_message(ticket, "user", masked, author=ticket.user_name, kind=kind,
                                     file_name=document.filename)
            body = self.hd.msg("handoff.staff_user_file", ref=ticket.ref, name=ticket.user_name or "사용자",
                               file=document.filename, text=masked)
        else:
            if not text:
                return []
            self.tickets.add_message(ticket, "user", masked, author=ticket.user_name)
            body = self.hd.msg("handoff.staff_user_text", ref=ticket.ref, name=ticket.user_name or "사용자",
                               text=masked)
        replies = [self._to_staff(ticket, body, document=document, tags=("handoff:relay",))]
        if inbound.channel == "console":  # a terminal shows no "sent" tick: say it
            replies.append(Reply(self.hd.msg("handoff.sent"), tags=("handoff:sent",)))
        # Nothing to say to the user, except that a message sent with nobody on duty waits for office hours.
        if self.tickets.get(ticket.id).claimed_by is None and not self.office.is_open(self.hd.now()):
            when = self.office.next_open(self.hd.now())
            replies.append(Reply(self.hd.msg("handoff.queued_after_hours", when=_when_ko(when) if when else ""),
                                 tags=("handoff:after_hours",)))
        return self._route(inbound, replies)

    def _staff_text(self, inbound: Inbound) -> list[Reply]:
        ticket = self._ticket_in_context(inbound)
        if ticket is None:
            if inbound.channel == "console":
                return [Reply(self.hd.msg("handoff.staff_which"), tags=("handoff:which",))]
            return []  # staff talking among themselves outside any ticket
        return self._relay_from_staff(inbound, ticket, inbound.text.strip())

    def _relay_from_staff(self, inbound: Inbound, ticket: Ticket, text: str,
                          document: Document | None = None) -> list[Reply]:
        if not ticket.is_open:
            return self._route(inbound, [self._staff_note(inbound, ticket,
                                                          self.hd.msg("handoff.staff_closed", ref=ticket.ref))])
        if not text and document is None:
            return []
        replies: list[Reply] = []
        name = inbound.user_name
        if ticket.claimed_by is None and self.tickets.claim(ticket, inbound.user_id, name):
            replies.append(self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_claimed", ref=ticket.ref,
                                                                         name=name or "상담원")))
        kind = "text" if document is None else _file_kind(document)
        self.tickets.add_message(ticket, "staff", mask_pii(text), author=name, kind=kind,
                                 file_name=document.filename if document else None)
        header = self._staff_label(name)
        user_text = self.hd.msg("handoff.from_staff", who=header, text=text) if text else \
            self.hd.msg("handoff.from_staff_file", who=header)
        replies.append(Reply(user_text, document=document, chat_id=ticket.chat_id,
                             tags=(f"ticket:{ticket.ref}", "handoff:to_user")))
        if ticket.unreachable_at:
            replies.append(self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_unreachable",
                                                                         ref=ticket.ref)))
        elif inbound.channel == "console":
            replies.append(Reply(self.hd.msg("handoff.sent_staff", ref=ticket.ref), tags=("handoff:sent",)))
        return self._route(inbound, replies)

    def _staff_label(self, name: str) -> str:
        masked = mask_name(name)
        return self.hd.msg("handoff.staff_named", name=masked) if masked else self.hd.msg("handoff.staff_unnamed")

    def _staff_note(self, inbound: Inbound, ticket: Ticket, text: str, buttons=()) -> Reply:
        """A note for staff about a ticket: where the staff member is (terminal), or the ticket's topic."""
        if inbound.channel == "console" and self.is_staff(inbound):
            return Reply(text, tuple(buttons), tags=(f"ticket:{ticket.ref}",))
        return self._to_staff(ticket, text, buttons)

    def _open_desk(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        """Terminal staff: work on one ticket; plain text now goes to its user."""
        self.hd.flows.set(inbound.chat_id, DESK_FLOW, "reply", {"ticket": ticket.id})
        return [self.context_reply(ticket, for_desk=True),
                Reply(self.hd.msg("handoff.desk_opened", ref=ticket.ref), tags=("handoff:desk",))]

    # -- claim / release / close ----------------------------------------------------------------
    def _claim(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        if not ticket.is_open:
            return [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_closed", ref=ticket.ref))]
        name = inbound.user_name
        if ticket.claimed_by not in (None, inbound.user_id):
            return [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_taken", ref=ticket.ref,
                                                                  name=ticket.claimed_name or "다른 상담원"))]
        if not self.tickets.claim(ticket, inbound.user_id, name):
            return [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_closed", ref=ticket.ref))]
        replies = [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_claimed", ref=ticket.ref,
                                                                 name=name or "상담원"))]
        if inbound.channel == "console" and self.is_staff(inbound):  # a terminal works on the ticket it took
            self.hd.flows.set(inbound.chat_id, DESK_FLOW, "reply", {"ticket": ticket.id})
            replies.append(Reply(self.hd.msg("handoff.desk_opened", ref=ticket.ref), tags=("handoff:desk",)))
        if ticket.claimed_by != inbound.user_id:
            replies.append(Reply(self.hd.msg("handoff.claimed", who=self._staff_label(name)),
                                 chat_id=ticket.chat_id, tags=(f"ticket:{ticket.ref}", "handoff:claimed")))
        return self._route(inbound, replies)

    def _release(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        if not self.tickets.release(ticket):
            return [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_not_claimed", ref=ticket.ref))]
        return self._route(inbound, [self._staff_note(inbound, ticket, self.hd.msg(
            "handoff.staff_released", ref=ticket.ref, name=inbound.user_name or "상담원"), self._staff_buttons(ticket))])

    def _close_by_staff(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        if not self.tickets.close(ticket, "staff", inbound.user_name):
            return [self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_closed", ref=ticket.ref))]
        self._end_user_flow(ticket)
        state = self.hd.flows.get(inbound.chat_id)
        if state is not None and state.flow == DESK_FLOW and state.data.get("ticket") == ticket.id:
            self.hd.flows.clear(inbound.chat_id, DESK_FLOW)
        user = Reply(self.hd.text("handoff/closed.j2", ref=ticket.ref, by_staff=True), self._rating_buttons(ticket),
                     chat_id=ticket.chat_id, tags=(f"ticket:{ticket.ref}", "handoff:closed"))
        staff = self._staff_note(inbound, ticket, self.hd.msg("handoff.staff_closed_now", ref=ticket.ref,
                                                              name=inbound.user_name or "상담원"))
        staff = _with_tag(staff, "ticket:closed")
        return self._route(inbound, [staff, user])

    def _close_by_user(self, inbound: Inbound, ticket: Ticket) -> list[Reply]:
        if not self.tickets.close(ticket, "user", ticket.user_name):
            return [Reply(self.hd.msg("cancel.nothing"), ((self.hd.home_button(),),))]
        answered = (self.tickets.get(ticket.id) or ticket).first_staff_reply_at is not None
        user = Reply(self.hd.text("handoff/closed.j2", ref=ticket.ref, by_staff=False, rate=answered),
                     self._rating_buttons(ticket) if answered else ((self.hd.home_button(),),),
                     tags=(f"ticket:{ticket.ref}", "handoff:closed"))
        staff = _with_tag(self._to_staff(ticket, self.hd.msg("handoff.staff_user_left", ref=ticket.ref)),
                          "ticket:closed")
        return self._route(inbound, [user, staff])

    def on_cancel(self, inbound: Inbound, state: FlowState) -> Replies:
        if state.flow == DESK_FLOW:
            return [Reply(self.hd.msg("handoff.desk_left"))]
        ticket = self.tickets.open_for_chat(inbound.chat_id)
        if ticket is None:
            return None
        if inbound.action is not None:
            # 처음으로 (or any button that resets the chat) is not a goodbye: keep the ticket and its flow.
            other = TICKET_FLOW_KEPT if state.flow == TICKET_FLOW else TICKET_FLOW
            self.hd.flows.set(inbound.chat_id, other, "open", {"ticket": ticket.id})
            return None
        return self._close_by_user(inbound, ticket)

    def _end_user_flow(self, ticket: Ticket) -> None:
        for flow in (TICKET_FLOW, TICKET_FLOW_KEPT):
            self.hd.flows.clear(ticket.chat_id, flow)

    def _user_buttons(self, ticket: Ticket) -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.hd.msg("handoff.button_end"), f"tk:q:{ticket.id}"),),)

    def _rating_buttons(self, ticket: Ticket) -> tuple[tuple[Button, ...], ...]:
        rates = [Button(self.hd.msg("handoff.button_rate", n=n), f"tk:s:{ticket.id}:{n}") for n in range(1, 6)]
        return (*chunks(rates, 5), (self.hd.home_button(),))

    # -- lists, re-notification, transcript ------------------------------------------------------
    def _list(self, inbound: Inbound) -> list[Reply]:
        now = self.hd.now()
        rows = [
            {"ref": t.ref, "category": self.category_label(t.category), "age": _age_ko(now - t.opened),
             "claimer": t.claimed_name or ("상담원" if t.claimed_by else ""), "summary": t.summary,
             "unreachable": bool(t.unreachable_at)}
            for t in self.tickets.list_open()
        ]
        buttons: tuple[tuple[Button, ...], ...] = ()
        if inbound.channel == "console":  # a terminal has no topics: open a ticket from the list
            buttons = chunks((Button(self.hd.msg("handoff.button_open", ref=r["ref"]), f"tk:o:{t.id}")
                              for r, t in zip(rows, self.tickets.list_open())), 2)
        return [Reply(self.hd.text("handoff/list.j2", rows=rows), buttons, tags=("handoff:list",))]

    def queue_notifications(self) -> int:
        """Queue due re-notifications for a Telegram staff chat (the adapter's job); how many."""
        return len(self.queue_for_staff(self.due_notifications()))

    def queue_for_staff(self, replies: list[Reply]) -> list[Reply]:
        """Queue ticket messages made outside any inbound (jobs, adapter hooks) where they will be sent."""
        for reply in replies:
            ticket = self._ticket_of(reply)
            if self._is_console(reply.chat_id or self.staff_chat_id) or ticket is None:
                self.tickets.outbox_put(reply.chat_id or self.staff_chat_id, reply)
            else:
                self.tickets.staff_put(ticket, reply)
        return replies

    def due_notifications(self) -> list[Reply]:
        """Unclaimed tickets waiting longer than `ticket_renotify_minutes`, announced again (office hours only)."""
        now = self.hd.now()
        if not self.office.is_open(now):
            return []
        replies = []
        for ticket in self.tickets.due_renotify(now, self.hd.config.ticket_renotify_minutes):
            self.tickets.mark_notified(ticket)
            text = self.hd.msg("handoff.staff_renotify", ref=ticket.ref, age=_age_ko(now - ticket.opened),
                               category=self.category_label(ticket.category))
            replies.append(self._to_staff(ticket, text, ((self._staff_buttons(ticket)[0][0],),),
                                          tags=("handoff:renotify",)))
        return replies

    def _transcript_lines(self, ticket: Ticket) -> list[dict]:
        return [{"at": m.at[11:16], "direction": m.direction, "author": m.author, "kind": m.kind, "text": m.text,
                 "file": m.file_name} for m in self.tickets.transcript(ticket.id)]

    # -- terminal chats -------------------------------------------------------------------------
    def _route(self, inbound: Inbound, replies: list[Reply]) -> list[Reply]:
        """Which replies wait in the outbox instead of being returned to the adapter at hand.

        A reply for another terminal chat waits in `outbox` for that terminal to poll (`pending_for`). A
        ticket's message for a Telegram staff chat waits in `ticket_outbox` for handlers/staff.py, which puts
        it in the ticket's forum topic, creating or recreating the topic first; the row is written in the
        same transaction as the state change, so a crash loses none. Everything else is returned.
        """
        kept = []
        for reply in replies:
            target = reply.chat_id
            if target is None:
                kept.append(reply)
            elif self._is_console(target):
                if target == inbound.chat_id:
                    kept.append(reply)
                else:
                    self.tickets.outbox_put(target, reply)
            elif target == self.staff_chat_id and (ticket := self._ticket_of(reply)) is not None:
                self.tickets.staff_put(ticket, reply)
            else:
                kept.append(reply)
        return kept

    def _ticket_of(self, reply: Reply) -> Ticket | None:
        ref = next((t[7:] for t in reply.tags if t.startswith("ticket:T-")), None)
        return self.tickets.find(ref) if ref else None

    def pending_for(self, chat_id: str) -> list[Reply]:
        """Replies queued for a terminal chat by other processes (and, for terminal staff, re-notifications)."""
        if chat_id == self.staff_chat_id and self._is_console(chat_id):
            for reply in self.due_notifications():
                self.tickets.outbox_put(chat_id, reply)
        return self.tickets.outbox_take(chat_id)


# -- helpers ------------------------------------------------------------------------------------------

_NOISE = ("/start", "/help", "/staff", "/cancel", "[button] home", "[button] act:staff")


def _meaningful_turns(turns: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The turns staff need: without the welcome screen, /help and the request for a person itself."""
    kept: list[tuple[str, str]] = []
    skipping = False
    for direction, text, _ in turns:
        if direction == "in":
            skipping = text.strip() in _NOISE
        if not skipping:
            kept.append((direction, text))
    return kept


def _with_tag(reply: Reply, tag: str) -> Reply:
    from dataclasses import replace

    return replace(reply, tags=(*reply.tags, tag))


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _mask_serial(serial: str) -> str:
    return "…" + serial[-4:] if len(serial) > 4 else "…"


def _mask_id(value: str) -> str:
    if len(value) <= 2:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 3) + value[-1]


def _when_ko(moment: datetime) -> str:
    """11월 26일(목) 09:00."""
    return f"{moment.month}월 {moment.day}일({WEEKDAYS[moment.weekday()]}) {moment:%H:%M}"


def _age_ko(delta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}분"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}시간 {minutes}분" if minutes else f"{hours}시간"
    return f"{hours // 24}일 {hours % 24}시간"


def _file_kind(document: Document) -> str:
    image = document.mime_type.startswith("image/") or document.filename.lower().endswith(
        (".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic"))
    return "photo" if image else "document"


def _is_private_key(document: Document, now: datetime) -> bool:
    try:
        from bot.certs import inspect_bytes
    except ImportError:
        return b"PRIVATE KEY" in document.content or document.filename.lower().endswith((".key", ".pfx", ".p12"))
    return inspect_bytes(document.filename, document.content, now=now).error_code == "private_key"

