"""Reissue (재발급) in chat: the flow as an explicit state machine, and the requests it submits.

The flow: reason -> identity -> certificate -> (revoke, for lost media or a suspected key leak) -> phone
-> summary (수정 -> edit -> back) -> submitted. `TRANSITIONS` lists every allowed move; `next_step` says
where the flow goes from what is known so far; each step has one prompt function and one input function.
Every step is written to SQLite before the reply goes out: the chat's `conversations` row (flow `reissue`,
through `hd.flows`) says the flow is active, and `reissue_drafts` keeps the answers, so a restart (even
kill -9) or another flow taking the chat for a while (the mismatched-data check) loses nothing.

Every button carries the draft's token (`rf:<token>:<verb>[:<arg>]`), so a button from an earlier draft,
an earlier step or another person's certificate is recognised and explained, and a double tap on 제출 finds
the request the first tap created (`reissue_requests.submit_key`).

Submitted requests move submitted -> approved | rejected, approved -> issued (when the registry shows the new
certificate: `reconcile_issued`), and submitted/approved -> cancelled (`REQUEST_TRANSITIONS`). People not in
the chat that caused a change are told through the outbox (`bot.handoff.TicketStore.outbox_put`), which the
console and Telegram adapters deliver.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from bot.clock import parse_instant, to_iso
from bot.handoff import TicketStore
from bot.privacy import mask_pii
from bot.reissue_pdf import form_pdf, pdf_available
from bot.registry import CertificateRecord, Holder, Registry, RegistryError, normalize_phone, phone_hmac
from bot.types import Button, Document, Inbound, Reply

if TYPE_CHECKING:
    from bot.helpdesk import Helpdesk

FLOW = "reissue"
PREFIX = "rf"  # the user's buttons: rf:<token>:<verb>[:<arg>], rf:q:<verb>:<ref> for a submitted request
STAFF_PREFIX = "rs"  # staff buttons: rs:a:<ref> approve, rs:r:<ref> reject (pick a reason), rs:rr:<ref>:<code>

REASONS = ("password", "media", "leak", "change", "expired", "other")
REVOKE_FIRST = frozenset({"media", "leak"})  # the old certificate must be revoked before a reissue
REJECT_REASONS = ("mismatch", "duplicate", "identity", "other")

# Steps of the chat flow, in the order a user meets them. "edit" is the 수정 menu.
STEPS = ("reason", "identity", "certificate", "revoke", "phone", "summary", "edit")
# Where each step may go next (besides the ends every step may reach: cancelled, expired).
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"reason"}),
    "reason": frozenset({"identity", "certificate", "revoke", "phone", "summary"}),
    "identity": frozenset({"certificate", "revoke", "phone", "summary"}),
    "certificate": frozenset({"identity", "revoke", "phone", "summary"}),
    "revoke": frozenset({"identity", "phone", "summary"}),
    "phone": frozenset({"identity", "summary"}),
    "summary": frozenset({"identity", "edit", "submitted"}),
    "edit": frozenset({"identity", "reason", "certificate", "phone", "summary"}),
}
ENDS = frozenset({"cancelled", "expired"})

REQUEST_STATUSES = ("submitted", "approved", "rejected", "issued", "cancelled")
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"approved", "rejected", "cancelled"}),
    "approved": frozenset({"issued", "cancelled"}),
    "rejected": frozenset(),
    "issued": frozenset(),
    "cancelled": frozenset(),
}
OPEN_STATUSES = ("submitted", "approved")

REMIND_AFTER = timedelta(hours=24)
EXPIRE_AFTER = timedelta(days=7)

PERSONAL_USAGES = frozenset({"personal-admin", "personal-public"})
KLID_USAGES = frozenset({"org", "server", "special"})
FORM_KINDS = ("personal", "org", "server", "special")
_FORM_KIND_OF_USAGE = {
    "personal-admin": "personal", "personal-public": "personal", "epki-personal": "personal",
    "org": "org", "epki-org": "org", "server": "server", "epki-server": "server",
    "special": "special", "epki-special": "special",
}
_REF = re.compile(r"^R-\d{4}-\d{6}$")


class TransitionError(ValueError):
    """A move the state machine does not allow (a bug in the caller, or a stale request status)."""


def check_transition(step: str | None, target: str) -> None:
    """Raise TransitionError unless the flow may go from `step` to `target` (staying put is always allowed)."""
    if target == step or target in ENDS:
        return
    if target not in TRANSITIONS.get(step, frozenset()):
        raise TransitionError(f"reissue flow cannot go from {step or 'start'} to {target}")


def check_request_transition(status: str, target: str) -> None:
    if target not in REQUEST_TRANSITIONS.get(status, frozenset()):
        raise TransitionError(f"request is {status}; it cannot become {target}")


# -- records --------------------------------------------------------------------------------------------

@dataclass
class Draft:
    """A chat's reissue flow in progress: the step it is at and the answers so far."""

    chat_id: str
    token: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    touched_at: str = ""
    reminded_at: str | None = None


@dataclass(frozen=True)
class CertChoice:
    """What the user picks: one certificate, or a signing/encryption pair issued together."""

    id: int  # the representative row (the signing certificate of a pair)
    ids: tuple[int, ...]
    usage: str
    status: str  # effective status of the representative
    not_after: datetime
    serials: tuple[tuple[str, str], ...]  # (kind, serial), signing first

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "ids": list(self.ids), "usage": self.usage, "status": self.status,
                "not_after": to_iso(self.not_after), "serials": [list(s) for s in self.serials]}


@dataclass(frozen=True)
class Request:
    """A submitted reissue request."""

    id: int
    ref: str
    submit_key: str
    employee_id: str
    chat_id: str
    channel: str
    reason: str
    certificate_id: int | None
    cert_serial: str | None
    cert_usage: str | None
    cert_not_after: str | None
    revoke_method: str | None
    phone_masked: str | None
    status: str
    status_note: str | None
    decided_by: str | None
    new_certificate_id: int | None
    form_data: str
    created_at: str
    updated_at: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def form(self) -> dict[str, Any]:
        return json.loads(self.form_data)

    def as_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _REQUEST_COLUMNS if name not in ("form_data", "submit_key")}
        out["holder_name"] = self.form.get("name", "")
        return out


_REQUEST_COLUMNS = tuple(Request.__dataclass_fields__)


@dataclass(frozen=True)
class FlowReminder:
    """An idle draft that is due a reminder (`kind` "remind") or is to be dropped ("expire")."""

    chat_id: str
    kind: str
    step: str
    token: str


# -- the engine ------------------------------------------------------------------------------------------

class Reissue:
    """Drafts, steps and requests over the helpdesk's store. Cheap to create; holds no state."""

    def __init__(self, hd: "Helpdesk") -> None:
        self.hd = hd
        self.db = hd.store.db
        self.registry = Registry(hd)

    # -- drafts -------------------------------------------------------------------------------------
    def draft(self, chat_id: str) -> Draft | None:
        row = self.db.execute(
            "SELECT chat_id, token, step, data, started_at, touched_at, reminded_at FROM reissue_drafts "
            "WHERE chat_id = ?", [chat_id]).fetchone()
        if row is None:
            return None
        return Draft(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])

    def _new_draft(self, chat_id: str) -> Draft:
        now = to_iso(self.hd.now())
        return Draft(chat_id, secrets.token_hex(3), "reason", {}, now, now, None)

    def _save(self, draft: Draft, step: str) -> Draft:
        """Move the draft to `step` (checked against TRANSITIONS) and make its flow the chat's active one.
        Every save is something the user did, so the idle time (and the one reminder) starts again."""
        previous = self.draft(draft.chat_id)
        check_transition(previous.step if previous and previous.token == draft.token else None, step)
        draft.step = step
        draft.touched_at, draft.reminded_at = to_iso(self.hd.now()), None
        with self.hd.store.transaction():
            self.db.execute(
                "INSERT INTO reissue_drafts (chat_id, token, step, data, started_at, touched_at, reminded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET token = excluded.token, "
                "step = excluded.step, data = excluded.data, started_at = excluded.started_at, "
                "touched_at = excluded.touched_at, reminded_at = excluded.reminded_at",
                [draft.chat_id, draft.token, step, json.dumps(draft.data, ensure_ascii=False), draft.started_at,
                 draft.touched_at, draft.reminded_at])
            self.hd.flows.set(draft.chat_id, FLOW, step, {"token": draft.token})
        return draft

    def drop_draft(self, chat_id: str) -> None:
        with self.hd.store.transaction():
            self.db.execute("DELETE FROM reissue_drafts WHERE chat_id = ?", [chat_id])
            self.hd.flows.clear(chat_id, FLOW)

    # -- where the flow goes -----------------------------------------------------------------------
    def next_step(self, draft: Draft, holder: Holder | None) -> str:
        """The first step whose answer is still missing (the summary when none is)."""
        data = draft.data
        if not data.get("reason"):
            return "reason"
        if holder is None:
            return "identity"
        if data.get("employee_id") != holder.employee_id:
            # Linked now, or linked to someone else than before: that person's certificate and phone.
            for key in ("cert", "revoke", "phone_masked"):
                data.pop(key, None)
            data["employee_id"] = holder.employee_id
        if "cert" not in data:
            return "certificate"
        if data["reason"] in REVOKE_FIRST and not data.get("revoke"):
            cert = data.get("cert")
            if cert and cert["status"] == "revoked":
                data["revoke"] = "already"
            else:
                return "revoke"
        if not data.get("phone_masked"):
            return "phone"
        return "summary"

    def advance(self, draft: Draft, before: Iterable[Reply] = ()) -> list[Reply]:
        """Save the draft at its next step and show that step (after `before`)."""
        holder = self.registry.holder_by_chat(draft.chat_id)
        step = self.next_step(draft, holder)
        self._save(draft, step)
        return [*before, self.prompt(draft, holder)]

    def start(self, inbound: Inbound) -> list[Reply]:
        """/reissue, the 재발급 button: resume the draft, show the open request, or begin."""
        if not inbound.is_private:  # the flow asks for a phone number: never in front of a group
            return [Reply(self.hd.msg("reissue.private_only"), tags=("reissue:private_only",))]
        draft = self.draft(inbound.chat_id)
        if draft is not None:
            holder = self.registry.holder_by_chat(draft.chat_id)
            # Waiting for a link that has happened meanwhile: go on from where the answers stop.
            self._save(draft, self.next_step(draft, holder) if draft.step == "identity" else draft.step)
            return [self.prompt(draft, holder, resumed=True)]
        holder = self.registry.holder_by_chat(inbound.chat_id)
        current = self.current_request(inbound.chat_id, holder)
        if current is not None and current.is_open:
            return [self.status_reply(current)]
        draft = self._new_draft(inbound.chat_id)
        return self.advance(draft)

    # -- prompts (one per step) -------------------------------------------------------------------
    def prompt(self, draft: Draft, holder: Holder | None, resumed: bool = False) -> Reply:
        show = getattr(self, f"_prompt_{draft.step}")
        reply: Reply = show(draft, holder)
        if resumed and draft.step != "reason":
            reply = Reply(self.hd.msg("reissue.resumed") + "\n\n" + reply.text, reply.buttons, tags=reply.tags)
        return reply

    def _progress(self, draft: Draft, step: str) -> dict[str, Any]:
        """Step n of N as the user sees it (the revoke step counts only where it applies; edit is no step)."""
        revoke = draft.data.get("reason") in REVOKE_FIRST
        steps = [s for s in STEPS if s != "edit" and (s != "revoke" or revoke)]
        n = steps.index(step) + 1 if step in steps else len(steps)
        return {"n": n, "total": len(steps), "title": self.hd.msg(f"reissue.step.{step}")}

    def _b(self, draft: Draft, label: str, verb: str, arg: str = "") -> Button:
        return Button(label, f"{PREFIX}:{draft.token}:{verb}" + (f":{arg}" if arg else ""))

    def _cancel_row(self, draft: Draft) -> tuple[Button, ...]:
        return (self._b(draft, self.hd.msg("reissue.button.cancel"), "x"),)

    def _reply(self, draft: Draft, template: str, rows: list[tuple[Button, ...]], **context) -> Reply:
        text = self.hd.text(f"reissue/{template}.j2", progress=self._progress(draft, draft.step), **context)
        return Reply(text, tuple(rows) + (self._cancel_row(draft),), tags=(f"reissue:{draft.step}",))

    def _prompt_reason(self, draft: Draft, holder: Holder | None) -> Reply:
        rows = [(self._b(draft, self.hd.msg(f"reissue.reason.{r}"), "r", r),) for r in REASONS]
        return self._reply(draft, "reason", rows, intro=not draft.data)

    def _prompt_identity(self, draft: Draft, holder: Holder | None) -> Reply:
        rows = [(self._b(draft, self.hd.msg("reissue.button.linked"), "i"),)]
        extra = [self.hd.action_button(a) for a in ("link", "staff") if self.hd.has_action(a)]
        if extra:
            rows.append(tuple(extra))
        return self._reply(draft, "identity", rows, contact=self.hd.config.contact_text)

    def _prompt_certificate(self, draft: Draft, holder: Holder | None) -> Reply:
        choices = self.choices(holder) if holder else []
        rows = [(self._b(draft, self.hd.msg("reissue.button.cert", usage=self._usage_label(c.usage),
                                            status=self.hd.msg(f"reissue.cert_status.{c.status}"),
                                            not_after=c.not_after.date().isoformat()), "c", str(c.id)),)
                for c in choices]
        rows.append((self._b(draft, self.hd.msg("reissue.button.cert_none"), "c", "none"),))
        return self._reply(draft, "certificate", rows, name=holder.name if holder else "",
                           certs=[self._cert_view(c.as_json()) for c in choices])

    def _prompt_revoke(self, draft: Draft, holder: Holder | None) -> Reply:
        cert = draft.data.get("cert")
        usage = cert["usage"] if cert else None
        path = "self" if usage in PERSONAL_USAGES else "document" if usage else "either"
        rows = []
        if path in ("self", "either"):
            rows.append((self._b(draft, self.hd.msg("reissue.button.revoked_self"), "v", "self"),))
        if path in ("document", "either"):
            rows.append((self._b(draft, self.hd.msg("reissue.button.revoke_document"), "v", "document"),))
        rows.append((self._b(draft, self.hd.msg("reissue.button.revoke_later"), "v", "later"),))
        return self._reply(draft, "revoke", rows, reason=draft.data["reason"], path=path,
                           dest=destination(usage), contact=self.hd.config.contact_text)

    def _prompt_phone(self, draft: Draft, holder: Holder | None) -> Reply:
        return self._reply(draft, "phone", [])

    def _prompt_summary(self, draft: Draft, holder: Holder | None) -> Reply:
        rows = [(self._b(draft, self.hd.msg("reissue.button.edit"), "s", "edit"),
                 self._b(draft, self.hd.msg("reissue.button.submit"), "s", "submit"))]
        return self._reply(draft, "summary", rows, r=self._details(draft.data, holder))

    def _prompt_edit(self, draft: Draft, holder: Holder | None) -> Reply:
        rows = [(self._b(draft, self.hd.msg(f"reissue.button.edit_{what}"), "e", what),)
                for what in ("reason", "certificate", "phone")]
        rows.append((self._b(draft, self.hd.msg("reissue.button.back"), "e", "back"),))
        return Reply(self.hd.msg("reissue.edit_pick"), tuple(rows) + (self._cancel_row(draft),),
                     tags=("reissue:edit",))

    # -- input (one function per step) --------------------------------------------------------------
    def on_text(self, inbound: Inbound) -> list[Reply]:
        """Free text while the flow is active: only the phone step takes text; elsewhere, explain."""
        draft = self.draft(inbound.chat_id)
        if draft is None:
            self.hd.flows.clear(inbound.chat_id, FLOW)
            return [Reply(self.hd.msg("reissue.gone"), tags=("reissue:gone",))]
        holder = self.registry.holder_by_chat(draft.chat_id)
        if holder is None and draft.step not in ("reason", "identity"):
            return self.advance(draft)  # unlinked meanwhile: back to identity
        if draft.step == "phone" and holder is not None:
            return self._text_phone(draft, holder, inbound.text)
        if draft.step == "certificate" and holder is not None:
            picked = self._cert_by_serial(holder, inbound.text)
            if picked is not None:
                return self._act_certificate(draft, holder, str(picked.id))
        self._save(draft, draft.step)
        return [Reply(self.hd.msg("reissue.use_buttons"), tags=("reissue:use_buttons",)),
                self.prompt(draft, holder)]

    def on_button(self, inbound: Inbound, token: str, verb: str, arg: str) -> list[Reply]:
        """A flow button `rf:<token>:<verb>:<arg>`: checked against the draft and its step, then applied."""
        draft = self.draft(inbound.chat_id)
        if draft is None or draft.token != token:
            done = self.request_by_key(token)
            if done is not None:
                return [Reply(self.hd.msg("reissue.already_submitted", ref=done.ref), tags=("reissue:duplicate",)),
                        self.status_reply(done)]
            if draft is None:
                return [Reply(self.hd.msg("reissue.gone"), tags=("reissue:gone",))]
            holder = self.registry.holder_by_chat(draft.chat_id)
            self._save(draft, draft.step)
            return [Reply(self.hd.msg("reissue.stale"), tags=("reissue:stale",)), self.prompt(draft, holder)]
        holder = self.registry.holder_by_chat(draft.chat_id)
        if verb == "x":
            return self.cancel_draft(inbound.chat_id)
        if verb == "resume":
            self._save(draft, draft.step)
            return [self.prompt(draft, holder, resumed=True)]
        expected = {"r": "reason", "i": "identity", "c": "certificate", "v": "revoke", "s": "summary", "e": "edit"}
        if expected.get(verb) != draft.step:
            self._save(draft, draft.step)
            return [Reply(self.hd.msg("reissue.wrong_step"), tags=("reissue:wrong_step",)),
                    self.prompt(draft, holder)]
        if draft.step != "reason" and draft.step != "identity" and holder is None:
            return self.advance(draft)  # unlinked meanwhile: back to identity
        return getattr(self, f"_act_{draft.step}")(draft, holder, arg, inbound)

    def _again(self, draft: Draft, holder: Holder | None, key: str, tag: str, **context) -> list[Reply]:
        self._save(draft, draft.step)
        return [Reply(self.hd.msg(key, **context), tags=(tag,)), self.prompt(draft, holder)]

    def _act_reason(self, draft: Draft, holder: Holder | None, arg: str,
                    inbound: Inbound | None = None) -> list[Reply]:
        if arg not in REASONS:
            return self._again(draft, holder, "reissue.wrong_step", "reissue:wrong_step")
        if draft.data.get("reason") in REVOKE_FIRST and arg not in REVOKE_FIRST:
            draft.data.pop("revoke", None)
        draft.data["reason"] = arg
        return self.advance(draft)

    def _act_identity(self, draft: Draft, holder: Holder | None, arg: str,
                      inbound: Inbound | None = None) -> list[Reply]:
        return self.advance(draft)  # still unlinked: the same step again, with the same instructions

    def _act_certificate(self, draft: Draft, holder: Holder, arg: str,
                         inbound: Inbound | None = None) -> list[Reply]:
        if arg == "none":
            draft.data["cert"] = None
        else:
            choice = next((c for c in self.choices(holder) if arg.isdigit() and int(arg) in c.ids), None)
            if choice is None:
                return self._again(draft, holder, "reissue.not_yours", "reissue:not_yours")
            draft.data["cert"] = choice.as_json()
        draft.data.pop("revoke", None)
        return self.advance(draft)

    def _act_revoke(self, draft: Draft, holder: Holder, arg: str,
                    inbound: Inbound | None = None) -> list[Reply]:
        if arg == "later":
            self._save(draft, draft.step)
            return [Reply(self.hd.msg("reissue.revoke_later"), tags=("reissue:revoke_later",))]
        usage = (draft.data.get("cert") or {}).get("usage")
        allowed = {"self"} if usage in PERSONAL_USAGES else {"document"} if usage else {"self", "document"}
        if arg not in allowed:
            return self._again(draft, holder, "reissue.wrong_step", "reissue:wrong_step")
        draft.data["revoke"] = arg
        return self.advance(draft)

    def _text_phone(self, draft: Draft, holder: Holder, text: str) -> list[Reply]:
        try:
            digits = normalize_phone(text)
        except RegistryError:
            digits = ""
        if not re.fullmatch(r"01[016789]\d{7,8}", digits):
            return self._again(draft, holder, "reissue.phone_format", "reissue:phone_format")
        masked = mask_phone(digits)
        if holder.phone_hmac is None or phone_hmac(self.hd.pii_key, digits) != holder.phone_hmac:
            self._save(draft, draft.step)
            rows = [tuple(self.hd.action_button(a) for a in ("datacheck", "staff") if self.hd.has_action(a))]
            text_ = self.hd.text("reissue/phone_mismatch.j2", masked=masked, on_record=holder.phone_hmac is not None,
                                 contact=self.hd.config.contact_text)
            return [Reply(text_, tuple(r for r in rows if r), tags=("reissue:phone_mismatch",)),
                    self.prompt(draft, holder)]
        draft.data["phone_masked"] = masked
        return self.advance(draft, [Reply(self.hd.msg("reissue.phone_ok", masked=masked), tags=("reissue:phone_ok",))])

    def _act_summary(self, draft: Draft, holder: Holder, arg: str,
                     inbound: Inbound | None = None) -> list[Reply]:
        if arg == "edit":
            self._save(draft, "edit")
            return [self.prompt(draft, holder)]
        if arg != "submit":
            return self._again(draft, holder, "reissue.wrong_step", "reissue:wrong_step")
        return self.submit(draft, holder, inbound)

    def _act_edit(self, draft: Draft, holder: Holder, arg: str,
                  inbound: Inbound | None = None) -> list[Reply]:
        cleared = {"reason": ("reason",), "certificate": ("cert", "revoke"), "phone": ("phone_masked",),
                   "back": ()}
        if arg not in cleared:
            return self._again(draft, holder, "reissue.wrong_step", "reissue:wrong_step")
        for key in cleared[arg]:
            draft.data.pop(key, None)
        return self.advance(draft)

    def cancel_draft(self, chat_id: str) -> list[Reply]:
        self.drop_draft(chat_id)
        return [Reply(self.hd.msg("reissue.cancelled"), ((self.hd.home_button(),),), tags=("reissue:cancelled",))]

    # -- certificates -------------------------------------------------------------------------------
    def choices(self, holder: Holder) -> list[CertChoice]:
        """The holder's certificates, a signing/encryption pair issued together shown as one choice."""
        now = self.hd.now()
        groups: dict[tuple, list[CertificateRecord]] = {}
        for cert in self.registry.certificates(holder.employee_id, now):
            key = (cert.usage, cert.issuer, cert.not_after.date())
            groups.setdefault(key, []).append(cert)
        out = []
        for certs in groups.values():
            certs.sort(key=lambda c: ({"sig": 0, "env": 1}.get(c.kind, 2), c.serial))
            # A pair has one certificate of each kind; anything else is offered one by one.
            kinds = [c.kind for c in certs]
            bundles = [certs] if len(set(kinds)) == len(kinds) else [[c] for c in certs]
            for bundle in bundles:
                lead = bundle[0]
                out.append(CertChoice(lead.id or 0, tuple(c.id or 0 for c in bundle), lead.usage,
                                      lead.effective_status(now), lead.not_after,
                                      tuple((c.kind, c.serial) for c in bundle)))
        return out

    def _cert_by_serial(self, holder: Holder, text: str) -> CertChoice | None:
        typed = re.sub(r"[\s:\-]", "", text).upper().lstrip("0")
        if not typed:
            return None
        for choice in self.choices(holder):
            if any(serial.lstrip("0") == typed for _, serial in choice.serials):
                return choice
        return None

    def _usage_label(self, usage: str | None) -> str:
        key = f"reissue.usage.{usage or 'unknown'}"
        return self.hd.msg(key if self.hd.renderer.has_message(key) else "reissue.usage.unknown")

    def _cert_view(self, cert: dict[str, Any] | None) -> dict[str, Any] | None:
        if not cert:
            return None
        return {
            "usage_label": self._usage_label(cert["usage"]),
            "status_label": self.hd.msg(f"reissue.cert_status.{cert['status']}"),
            "not_after": parse_instant(cert["not_after"]),
            "serials": [{"kind_label": self.hd.msg(f"reissue.kind.{k if k in ('sig', 'env') else 'unknown'}"),
                         "serial": s} for k, s in cert["serials"]],
        }

    def _details(self, data: dict[str, Any], holder: Holder | None, form: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        """What the summary, status and staff texts show about a draft or request."""
        form = form or {}
        cert = data.get("cert")
        return {
            "reason_label": self.hd.msg(f"reissue.reason_form.{data['reason']}"),
            "holder_name": holder.name if holder else form.get("name", ""),
            "agency": holder.agency if holder else form.get("agency", ""),
            "department": holder.department if holder else form.get("department", ""),
            "cert": self._cert_view(cert),
            "revoke_label": self.hd.msg(f"reissue.revoke_method.{data['revoke']}") if data.get("revoke") else "",
            "phone_masked": data.get("phone_masked") or "",
        }

    # -- requests -----------------------------------------------------------------------------------
    def submit(self, draft: Draft, holder: Holder, inbound: Inbound | None = None) -> list[Reply]:
        """제출: one request per draft (a second tap finds the first), the filled form, staff told."""
        check_transition(draft.step, "submitted")
        existing = self.request_by_key(draft.token)
        if existing is None:
            existing = self._create_request(draft, holder)
            created = True
        else:
            created = False
        self.drop_draft(draft.chat_id)
        if not created:
            return [Reply(self.hd.msg("reissue.already_submitted", ref=existing.ref), tags=("reissue:duplicate",))]
        replies = [self.submitted_reply(existing)]
        replies.extend(self.form_replies(existing))
        replies.extend(self._tell_staff(existing, inbound))
        return replies

    def _create_request(self, draft: Draft, holder: Holder) -> Request:
        now = self.hd.now()
        data = draft.data
        cert = data.get("cert")
        form = self._form_data(data, holder, now)
        channel = self._channel(draft.chat_id)
        with self.hd.store.transaction():
            # The draft token is the idempotency key: whoever commits second finds the row (double tap).
            again = self.request_by_key(draft.token)
            if again is not None:
                return again
            number = self.db.execute(
                "INSERT INTO reissue_counters (year, last) VALUES (?, 1) "
                "ON CONFLICT(year) DO UPDATE SET last = last + 1 RETURNING last", [now.year]).fetchone()[0]
            ref = f"R-{now.year}-{int(number):06d}"
            cursor = self.db.execute(
                "INSERT INTO reissue_requests (ref, submit_key, employee_id, chat_id, channel, reason, "
                "certificate_id, cert_serial, cert_usage, cert_not_after, revoke_method, phone_masked, status, "
                "form_data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?, ?)",
                [ref, draft.token, holder.employee_id, draft.chat_id, channel, data["reason"],
                 cert["id"] if cert else None, ",".join(s for _, s in cert["serials"]) if cert else None,
                 cert["usage"] if cert else None, cert["not_after"] if cert else None, data.get("revoke"),
                 data.get("phone_masked"), json.dumps(form, ensure_ascii=False), to_iso(now), to_iso(now)])
            self.db.execute(
                "INSERT INTO reissue_history (request_id, from_status, to_status, actor, at) "
                "VALUES (?, NULL, 'submitted', 'user', ?)", [cursor.lastrowid, to_iso(now)])
        request = self.request(ref)
        assert request is not None
        return request

    def _form_data(self, data: dict[str, Any], holder: Holder, now: datetime) -> dict[str, Any]:
        """A snapshot of what the 신청서 shows (never the 주민등록번호, never the full phone number)."""
        return {
            "name": holder.name, "agency": holder.agency, "department": holder.department,
            "agency_code": holder.agency_code, "email": holder.email,
            "reason": data["reason"], "cert": data.get("cert"), "revoke": data.get("revoke"),
            "phone_masked": data.get("phone_masked"), "date": now.date().isoformat(),
        }

    def request(self, ref: str) -> Request | None:
        return self._one("ref = ?", [ref.strip().upper()])

    def request_by_key(self, key: str) -> Request | None:
        return self._one("submit_key = ?", [key])

    def _one(self, where: str, params: list) -> Request | None:
        row = self.db.execute(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM reissue_requests WHERE {where}",
                              params).fetchone()
        return Request(*row) if row else None

    def requests(self, status: str | None = None, limit: int | None = None) -> list[Request]:
        sql = f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM reissue_requests"
        params: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY id"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [Request(*row) for row in self.db.execute(sql, params).fetchall()]

    def history(self, request: Request) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT from_status, to_status, actor, note, at FROM reissue_history "
                               "WHERE request_id = ? ORDER BY id", [request.id]).fetchall()
        return [dict(zip(("from", "to", "actor", "note", "at"), row)) for row in rows]

    def current_request(self, chat_id: str, holder: Holder | None) -> Request | None:
        """The chat's (or its holder's) open request, else its latest one."""
        if holder is not None:
            where, params = "(employee_id = ? OR chat_id = ?)", [holder.employee_id, chat_id]
        else:
            where, params = "chat_id = ?", [chat_id]
        open_ = self._one(f"{where} AND status IN ('submitted', 'approved') ORDER BY id DESC LIMIT 1", params)
        return open_ or self._one(f"{where} ORDER BY id DESC LIMIT 1", params)

    def owns(self, chat_id: str, request: Request) -> bool:
        if request.chat_id == chat_id:
            return True
        holder = self.registry.holder_by_chat(chat_id)
        return holder is not None and holder.employee_id == request.employee_id

    def set_status(self, request: Request, target: str, actor: str, note: str | None = None,
                   new_certificate_id: int | None = None) -> Request:
        """Move a request (checked against REQUEST_TRANSITIONS, atomically: a concurrent change loses)."""
        check_request_transition(request.status, target)
        now = to_iso(self.hd.now())
        with self.hd.store.transaction():
            cursor = self.db.execute(
                "UPDATE reissue_requests SET status = ?, status_note = COALESCE(?, status_note), "
                "decided_by = CASE WHEN ? IN ('approved', 'rejected') THEN ? ELSE decided_by END, "
                "new_certificate_id = COALESCE(?, new_certificate_id), updated_at = ? WHERE id = ? AND status = ?",
                [target, note, target, actor, new_certificate_id, now, request.id, request.status])
            if cursor.rowcount != 1:
                fresh = self.request(request.ref)
                raise TransitionError(f"request is {fresh.status if fresh else 'gone'}; it cannot become {target}")
            self.db.execute("INSERT INTO reissue_history (request_id, from_status, to_status, actor, note, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [request.id, request.status, target, actor, note, now])
        fresh = self.request(request.ref)
        assert fresh is not None
        return fresh

    def decide(self, ref: str, target: str, actor: str, note: str | None = None,
               inbound: Inbound | None = None) -> tuple[Request, list[Reply]]:
        """Staff approve / reject (or a cancel): the new request and what to send now (the user is told;
        through the outbox unless `inbound` came from the user's own channel). TransitionError / LookupError."""
        request = self.request(ref)
        if request is None:
            raise LookupError(f"no reissue request {ref}")
        request = self.set_status(request, target, actor, note)
        return request, self.notify_user(request, inbound)

    def notify_user(self, request: Request, inbound: Inbound | None = None) -> list[Reply]:
        """Tell the request's owner about its status: a reply to send now, or an outbox row."""
        reply = self.status_reply(request, changed=True)
        return self.deliver(self._user_chat(request), reply, inbound)

    def deliver(self, chat_id: str, reply: Reply, inbound: Inbound | None = None) -> list[Reply]:
        """A reply for `chat_id`: returned with this turn's replies when the adapter handling `inbound` can send
        it (its own chat, or any Telegram chat from a Telegram turn), else queued in the outbox for the
        adapter that can (another terminal's process, or the Telegram bot)."""
        reply = Reply(reply.text, reply.buttons, reply.document, chat_id, reply.thread_id,
                      reply.reply_to_message_id, reply.tags)
        if inbound is not None and (chat_id == inbound.chat_id or (
                inbound.channel == "telegram" and self._channel(chat_id) == "telegram")):
            return [reply]
        TicketStore(self.hd.store, self.hd.clock).outbox_put(chat_id, reply)
        return []

    def _user_chat(self, request: Request) -> str:
        holder = self.registry.holder(request.employee_id)
        return holder.chat_id if holder is not None and holder.chat_id else request.chat_id

    def _channel(self, chat_id: str) -> str:
        if chat_id == self.hd.config.staff_chat_id:
            return "telegram"  # a Telegram group, whether or not it has written yet
        row = self.db.execute("SELECT channel FROM chats WHERE chat_id = ?", [chat_id]).fetchone()
        if row:
            return row[0]
        return "console" if chat_id.startswith("console:") else "telegram"

    def staff_chat(self) -> str:
        """Where staff decide: HELPDESK_STAFF_CHAT_ID, else the hand-off's terminal staff chat, if any."""
        handoff = self.hd.feature("handoff")
        return getattr(handoff, "staff_chat_id", "") or self.hd.config.staff_chat_id

    def _tell_staff(self, request: Request, inbound: Inbound | None) -> list[Reply]:
        """Post a new request in the staff chat."""
        staff = self.staff_chat()
        if not staff:
            return []
        text = self.hd.text("reissue/staff_new.j2", r=self.view(request), dest=destination(request.cert_usage),
                            contact=self.hd.config.contact_text)
        return self.deliver(staff, Reply(text, (self.staff_buttons(request),), tags=("reissue:staff_new",)), inbound)

    def staff_buttons(self, request: Request) -> tuple[Button, ...]:
        return (Button(self.hd.msg("reissue.button.approve"), f"{STAFF_PREFIX}:a:{request.ref}"),
                Button(self.hd.msg("reissue.button.reject"), f"{STAFF_PREFIX}:r:{request.ref}"))

    # -- replies about requests -----------------------------------------------------------------------
    def view(self, request: Request) -> dict[str, Any]:
        form = request.form
        data = {"reason": request.reason, "cert": form.get("cert"), "revoke": request.revoke_method,
                "phone_masked": request.phone_masked}
        view = self._details(data, None, form)
        view.update(ref=request.ref, status=request.status, employee_id=request.employee_id,
                    status_label=self.hd.msg(f"reissue.status.{request.status}"), status_note=request.status_note,
                    revoke_method=request.revoke_method,
                    created_label=parse_instant(request.created_at).strftime("%Y-%m-%d %H:%M"))
        return view

    def submitted_reply(self, request: Request) -> Reply:
        text = self.hd.text("reissue/submitted.j2", r=self.view(request), dest=destination(request.cert_usage),
                            contact=self.hd.config.contact_text)
        return Reply(text, tags=("reissue:submitted", f"reissue:ref:{request.ref}"))

    def status_reply(self, request: Request, changed: bool = False) -> Reply:
        text = self.hd.text("reissue/status.j2", r=self.view(request), changed=changed,
                            dest=destination(request.cert_usage), contact=self.hd.config.contact_text)
        rows: list[tuple[Button, ...]] = []
        if request.is_open:
            rows.append((Button(self.hd.msg("reissue.button.form_again"), f"{PREFIX}:q:doc:{request.ref}"),))
            rows.append((Button(self.hd.msg("reissue.button.cancel_request"), f"{PREFIX}:q:x:{request.ref}"),))
        else:
            rows.append((Button(self.hd.msg("reissue.button.start_new"), "act:reissue"),))
        rows.append((self.hd.home_button(),))
        return Reply(text, tuple(rows), tags=(f"reissue:status:{request.status}", f"reissue:ref:{request.ref}"))

    def on_request_button(self, inbound: Inbound, verb: str, ref: str) -> list[Reply]:
        """Buttons about a submitted request: doc (the form again), x / xy / xn (cancel, confirmed)."""
        request = self.request(ref) if _REF.match(ref) else None
        if request is None or not self.owns(inbound.chat_id, request):
            return [Reply(self.hd.msg("reissue.no_request"), ((self.hd.home_button(),),), tags=("reissue:none",))]
        if verb == "doc":
            return self.form_replies(request)
        if verb == "pdf":
            return self.form_pdf_replies(request)
        if verb == "x":
            if not request.is_open:
                return [self._closed(request)]
            rows = ((Button(self.hd.msg("reissue.button.cancel_request_yes"), f"{PREFIX}:q:xy:{request.ref}"),
                     Button(self.hd.msg("reissue.button.keep_request"), f"{PREFIX}:q:xn:{request.ref}")),)
            return [Reply(self.hd.msg("reissue.request_cancel_confirm", ref=request.ref), rows,
                          tags=("reissue:cancel_confirm",))]
        if verb == "xn":
            return [Reply(self.hd.msg("reissue.request_kept"), tags=("reissue:kept",)), self.status_reply(request)]
        if verb == "xy":
            try:
                request = self.set_status(request, "cancelled", "user")
            except TransitionError:
                return [self._closed(self.request(request.ref) or request)]
            replies = [Reply(self.hd.msg("reissue.request_cancelled", ref=request.ref), ((self.hd.home_button(),),),
                             tags=("reissue:request_cancelled",))]
            staff = self.staff_chat()
            if staff:
                note = self.hd.msg("reissue.staff_done", ref=request.ref, status=self.hd.msg(
                    "reissue.status.cancelled"), by="user")
                replies.extend(self.deliver(staff, Reply(note, tags=("reissue:staff_cancelled",)), inbound))
            return replies
        return [Reply(self.hd.msg("button.expired"), ((self.hd.home_button(),),))]

    def _closed(self, request: Request) -> Reply:
        return Reply(self.hd.msg("reissue.request_closed", ref=request.ref,
                                 status=self.hd.msg(f"reissue.status.{request.status}")),
                     tags=("reissue:closed",))

    # -- the form ----------------------------------------------------------------------------------
    def form_html(self, request: Request) -> str:
        return self.hd.text("reissue/form.html.j2", f=self._form_view(request))

    def _form_view(self, request: Request) -> dict[str, Any]:
        form = request.form
        cert = form.get("cert")
        return {
            **form,
            "ref": request.ref,
            "kind": _FORM_KIND_OF_USAGE.get(cert["usage"] if cert else "", ""),
            "kinds": [(k, self.hd.msg(f"reissue.form_kind.{k}")) for k in FORM_KINDS],
            "reasons": [(r, self.hd.msg(f"reissue.reason_form.{r}")) for r in REASONS],
            "cert": self._cert_view(cert),
            "revoke_label": self.hd.msg(f"reissue.revoke_method.{form['revoke']}") if form.get("revoke") else "",
            "phone_masked": form.get("phone_masked") or "",
            "date": parse_instant(form["date"]),
            "where": self.hd.text("reissue/where.j2", dest=destination(request.cert_usage),
                                  contact=self.hd.config.contact_text),
        }

    def form_replies(self, request: Request) -> list[Reply]:
        """The filled 신청서 as an HTML document (prints on A4), with a button for the PDF when it can be made."""
        html = Document(f"reissue-form-{request.ref}.html", self.form_html(request).encode("utf-8"), "text/html")
        rows = ((Button(self.hd.msg("reissue.button.form_pdf"), f"{PREFIX}:q:pdf:{request.ref}"),),) \
            if pdf_available() else ()
        return [Reply(self.hd.msg("reissue.form_caption", ref=request.ref), rows, document=html,
                      tags=("reissue:form_html",))]

    def form_pdf_replies(self, request: Request) -> list[Reply]:
        """The same form as PDF: made on request, as laying out Korean text takes most of a second."""
        pdf = form_pdf(self.hd, self._form_view(request))
        if pdf is None:
            return [Reply(self.hd.msg("reissue.form_no_pdf"), tags=("reissue:form_no_pdf",))]
        return [Reply(document=Document(f"reissue-form-{request.ref}.pdf", pdf, "application/pdf"),
                      tags=("reissue:form_pdf",))]

    # -- idle drafts ----------------------------------------------------------------------------------
    def due_flow_reminders(self, now: datetime) -> list[FlowReminder]:
        """Drafts idle 7 days (to expire) and drafts idle 24 hours not yet reminded (to remind once)."""
        due = []
        for chat_id, token, step, touched, reminded in self.db.execute(
                "SELECT chat_id, token, step, touched_at, reminded_at FROM reissue_drafts ORDER BY touched_at"):
            idle = now - parse_instant(touched)
            if idle >= EXPIRE_AFTER:
                due.append(FlowReminder(chat_id, "expire", step, token))
            elif idle >= REMIND_AFTER and reminded is None:
                due.append(FlowReminder(chat_id, "remind", step, token))
        return due

    def send_flow_reminders(self, now: datetime | None = None) -> dict[str, int]:
        """Remind or expire what `due_flow_reminders` finds; the messages go through the outbox."""
        now = now or self.hd.now()
        counts = {"reminded": 0, "expired": 0}
        for item in self.due_flow_reminders(now):
            if item.kind == "expire":
                self.drop_draft(item.chat_id)
                reply = Reply(self.hd.msg("reissue.expired"), tags=("reissue:expired",))
                counts["expired"] += 1
            else:
                cursor = self.db.execute(
                    "UPDATE reissue_drafts SET reminded_at = ? WHERE chat_id = ? AND token = ? AND reminded_at IS NULL",
                    [to_iso(now), item.chat_id, item.token])
                if cursor.rowcount != 1:
                    continue
                rows = ((Button(self.hd.msg("reissue.button.resume"), f"{PREFIX}:{item.token}:resume"),
                         Button(self.hd.msg("reissue.button.cancel"), f"{PREFIX}:{item.token}:x")),)
                step = self.hd.msg(f"reissue.step.{_shown(item.step)}")
                reply = Reply(self.hd.msg("reissue.reminder", step=step), rows, tags=("reissue:reminder",))
                counts["reminded"] += 1
            self.deliver(item.chat_id, reply)
        return counts

    # -- issued -------------------------------------------------------------------------------------
    def reconcile_issued(self) -> list[Request]:
        """Approved requests whose holder now has a newer certificate of the same usage become `issued`."""
        closed = []
        for request in self.requests("approved"):
            new = self._newer_certificate(request)
            if new is None:
                continue
            try:
                request = self.set_status(request, "issued", "system", new_certificate_id=new.id)
            except TransitionError:
                continue
            self.notify_user(request)
            closed.append(request)
        return closed

    def _newer_certificate(self, request: Request) -> CertificateRecord | None:
        old = request.form.get("cert")
        old_ids = set(old["ids"]) if old else set()
        now = self.hd.now()
        certs = self.registry.certificates(request.employee_id, now)
        old_starts = [c.not_before for c in certs if c.id in old_ids]
        # Issued after the request was made (a day's slack: CSV exports may carry bare dates).
        since = max([parse_instant(request.created_at) - timedelta(days=1), *old_starts])
        for cert in certs:
            if cert.id in old_ids or cert.effective_status(now) != "valid":
                continue
            if request.cert_usage and cert.usage != request.cert_usage:
                continue
            if cert.not_before > since:
                return cert
        return None

    def sweep(self) -> dict[str, int]:
        """The periodic job: reminders, expiry, and requests closed by a new certificate."""
        counts = self.send_flow_reminders()
        counts["issued"] = len(self.reconcile_issued())
        return counts


def destination(usage: str | None) -> str:
    """Where the 신청서 goes: ra (개인용: 등록기관 인증담당자), klid (기관용·서버용), epki, or any (unknown)."""
    if usage in PERSONAL_USAGES:
        return "ra"
    if usage in KLID_USAGES:
        return "klid"
    if usage and usage.startswith("epki-"):
        return "epki"
    return "any"


def mask_phone(digits: str) -> str:
    """010-****-**78: what users, staff and the database see of a phone number."""
    formatted = f"{digits[:3]}-{digits[3:-4]}-{digits[-4:]}"
    return mask_pii(formatted)


def _shown(step: str) -> str:
    return "summary" if step == "edit" else step
