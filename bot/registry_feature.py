"""The registry in the conversation: /status, /link CODE (or the deep link's /start CODE), /unlink.

Nothing about a holder is shown to a chat that is not linked to them, and nothing at all in a group chat.
"""
from __future__ import annotations

from bot.features import Feature, Replies
from bot.registry import EXPIRING_DAYS, LINK_CODE_SHAPE, CertificateRecord, Holder, Registry
from bot.types import Button, Inbound, Reply

_REASON_KEYS = {
    "unspecified": "unspecified", "keyCompromise": "key_compromise", "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed", "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation", "certificateHold": "certificate_hold",
    "removeFromCRL": "remove_from_crl", "privilegeWithdrawn": "privilege_withdrawn", "aACompromise": "aa_compromise",
}


class RegistryFeature(Feature):
    """A linked holder's own certificates; linking and unlinking a chat."""

    name = "registry"
    commands = ("status", "link", "unlink")
    actions = ("status", "link")

    def __init__(self, hd) -> None:
        super().__init__(hd)
        self.registry = Registry(hd)

    # -- hooks ----------------------------------------------------------------------------------------
    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        if name == "start":
            # The bot's deep link (t.me/<bot>?start=CODE) arrives as "/start CODE"; other payloads are not ours.
            return self.link(inbound, args) if LINK_CODE_SHAPE.match(args.strip()) else None
        if name == "status":
            return self.status(inbound)
        if name == "link":
            return self.link(inbound, args) if args.strip() else self.how_to_link(inbound)
        if name == "unlink":
            return self.unlink(inbound)
        return None

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data == "act:status":
            return self.status(inbound)
        if data == "act:link":
            return self.how_to_link(inbound)
        return None

    # -- replies --------------------------------------------------------------------------------------
    def _home(self) -> tuple[tuple[Button, ...], ...]:
        return ((self.hd.home_button(),),)

    def how_to_link(self, inbound: Inbound) -> list[Reply]:
        rows = ((self.hd.action_button("staff"),), (self.hd.home_button(),))
        return [Reply(self.hd.text("registry/how_to_link.j2"), rows, tags=("registry:how-to-link",))]

    def link(self, inbound: Inbound, code: str) -> list[Reply]:
        if not inbound.is_private:
            return [Reply(self.hd.msg("registry.link_group_refused"), tags=("registry:group",))]
        result = self.registry.redeem_link_code(inbound.chat_id, code)
        if result.outcome == "linked" and result.holder is not None:
            rows = ((self.hd.action_button("status"),), (self.hd.home_button(),))
            return [Reply(self.hd.msg("registry.linked", name=result.holder.name), rows, tags=("registry:linked",))]
        if result.outcome == "locked":
            until = result.locked_until.strftime("%H:%M") if result.locked_until else ""
            return [Reply(self.hd.msg("registry.link_locked", until=until), self._home(), tags=("registry:locked",))]
        key = {"expired": "registry.link_expired", "used": "registry.link_used"}.get(result.outcome,
                                                                                      "registry.link_invalid")
        rows = ((self.hd.action_button("staff"),), (self.hd.home_button(),))
        return [Reply(self.hd.msg(key, left=result.attempts_left), rows, tags=(f"registry:link-{result.outcome}",))]

    def unlink(self, inbound: Inbound) -> list[Reply]:
        if not inbound.is_private:
            return [Reply(self.hd.msg("registry.link_group_refused"), tags=("registry:group",))]
        holder = self.registry.unlink(inbound.chat_id)
        key = "registry.unlinked" if holder is not None else "registry.not_linked"
        return [Reply(self.hd.msg(key), self._home(), tags=("registry:unlinked" if holder else "registry:not-linked",))]

    def status(self, inbound: Inbound) -> list[Reply]:
        """The linked holder's certificates, most urgent first, with next-step buttons."""
        if not inbound.is_private:
            return [Reply(self.hd.msg("registry.group_refused"), tags=("registry:group",))]
        holder = self.registry.holder_by_chat(inbound.chat_id)
        if holder is None:
            return self.how_to_link(inbound)
        return [self.status_reply(holder)]

    def status_reply(self, holder: Holder) -> Reply:
        now = self.hd.now()
        certs = self.registry.certificates(holder.employee_id, now)
        if not certs:
            rows = ((self.hd.action_button("staff"),), (self.hd.home_button(),))
            return Reply(self.hd.msg("registry.no_certificates"), rows, tags=("registry:status", "registry:empty"))
        replaced = _replaced(certs, now)
        ordered = [c for c in certs if c.id not in replaced] + [c for c in certs if c.id in replaced]
        views: dict[tuple, dict] = {}
        steps: list[str] = []
        for cert in ordered:
            state = cert.effective_status(now)
            notes = self._notes(cert, state, now, cert.id in replaced)
            # The two halves of a pair (same usage, state and expiry day) read as one line on a phone.
            key = (cert.usage, state, cert.not_after.date(), cert.id in replaced, tuple(notes))
            view = views.get(key)
            if view is not None and cert.kind not in view["kinds"]:
                view["kinds"].append(cert.kind)
                view["serials"].append(cert.serial)
            else:
                views[key if view is None else key + (cert.id,)] = {
                    "usage": self._label("usage", cert.usage), "kinds": [cert.kind],
                    "status": self._label("status", state), "not_after": cert.not_after,
                    "dday": self._dday(cert, now), "serials": [cert.serial], "notes": notes,
                }
            if cert.id not in replaced:
                steps.extend(self._steps(cert, state, now))
        for view in views.values():
            view["kind"] = "·".join(self._label("kind", k) for k in view.pop("kinds"))
        checked = [c.status_checked_at for c in certs if c.status_checked_at is not None]
        rows = self._buttons(steps)
        text = self.hd.text("registry/status.j2", name=holder.name, today=now, certs=list(views.values()),
                            checked_at=max(checked).strftime("%Y-%m-%d %H:%M") if checked else None,
                            has_steps=bool(steps))
        tags = ("registry:status",) + tuple(f"cert:{c.serial}:{c.effective_status(now)}" for c in ordered)
        return Reply(text, rows, tags=tags)

    # -- pieces ---------------------------------------------------------------------------------------
    def _label(self, group: str, value: str) -> str:
        key = f"certs.{group}.{value}"
        return self.hd.msg(key) if self.hd.renderer.has_message(key) else value

    def _dday(self, cert: CertificateRecord, now) -> str:
        days = cert.days_left(now)
        if days > 0:
            return self.hd.msg("registry.dday.left", days=days)
        if days == 0 and cert.not_after >= now:
            return self.hd.msg("registry.dday.today")
        return self.hd.msg("registry.dday.past", days=max(1, -days))

    def _notes(self, cert: CertificateRecord, state: str, now, replaced: bool) -> list[str]:
        if replaced:
            return [self.hd.msg("registry.note.replaced")]
        notes = []
        if state == "expired":
            notes.append(self.hd.msg("registry.note.expired"))
        elif state == "revoked":
            reason_key = _REASON_KEYS.get(cert.revocation_reason or "unspecified", "unspecified")
            notes.append(self.hd.msg("registry.note.revoked", reason=self._label("reason", reason_key)))
        elif state == "suspended":
            notes.append(self.hd.msg("registry.note.suspended"))
        elif state == "not_yet_valid":
            notes.append(self.hd.msg("registry.note.not_yet_valid", date=f"{cert.not_before:%Y-%m-%d}"))
        elif cert.days_left(now) <= EXPIRING_DAYS:
            notes.append(self.hd.msg("registry.note.expiring", days=max(0, cert.days_left(now))))
        if cert.usage == "personal-public":
            notes.append(self.hd.msg("registry.note.public_not_admin"))
        return notes

    def _steps(self, cert: CertificateRecord, state: str, now) -> list[str]:
        """Next steps as button data, in order of importance."""
        steps = []
        if state in ("expired", "revoked"):
            if self.hd.has_action("reissue"):
                steps.append("act:reissue")
            steps.append("kb:validity.expired" if state == "expired" else "kb:login.revoked-message")
        elif state == "suspended":
            steps.append("kb:suspend.restore")
        elif state == "valid" and cert.days_left(now) <= EXPIRING_DAYS:
            steps.append("kb:validity.renewal")
            if self.hd.has_action("reissue"):
                steps.append("act:reissue")
        if cert.usage == "personal-public":
            steps.append("kb:mismatch.wrong-kind-applied")
        return steps

    def _buttons(self, steps: list[str]) -> tuple[tuple[Button, ...], ...]:
        rows: list[tuple[Button, ...]] = []
        for data in dict.fromkeys(steps):
            if data.startswith("act:"):
                rows.append((self.hd.action_button(data[4:]),))
            else:
                entry = self.hd.kb.get(data[3:])
                if entry is not None:
                    rows.append((Button(entry.title, data),))
        rows.append((self.hd.action_button("staff"), self.hd.home_button()))
        return tuple(rows)


def _replaced(certs: list[CertificateRecord], now) -> set[int]:
    """Expired or revoked certificates for which the holder already has a newer valid one of the same usage
    and kind (the usual leftovers of a reissue): shown last, without next steps."""
    live = [c for c in certs if c.effective_status(now) == "valid"]
    out = set()
    for cert in certs:
        if cert.effective_status(now) in ("expired", "revoked") and any(
                other.usage == cert.usage and other.kind == cert.kind and other.not_before > cert.not_before
                and other.id != cert.id for other in live):
            out.add(cert.id)  # type: ignore[arg-type]
    return out

