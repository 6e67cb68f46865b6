"""The application data check: a linked user types what they wrote on the form, field by field, and
learns which fields differ from the registry record, never the stored values.

Each field is normalised before comparing (spaces, hyphens, full-width characters, Hangul typed as
separate compatibility jamo). 주민등록번호 and the phone number are compared only as keyed hashes
(the registry's `rrn_hmac` / `phone_hmac`); what the user types is kept nowhere: the flow stores only
"same"/"differs" per field, the audit table only field names. The core's turn log masks both through
`bot.privacy.mask_pii`. At most `config.datacheck_per_hour` checks per chat and hour.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import parse_instant, to_iso
from bot.features import Feature, Replies
from bot.flows import FlowState
from bot.types import Button, Inbound, Reply

if TYPE_CHECKING:
    from bot.registry import Holder

FLOW = "datacheck"
FIELDS = ("name", "rrn", "agency_code", "phone", "email")
SAME, DIFFERS, NO_RECORD, SKIPPED = "same", "differs", "norecord", "skipped"

# -- normalisation ---------------------------------------------------------------------------------
_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ", "ㅄ",
         "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")
_VOWEL_PAIRS = {("ㅗ", "ㅏ"): "ㅘ", ("ㅗ", "ㅐ"): "ㅙ", ("ㅗ", "ㅣ"): "ㅚ", ("ㅜ", "ㅓ"): "ㅝ", ("ㅜ", "ㅔ"): "ㅞ",
                ("ㅜ", "ㅣ"): "ㅟ", ("ㅡ", "ㅣ"): "ㅢ"}
_FINAL_PAIRS = {("ㄱ", "ㅅ"): "ㄳ", ("ㄴ", "ㅈ"): "ㄵ", ("ㄴ", "ㅎ"): "ㄶ", ("ㄹ", "ㄱ"): "ㄺ", ("ㄹ", "ㅁ"): "ㄻ",
                ("ㄹ", "ㅂ"): "ㄼ", ("ㄹ", "ㅅ"): "ㄽ", ("ㄹ", "ㅌ"): "ㄾ", ("ㄹ", "ㅍ"): "ㄿ", ("ㄹ", "ㅎ"): "ㅀ",
                ("ㅂ", "ㅅ"): "ㅄ"}
_IGNORED = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fb\u00b7]+")


def compose_jamo(text: str) -> str:
    """Hangul typed as compatibility jamo ("ㅎㅗㅇㄱㅣㄹㄷㅗㅇ") -> syllables ("홍길동"); other text unchanged."""
    out: list[str] = []
    i, n = 0, len(text)

    def vowel_at(j: int) -> bool:
        return j < n and text[j] in _JUNG

    while i < n:
        ch = text[i]
        if ch in _CHO and vowel_at(i + 1):
            vowel, j = text[i + 1], i + 2
            if j < n and (vowel, text[j]) in _VOWEL_PAIRS:
                vowel, j = _VOWEL_PAIRS[(vowel, text[j])], j + 1
            final = ""
            if j < n and text[j] in _JONG[1:] and not vowel_at(j + 1):
                final, j = text[j], j + 1
                if j < n and (final, text[j]) in _FINAL_PAIRS and not vowel_at(j + 1):
                    final, j = _FINAL_PAIRS[(final, text[j])], j + 1
            out.append(chr(0xAC00 + (_CHO.index(ch) * 21 + _JUNG.index(vowel)) * 28 + _JONG.index(final)))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def normalize_field(text: str) -> str:
    """Jamo composed, width folded (full-width digits and letters), spaces and hyphens dropped."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFKC", compose_jamo(text or "")))
    return _IGNORED.sub("", text)


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", text or ""))


class InvalidInput(ValueError):
    """What the user typed cannot be this field (the message key says why)."""


def compare_field(field: str, typed: str, holder: "Holder", pii_key: str) -> str:
    """SAME, DIFFERS or NO_RECORD for one field; InvalidInput when the text cannot be that field."""
    from bot.registry import RegistryError, normalize_phone, phone_hmac, rrn_hmac

    if not normalize_field(typed):
        raise InvalidInput("diagnosis.datacheck.invalid_empty")
    if field == "name":
        return _same(normalize_field(typed), normalize_field(holder.name))
    if field == "agency_code":
        return _same(normalize_field(typed).upper(), normalize_field(holder.agency_code).upper())
    if field == "email":
        typed_email = normalize_field(typed).lower()
        if not re.fullmatch(r"[^@]+@[^@]+\.[^@]+", typed_email):
            raise InvalidInput("diagnosis.datacheck.invalid_email")
        return _same(typed_email, normalize_field(holder.email).lower())
    if field == "rrn":
        number = digits_of(typed)
        if len(number) != 13 or len(number) != len(normalize_field(typed)):
            raise InvalidInput("diagnosis.datacheck.invalid_rrn")
        if not holder.rrn_hmac:
            return NO_RECORD
        return SAME if rrn_hmac(pii_key, number) == holder.rrn_hmac else DIFFERS
    if field == "phone":
        try:
            number = normalize_phone(digits_of(typed))
        except RegistryError as exc:
            raise InvalidInput("diagnosis.datacheck.invalid_phone") from exc
        if not holder.phone_hmac:
            return NO_RECORD
        return SAME if phone_hmac(pii_key, number) == holder.phone_hmac else DIFFERS
    raise KeyError(field)


def _same(typed: str, recorded: str) -> str:
    if not recorded:
        return NO_RECORD
    return SAME if typed == recorded else DIFFERS


# -- the feature --------------------------------------------------------------------------------------
class DataCheckFeature(Feature):
    """/datacheck and the 신청 정보 대조하기 button: field by field, then which fields differ."""

    name = "datacheck"
    commands = ("datacheck",)
    actions = ("datacheck",)
    prefixes = ("dc",)
    flows = (FLOW,)

    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        return self.start(inbound) if name == "datacheck" else None

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data in ("act:datacheck", "dc:start"):
            return self.start(inbound)
        if data.startswith("dc:skip:"):
            state = self.hd.flows.get(inbound.chat_id)
            if state is None or state.flow != FLOW:
                return None
            if data != f"dc:skip:{state.step}":  # an older message's button: ask the current field again
                return [Reply(self.hd.msg("diagnosis.datacheck.use_buttons")), self._ask(state.step)]
            return self._record(inbound, state, SKIPPED)
        return None

    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        holder = self._holder(inbound.chat_id)
        if holder is None or holder.employee_id != state.data.get("employee_id") or state.step not in FIELDS:
            self.hd.flows.clear(inbound.chat_id, FLOW)  # unlinked or relinked meanwhile: start over
            return self.start(inbound)
        try:
            result = compare_field(state.step, inbound.text, holder, self.hd.pii_key)
        except InvalidInput as exc:
            return [Reply(self.hd.msg(str(exc)), self._field_buttons(state.step))]
        return self._record(inbound, state, result)

    def on_cancel(self, inbound: Inbound, state: FlowState) -> Replies:
        return [Reply(self.hd.msg("diagnosis.datacheck.cancelled"), ((self.hd.home_button(),),))]

    # -- steps ----------------------------------------------------------------------------------------
    def start(self, inbound: Inbound) -> list[Reply]:
        hd = self.hd
        home = (hd.home_button(),)
        if not inbound.is_private:
            return [Reply(hd.msg("diagnosis.datacheck.group_refused"), (home,))]
        holder = self._holder(inbound.chat_id)
        if holder is None:
            rows = [(hd.action_button("link"),)] if hd.has_action("link") else []
            rows += [(hd.action_button("staff"),), home]
            return [Reply(hd.msg("diagnosis.datacheck.not_linked"), tuple(rows))]
        wait = self.minutes_until_allowed(inbound.chat_id)
        if wait:
            return [Reply(hd.msg("diagnosis.datacheck.rate_limited", limit=hd.config.datacheck_per_hour,
                                 minutes=wait), ((hd.action_button("staff"),), home))]
        hd.flows.set(inbound.chat_id, FLOW, FIELDS[0], {"employee_id": holder.employee_id, "results": {}})
        return [Reply(hd.msg("diagnosis.datacheck.intro")), self._ask(FIELDS[0])]

    def _ask(self, field: str) -> Reply:
        text = self.hd.msg(f"diagnosis.datacheck.ask.{field}", index=FIELDS.index(field) + 1, total=len(FIELDS))
        return Reply(text, self._field_buttons(field), tags=(f"datacheck:{field}",))

    def _field_buttons(self, field: str) -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.hd.msg("diagnosis.datacheck.skip"), f"dc:skip:{field}"), self.hd.home_button()),)

    def _record(self, inbound: Inbound, state: FlowState, result: str) -> list[Reply]:
        results = dict(state.data.get("results") or {})
        results[state.step] = result
        data = {**state.data, "results": results}
        position = FIELDS.index(state.step) if state.step in FIELDS else len(FIELDS)
        if position + 1 < len(FIELDS):
            following = FIELDS[position + 1]
            self.hd.flows.set(inbound.chat_id, FLOW, following, data)
            return [self._ask(following)]
        self.hd.flows.clear(inbound.chat_id, FLOW)
        return [self._finish(inbound, data)]

    def _finish(self, inbound: Inbound, data: dict[str, Any]) -> Reply:
        hd = self.hd
        results: dict[str, str] = data.get("results") or {}
        compared = [f for f in FIELDS if results.get(f) in (SAME, DIFFERS)]
        differing = [f for f in FIELDS if results.get(f) == DIFFERS]
        again = (Button(hd.msg("diagnosis.datacheck.again"), "dc:start"),)
        if not compared:
            return Reply(hd.msg("diagnosis.datacheck.nothing_compared"), (again, (hd.home_button(),)),
                         tags=("datacheck:nothing",))
        hd.store.db.execute(
            "INSERT INTO datacheck_audit (chat_key, employee_id, fields_compared, fields_differing, at) "
            "VALUES (?, ?, ?, ?, ?)",
            [hd.chat_key(inbound.chat_id), data.get("employee_id"), ",".join(compared), ",".join(differing),
             to_iso(hd.now())],
        )
        holder = self._holder(inbound.chat_id)
        phone_hint = None
        if "phone" in differing and holder is not None and holder.phone_last4:
            phone_hint = "**" + holder.phone_last4[-2:]

        def labels(kind: str) -> list[str]:
            return [hd.msg(f"diagnosis.datacheck.field.{f}") for f in FIELDS if results.get(f) == kind]

        text = hd.text("diagnosis/datacheck_result.j2", differing=labels(DIFFERS), same=labels(SAME),
                       norecord=labels(NO_RECORD), skipped=labels(SKIPPED), phone_hint=phone_hint,
                       name_differs="name" in differing, phone_differs="phone" in differing)
        rows: list[tuple[Button, ...]] = []
        for field, entry_id in (("name", "mismatch.name"), ("phone", "issue.phone-changed")):
            entry = hd.kb.get(entry_id)
            if field in differing and entry is not None:
                rows.append((Button(entry.title, f"kb:{entry.id}"),))
        general = hd.kb.get("mismatch.personal-data")
        if differing and general is not None:
            rows.append((Button(general.title, f"kb:{general.id}"),))
        rows.append((hd.action_button("staff"),))
        rows.append((hd.home_button(),))
        tag = "datacheck:differs:" + ",".join(differing) if differing else "datacheck:all-same"
        return Reply(text, tuple(rows), tags=(tag,))

    # -- helpers --------------------------------------------------------------------------------------
    def _holder(self, chat_id: str):
        try:
            from bot.registry import Registry
        except ImportError:
            return None
        return Registry(self.hd).holder_by_chat(chat_id)

    def minutes_until_allowed(self, chat_id: str) -> int:
        """0 when a check may start now; else minutes until the oldest check of the last hour ages out."""
        limit = self.hd.config.datacheck_per_hour
        now = self.hd.now()
        since = to_iso(now - timedelta(hours=1))
        rows = self.hd.store.db.execute(
            "SELECT at FROM datacheck_audit WHERE chat_key = ? AND at > ? ORDER BY at",
            [self.hd.chat_key(chat_id), since],
        ).fetchall()
        if len(rows) < limit:
            return 0
        oldest = parse_instant(rows[len(rows) - limit][0])
        seconds = (oldest + timedelta(hours=1) - now).total_seconds()
        return max(1, int(-(-seconds // 60)))
