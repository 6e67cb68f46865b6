"""Error reports -> cause, fix, KB entry; and which certificate kind a system needs.

The knowledge is data (knowledge/diagnosis/codes.yaml, systems.yaml), so staff extend it without code.
`DiagnosisTable.diagnose(text)` reads what users paste: a 표준API code (also inside brackets, after
"code=", mis-read by OCR as "l233"), an ERR_ constant name, or a client message without a code
(spacing, punctuation and small typos folded). A number is taken for a code only where it reads like
one: years, prices, phone fragments, times and passwords typed in a question are not codes.
"""
from __future__ import annotations

import functools

import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

from bot.yamlfile import load_yaml
from rapidfuzz import fuzz, process

from bot.knowledge import KbProblem
from bot.normalize import normalize

CODES_FILE = Path("diagnosis") / "codes.yaml"
SYSTEMS_FILE = Path("diagnosis") / "systems.yaml"
CHECKS = ("wrong-kind",)

UNKNOWN = "unknown-code"
NOT_RECOGNIZED = "not-recognized"

# Confidence of each way of recognising a report (0-1); `decide` answers from MIN_CONFIDENCE up.
C_CODE_AND_NAME = 1.0
C_NAME = 0.97
C_CODE_CONTEXT = 0.95
C_CODE_BARE = 0.55  # a known code with nothing around it that reads like an error ("1203에 신청했어요")
C_MESSAGE = 0.9
C_HINT = 0.75
C_UNKNOWN = 0.5
MIN_CONFIDENCE = 0.6
FUZZY_MIN = 88  # rapidfuzz partial_ratio for a message typed with noise
NAME_FUZZY_MIN = 92


# -- the table -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeRow:
    """One row of codes.yaml: a code (or a range of codes, or a codeless message) and what to do."""

    key: str  # "1238", "8000-8030" or a message id such as "session-expired"
    code: int | None
    until: int | None
    name: str
    names: dict[int, str]
    aliases: tuple[str, ...]
    label: str
    patterns: tuple[str, ...]
    hints: tuple[str, ...]
    cause: str
    steps: tuple[str, ...]
    kb_id: str | None
    needs_staff: bool
    actions: tuple[str, ...]
    check: str | None
    line: int = 0

    def covers(self, code: int) -> bool:
        if self.code is None:
            return False
        return self.code == code if self.until is None else self.code <= code <= self.until

    def name_for(self, code: int | None) -> str:
        if code is not None and code in self.names:
            return self.names[code]
        return self.name


@dataclass(frozen=True)
class Diagnosis:
    """What an error report means. `as_json()` is the `helpdesk diagnose --json` object."""

    diagnosis: str  # "1238 ERR_PATH_VALIDATION_CERT_POLICIES", "session-expired", "unknown-code", "not-recognized"
    cause: str | None
    steps: tuple[str, ...]
    kb_id: str | None
    needs_staff: bool
    confidence: float
    code: str | None = None
    name: str = ""
    label: str = ""
    actions: tuple[str, ...] = ()
    check: str | None = None
    matched: str = "none"  # code | name | message | fuzzy | hint | unknown | none
    row: str | None = None

    @property
    def recognized(self) -> bool:
        """A known code or message (not an unknown code, not "nothing found")."""
        return self.matched not in ("unknown", "none")

    @property
    def is_unknown_code(self) -> bool:
        return self.matched == "unknown"

    def as_json(self) -> dict[str, Any]:
        return {
            "diagnosis": self.diagnosis,
            "cause": self.cause,
            "steps": list(self.steps),
            "kb_id": self.kb_id,
            "needs_staff": self.needs_staff,
            "confidence": round(self.confidence, 2),
        }

    def rendered(self, render: Callable[[str], str]) -> "Diagnosis":
        """A copy with cause and steps passed through `render` (fills in `{{ contact }}`)."""
        return replace(self, cause=render(self.cause) if self.cause else self.cause,
                       steps=tuple(render(s) for s in self.steps))


def compact(text: str) -> str:
    """Normalised and without spaces: "인.증서 경로  오류" and "인증서경로오류" compare equal."""
    return normalize(text).replace(" ", "")


# -- reading numbers that are codes -----------------------------------------------------------------
# OCR and typing slips inside a code: "l233", "I238", "12O3" (at least three real digits).
_OCR_TOKEN = re.compile(r"(?<![A-Za-z0-9_])([0-9lIoO]{4,5})(?![A-Za-z0-9_])")
_OCR_MAP = str.maketrans({"l": "1", "I": "1", "o": "0", "O": "0"})
# A "-" before the number is a sign or a dash ("ERR-1238"), unless a digit precedes it (phones, dates).
_NUMBER = re.compile(r"(?<![0-9A-Za-z.\/\\])(?<![0-9]-)([0-9]{4,5})(?![0-9A-Za-z_])")
_NAME = re.compile(r"(?<![A-Za-z0-9])ERR_[A-Za-z0-9_]*[A-Za-z0-9]|(?<![A-Za-z0-9])ERR(?: [A-Z0-9]+){2,}", re.IGNORECASE)
# After the number: units and counters ("2026년", "8000원", "1301호"), decimals, dates and ranges. Units must
# touch the number, or stand alone after a space ("8000 원이에요", not "1238 원인", "1203 만료", "1238 시스템").
_NOT_CODE_AFTER = re.compile(
    r"^(?:[.\-/:~,][0-9]|(?:년|원|월|일|명|개|호|번지|시간|시|분|초|건|회|층|동|학년|세|살|자리|줄|장|대|위|차|쪽"
    r"|페이지|%|퍼센트|만|천|억))"
    r"|^\s+(?:년|원|명|개|호|번지|%|퍼센트|바이트|byte|kb|mb|gb|ms)"
    r"(?:$|[^가-힣a-z]|이|을|를|은|는|에|의|도|로|으로|입니다|이에요|이요|짜리)",
    re.IGNORECASE,
)
# Before the number: what it is when it is not a code (a password, an id, a phone, a port ...).
_NOT_CODE_BEFORE = re.compile(
    r"(?:사번|사원번호|직원번호|내선|전화|휴대폰|연락처|비밀번호|비번|pin|핀|인증번호|참조번호|인가코드|임시비밀번호"
    r"|우편번호|호실|기관코드|부서코드|학번|포트|port|serial|일련번호|시리얼|번호는|번호가|번호)"
    r"\s*(?:은|는|이|가|을|를|도|:|=|#)?\s*$",
    re.IGNORECASE,
)
_HOST_OR_TIME_BEFORE = re.compile(r"(?:[0-9]|\.[A-Za-z]{2,}|localhost):$", re.IGNORECASE)
# Right next to the number: it is being reported as an error code.
_CODE_BEFORE = re.compile(
    r"(?:오류|에러|error|err|code|코드|ret|nret|rc|result|status|errcode|errno|오류번호|에러번호|실패|failed|fail"
    r"|exception)\s*(?:코드|번호|code)?\s*[:=#(\[\-]?\s*$"
    r"|[\[(]\s*$",
    re.IGNORECASE,
)
_CODE_AFTER = re.compile(
    r"^\s*(?:[\])]|번?\s*(?:오류|에러|코드|error)|\s*-?\s*err_|:|이라고|라고|라는|이라는|뜨|떠|떴|나와|나오|나옵|에러|오류)",
    re.IGNORECASE,
)
# Anywhere in the text: it reads like an error report.
_REPORT = re.compile(
    r"오류|에러|error|err_|실패|fail|exception|떠요|떴|뜨네|뜨는|뜹니다|뜸|나와|나옵니다|나오네|나오는|나옴|메시지|메세지"
    r"|경고|팝업|창이|대요|래요|라고|라는|안\s?돼|안\s?되|안\s?됨|안\s?됩|막혀|막힘|거부|튕|불가",
    re.IGNORECASE,
)
# A phrase is quoted as what the screen said.
_CUE = re.compile(
    r"라고|라는|라며|라네|이래요|래요|대요|떠요|떴|뜨|뜸|나와|나옵|나오|나옴|오류|에러|error|메시지|메세지|창이|팝업|경고|표시|실패",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NumberHit:
    """A 4-5 digit number read as a possible code, and how strongly the text marks it as one."""

    code: int
    start: int
    marked: bool  # right next to "오류", "code=", brackets, an ERR_ name ... or alone in the message
    reportish: bool  # the text as a whole reads like an error report


def prepare(text: str) -> str:
    """Width folded (full-width digits), OCR slips in codes repaired."""
    text = unicodedata.normalize("NFKC", text)

    def fix(match: re.Match[str]) -> str:
        token = match.group(1)
        digits = sum(ch.isdigit() for ch in token)
        if digits >= 3 and digits < len(token):
            return token.translate(_OCR_MAP)
        return token

    return _OCR_TOKEN.sub(fix, text)


def find_numbers(text: str) -> list[NumberHit]:
    """Numbers in a prepared text that may be codes (not years, prices, phones, dates, passwords)."""
    hits: list[NumberHit] = []
    stripped = text.strip()
    alone = re.fullmatch(r"[\s\[\](){}:#=.\-,]*[0-9]{4,5}[\s\[\](){}:#=.\-,!?]*", stripped) is not None
    short = len(re.sub(r"[\W0-9_]", "", stripped)) <= 4  # "1301 비번", "8025 ㅠㅠ"
    reportish = _REPORT.search(text) is not None
    for match in _NUMBER.finditer(text):
        start, end = match.span(1)
        before = text[max(0, start - 24):start]
        after = text[end:end + 16]
        marked_before = bool(_CODE_BEFORE.search(before))
        if _NOT_CODE_AFTER.match(after) or (_NOT_CODE_BEFORE.search(before) and not marked_before):
            continue
        if before.endswith(":") and _HOST_OR_TIME_BEFORE.search(before):
            continue
        marked = alone or short or marked_before or bool(_CODE_AFTER.match(after))
        hits.append(NumberHit(int(match.group(1)), start, marked, reportish))
    return hits


def find_names(text: str) -> list[str]:
    """ERR_ constant names in the text, upper-cased."""
    return [m.group(0).upper().replace(" ", "_") for m in _NAME.finditer(text)
            if "_" in m.group(0) or m.group(0).isupper()]  # "ERR WRONG PASSWORD" only in capitals


def _is_year(code: int) -> bool:
    return 1900 <= code <= 2099


class DiagnosisTable:
    """The loaded codes.yaml: rows by code, names, message patterns; `diagnose` reads a report."""

    def __init__(self, rows: list[CodeRow], messages: list[CodeRow], path: str = "") -> None:
        self.path = path
        self.rows = rows
        self.messages = messages
        # The chat reads a text twice (the decision, then the reply): remember recent readings.
        self.diagnose = functools.lru_cache(maxsize=256)(self._diagnose)
        self.exact: dict[int, CodeRow] = {r.code: r for r in rows if r.until is None and r.code is not None}
        self.ranges = [r for r in rows if r.until is not None]
        self.by_name: dict[str, tuple[int | None, CodeRow]] = {}
        for row in rows:
            if row.name:
                self.by_name.setdefault(row.name, (row.code if row.until is None else None, row))
            for code, name in row.names.items():
                self.by_name.setdefault(name, (code, row))
            for alias in row.aliases:
                self.by_name.setdefault(alias, (row.code if row.until is None else None, row))
        self.by_message = {m.key: m for m in messages}
        # (compacted pattern, row, strong): strong patterns match anywhere, hints need a report cue.
        self.patterns: list[tuple[str, CodeRow, bool]] = []
        for row in [*rows, *messages]:
            for pattern in row.patterns:
                if compact(pattern):
                    self.patterns.append((compact(pattern), row, True))
            for hint in row.hints:
                if compact(hint):
                    self.patterns.append((compact(hint), row, False))
        self.patterns.sort(key=lambda p: len(p[0]), reverse=True)

    # -- look-ups -------------------------------------------------------------------------------
    def row_for(self, code: int | str) -> CodeRow | None:
        """The row for a code (a single-code row wins over a range that covers it)."""
        try:
            number = int(code)
        except (TypeError, ValueError):
            return None
        row = self.exact.get(number)
        if row is not None:
            return row
        return next((r for r in self.ranges if r.covers(number)), None)

    def name_row(self, name: str) -> tuple[int | None, CodeRow] | None:
        found = self.by_name.get(name)
        if found is not None:
            return found
        best = process.extractOne(name, list(self.by_name), scorer=fuzz.ratio, score_cutoff=NAME_FUZZY_MIN)
        return self.by_name[best[0]] if best else None

    def all_codes(self) -> list[int]:
        codes: list[int] = []
        for row in self.rows:
            if row.code is None:
                continue
            codes.extend(range(row.code, (row.until or row.code) + 1))
        return sorted(set(codes))

    # -- reading a report -----------------------------------------------------------------------
    def of_code(self, code: int | str, confidence: float = C_CODE_CONTEXT, matched: str = "code") -> Diagnosis | None:
        row = self.row_for(code)
        return self._make(row, int(code), confidence, matched) if row else None

    def of_message(self, message_id: str, confidence: float = C_MESSAGE) -> Diagnosis | None:
        row = self.by_message.get(message_id)
        return self._make(row, None, confidence, "message") if row else None

    def _diagnose(self, text: str) -> Diagnosis:
        """The best reading of a pasted error report (see the module docstring); use `diagnose`."""
        prepared = prepare(text)
        numbers = find_numbers(prepared)
        names = find_names(prepared)
        named: list[tuple[int | None, CodeRow]] = [n for n in (self.name_row(x) for x in names) if n is not None]
        known = [h for h in numbers if self.row_for(h.code) is not None]
        if known:
            for hit in known:  # a code that its ERR_ name confirms wins
                row = self.row_for(hit.code)
                if any(r is row and (c is None or c == hit.code) for c, r in named):
                    return self._make(row, hit.code, C_CODE_AND_NAME, "code")
            hit = next((h for h in known if h.marked or h.reportish), known[0])
            confidence = C_CODE_CONTEXT if (hit.marked or hit.reportish) else C_CODE_BARE
            return self._make(self.row_for(hit.code), hit.code, confidence, "code")
        if named:
            code, row = named[0]
            return self._make(row, code, C_NAME, "name")
        by_message = self._match_messages(prepared)
        if by_message is not None:
            return by_message
        unknown = [h for h in numbers if h.marked and not (_is_year(h.code) and not _strongly_marked(prepared, h))]
        if unknown:
            return self._unknown(str(unknown[0].code))
        if names:
            return self._unknown(None, names[0])
        return Diagnosis(NOT_RECOGNIZED, None, (), None, False, 0.0)

    def _match_messages(self, prepared: str) -> Diagnosis | None:
        text = compact(prepared)
        if not text:
            return None
        cue = _CUE.search(prepared) is not None
        for pattern, row, strong in self.patterns:  # longest first: the most specific message wins
            if pattern in text and (strong or cue):
                return self._make(row, row.code if row.until is None else None, C_MESSAGE if strong else C_HINT,
                                  "message" if strong else "hint")
        best: tuple[float, CodeRow] | None = None
        for pattern, row, strong in self.patterns:
            if not strong or len(pattern) < 8 or len(text) < len(pattern) - 2:
                continue
            score = fuzz.partial_ratio(pattern, text)
            if score >= FUZZY_MIN and (best is None or score > best[0]):
                best = (score, row)
        if best is not None:
            confidence = min(0.85, 0.5 + (best[0] - 80) / 50)
            row = best[1]
            return self._make(row, row.code if row.until is None else None, confidence, "fuzzy")
        return None

    def _make(self, row: CodeRow, code: int | None, confidence: float, matched: str) -> Diagnosis:
        if row.code is None:  # a codeless message
            label, code_text, name = row.key, None, ""
        else:
            number = code if code is not None else row.code
            name = row.name_for(number)
            code_text = str(number)
            label = f"{number} {name}" if name else f"{number} {row.label}"
        return Diagnosis(
            diagnosis=label, cause=row.cause, steps=row.steps, kb_id=row.kb_id, needs_staff=row.needs_staff,
            confidence=confidence, code=code_text, name=name, label=row.label, actions=row.actions,
            check=row.check, matched=matched, row=row.key,
        )

    @staticmethod
    def _unknown(code: str | None, name: str = "") -> Diagnosis:
        return Diagnosis(UNKNOWN, None, (), "contact.who", True, C_UNKNOWN, code=code, name=name,
                         actions=("staff",), matched="unknown")


def _strongly_marked(text: str, hit: NumberHit) -> bool:
    """A year-like number counts as a code only right after "code=", "오류코드" and the like."""
    before = text[max(0, hit.start - 12):hit.start]
    return re.search(r"(?:code|코드|ret|errcode|nret)\s*[:=#]?\s*$", before, re.IGNORECASE) is not None


# -- loading and validating codes.yaml --------------------------------------------------------------
def _lines_of_rows(raw: str, section: str) -> list[int]:
    """Line numbers where each list item of a top-level section starts (for error messages)."""
    lines: list[int] = []
    inside = False
    for number, line in enumerate(raw.splitlines(), start=1):
        if re.match(rf"^{section}\s*:", line):
            inside = True
            continue
        if inside and re.match(r"^\S", line) and not line.startswith("#"):
            break
        if inside and re.match(r"^\s*-\s", line) and len(line) - len(line.lstrip()) <= 2:
            lines.append(number)
    return lines


def _strings(value: Any, field_name: str, where: str, problems: list[KbProblem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        problems.append(KbProblem(where, f"'{field_name}' must be a list of texts"))
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def _parse_row(item: Any, where: str, problems: list[KbProblem], *, message: bool,
               kb_ids: set[str] | None, action_names: set[str] | None) -> CodeRow | None:
    before = len(problems)
    if not isinstance(item, dict):
        problems.append(KbProblem(where, "a row must be a mapping of fields"))
        return None
    code = until = None
    names: dict[int, str] = {}
    if message:
        key = str(item.get("id", "")).strip()
        if not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            problems.append(KbProblem(where, "'id' must be a short lowercase id such as 'session-expired'"))
    else:
        raw_code = item.get("code")
        if not isinstance(raw_code, int) or not 1000 <= raw_code <= 99999:
            problems.append(KbProblem(where, f"'code' must be a 4-5 digit number, not {raw_code!r}"))
        else:
            code = raw_code
        if item.get("until") is not None:
            if not isinstance(item["until"], int) or code is None or item["until"] <= code:
                problems.append(KbProblem(where, "'until' must be a number above 'code'"))
            else:
                until = item["until"]
        raw_names = item.get("names") or {}
        if not isinstance(raw_names, dict):
            problems.append(KbProblem(where, "'names' must map codes to ERR_ names"))
        else:
            for number, name in raw_names.items():
                if not isinstance(number, int) or code is None or not (code <= number <= (until or code)):
                    problems.append(KbProblem(where, f"'names': {number!r} is not a code of this row"))
                elif not re.fullmatch(r"ERR_[A-Z0-9_]+", str(name)):
                    problems.append(KbProblem(where, f"'names': {name!r} is not an ERR_ constant name"))
                else:
                    names[number] = str(name)
        key = f"{code}-{until}" if until else str(code)
    name = str(item.get("name", "") or "").strip()
    if name and not re.fullmatch(r"ERR_[A-Z0-9_]+", name):
        problems.append(KbProblem(where, f"'name' {name!r} must be an ERR_ constant name (upper case)"))
    aliases = _strings(item.get("aliases"), "aliases", where, problems)
    for alias in aliases:
        if not re.fullmatch(r"ERR_[A-Z0-9_]+", alias):
            problems.append(KbProblem(where, f"alias {alias!r} must be an ERR_ constant name (upper case)"))
    label = str(item.get("label", "") or "").strip()
    if not label:
        problems.append(KbProblem(where, "missing 'label'"))
    cause = str(item.get("cause", "") or "").strip()
    if not cause:
        problems.append(KbProblem(where, "missing 'cause'"))
    steps = _strings(item.get("steps"), "steps", where, problems)
    if not steps:
        problems.append(KbProblem(where, "'steps' must list at least one step"))
    kb_id = str(item.get("kb_id", "") or "").strip() or None
    if kb_id is None:
        problems.append(KbProblem(where, "missing 'kb_id'"))
    elif kb_ids is not None and kb_id not in kb_ids:
        problems.append(KbProblem(where, f"kb_id '{kb_id}' is not a knowledge-base entry"))
    needs_staff = item.get("needs_staff")
    if not isinstance(needs_staff, bool):
        problems.append(KbProblem(where, "'needs_staff' must be true or false"))
    actions = _strings(item.get("actions"), "actions", where, problems)
    for action in actions:
        if action_names is not None and action not in action_names:
            problems.append(KbProblem(where, f"unknown action '{action}' (see knowledge/actions.yaml)"))
    check = item.get("check")
    if check is not None and check not in CHECKS:
        problems.append(KbProblem(where, f"'check' must be one of {', '.join(CHECKS)}, not {check!r}"))
    for text in (cause, *steps):
        if re.search(r"\{[{%#]", re.sub(r"\{\{\s*contact\s*\}\}", "", text)):
            problems.append(KbProblem(where, "cause and steps may use only {{ contact }}, no other template code"))
            break
    patterns = _strings(item.get("patterns"), "patterns", where, problems)
    hints = _strings(item.get("hints"), "hints", where, problems)
    if message and not patterns:
        problems.append(KbProblem(where, "a message row needs 'patterns'"))
    known = {"code", "until", "id", "name", "names", "aliases", "label", "patterns", "hints", "cause", "steps",
             "kb_id", "needs_staff", "actions", "check"}
    unknown = set(item) - known
    if unknown:
        problems.append(KbProblem(where, f"unknown fields: {', '.join(sorted(map(str, unknown)))}"))
    if len(problems) > before:
        return None
    return CodeRow(key=key, code=code, until=until, name=name, names=names, aliases=aliases, label=label,
                   patterns=patterns, hints=hints, cause=cause, steps=steps, kb_id=kb_id,
                   needs_staff=bool(needs_staff), actions=actions, check=check)


def load_table(knowledge_dir: str | Path, kb_ids: set[str] | None = None,
               action_names: set[str] | None = None) -> tuple[DiagnosisTable, list[KbProblem]]:
    """Load codes.yaml; problems name the file and the row (with its line) and say what is wrong."""
    path = Path(knowledge_dir) / CODES_FILE
    problems: list[KbProblem] = []
    try:
        raw = path.read_text(encoding="utf-8")
        data = load_yaml(raw) or {}
    except (OSError, UnicodeDecodeError) as exc:
        return DiagnosisTable([], [], str(path)), [KbProblem(str(path), f"cannot read file: {exc}")]
    except yaml.YAMLError as exc:
        return DiagnosisTable([], [], str(path)), [KbProblem(str(path), f"not valid YAML: {exc}".replace("\n", " "))]
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        return DiagnosisTable([], [], str(path)), [KbProblem(str(path), "expected a 'codes:' list (and 'messages:')")]
    rows: list[CodeRow] = []
    messages: list[CodeRow] = []
    for section, target in (("codes", rows), ("messages", messages)):
        items = data.get(section) or []
        if not isinstance(items, list):
            problems.append(KbProblem(str(path), f"'{section}' must be a list"))
            continue
        lines = _lines_of_rows(raw, section)
        for index, item in enumerate(items, start=1):
            line = lines[index - 1] if index - 1 < len(lines) else 0
            ident = item.get("code", item.get("id", "?")) if isinstance(item, dict) else "?"
            where = f"{path}: {section} row {index} ({ident}, line {line})"
            row = _parse_row(item, where, problems, message=section == "messages", kb_ids=kb_ids,
                             action_names=action_names)
            if row is not None:
                target.append(CodeRow(**{**row.__dict__, "line": line}))
    seen: dict[str, str] = {}
    for row in rows:
        if row.key in seen:
            problems.append(KbProblem(str(path), f"code {row.key} is listed twice (line {seen[row.key]} and {row.line})"))
        seen[row.key] = str(row.line)
    message_ids: set[str] = set()
    for row in messages:
        if row.key in message_ids:
            problems.append(KbProblem(str(path), f"message id '{row.key}' is listed twice"))
        message_ids.add(row.key)
    for i, a in enumerate([r for r in rows if r.until]):
        for b in [r for r in rows if r.until][i + 1:]:
            if a.code <= (b.until or 0) and b.code <= (a.until or 0):
                problems.append(KbProblem(str(path), f"ranges {a.key} and {b.key} overlap"))
    return DiagnosisTable(rows, messages, str(path)), problems


# -- systems and certificate kinds ------------------------------------------------------------------
@dataclass(frozen=True)
class AcceptRule:
    scheme: str
    usages: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class System:
    id: str
    name: str
    accept: tuple[AcceptRule, ...]


@dataclass(frozen=True)
class WrongKind:
    """What is wrong with a certificate for a system. `problem`: scheme | usage | kind | unknown."""

    system_id: str
    system_name: str
    problem: str
    held: str  # Korean label of what the user holds ("공공/민간 개인용")
    needed: str  # Korean label of what the system needs ("행정기관 개인용")
    held_usage: str
    needed_usage: str
    apply: str  # what to apply for (may hold {{ contact }}); empty when nothing new is needed


@dataclass
class Systems:
    """systems.yaml: usages (labels, schemes, OIDs, what to apply for), kinds and systems."""

    default: str
    usages: dict[str, dict[str, Any]]
    kinds: dict[str, str]
    systems: dict[str, System]
    problems: list[KbProblem] = field(default_factory=list)

    def usage_of_oid(self, oid: str | None) -> str | None:
        for usage, info in self.usages.items():
            if oid and oid in info.get("oids", []):
                return usage
        return None

    def usage_label(self, usage: str) -> str:
        return str(self.usages.get(usage, {}).get("label", usage))

    def compare(self, usage: str | None, kind: str | None, scheme: str | None, system_id: str | None = None,
                policy_oid: str | None = None) -> WrongKind | None:
        """None when the system accepts the certificate; otherwise what is wrong and what to apply for."""
        system = self.systems.get(system_id or self.default)
        if system is None:
            raise KeyError(f"unknown system {system_id!r} (see {SYSTEMS_FILE})")
        usage = usage if usage and usage != "unknown" else (self.usage_of_oid(policy_oid) or "unknown")
        scheme = scheme or str(self.usages.get(usage, {}).get("scheme", "")) or "other"
        kind = kind or "unknown"
        rule = system.accept[0]
        needed_usage = rule.usages[0]
        needed = self.usage_label(needed_usage)
        apply_text = str(self.usages.get(needed_usage, {}).get("apply", ""))
        if usage == "unknown":
            return WrongKind(system.id, system.name, "unknown", self.usage_label(usage), needed, usage,
                             needed_usage, apply_text)
        for candidate in system.accept:
            if candidate.scheme == scheme and usage in candidate.usages and (kind in candidate.kinds or kind == "unknown"):
                return None
        if not any(candidate.scheme == scheme for candidate in system.accept):
            return WrongKind(system.id, system.name, "scheme", self.usage_label(usage), needed, usage,
                             needed_usage, apply_text)
        if not any(usage in candidate.usages for candidate in system.accept):
            return WrongKind(system.id, system.name, "usage", self.usage_label(usage), needed, usage,
                             needed_usage, apply_text)
        wanted = next(c for c in system.accept if usage in c.usages)
        return WrongKind(system.id, system.name, "kind", self.kinds.get(kind, kind),
                         self.kinds.get(wanted.kinds[0], wanted.kinds[0]), usage, usage, "")


def load_systems(knowledge_dir: str | Path, usage_ids: set[str] | None = None) -> Systems:
    """Load systems.yaml; `problems` name the file and entry."""
    path = Path(knowledge_dir) / SYSTEMS_FILE
    where = str(path)
    problems: list[KbProblem] = []
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Systems("", {}, {}, {}, [KbProblem(where, f"cannot load: {exc}".replace("\n", " "))])
    usages = data.get("usages") or {}
    kinds = {str(k): str(v) for k, v in (data.get("kinds") or {}).items()}
    systems: dict[str, System] = {}
    if not isinstance(usages, dict) or not usages:
        problems.append(KbProblem(where, "'usages' must map usage ids to labels"))
        usages = {}
    for usage, info in usages.items():
        if not isinstance(info, dict) or not info.get("label"):
            problems.append(KbProblem(where, f"usage '{usage}' needs a 'label'"))
    for system_id, info in (data.get("systems") or {}).items():
        at = f"{where}: system '{system_id}'"
        if not isinstance(info, dict) or not info.get("name") or not isinstance(info.get("accept"), list) \
                or not info["accept"]:
            problems.append(KbProblem(at, "needs a 'name' and a non-empty 'accept' list"))
            continue
        rules = []
        for rule in info["accept"]:
            if not isinstance(rule, dict) or not rule.get("usages") or not rule.get("kinds"):
                problems.append(KbProblem(at, "each accept rule needs 'scheme', 'usages' and 'kinds'"))
                continue
            for usage in rule["usages"]:
                if usage not in usages:
                    problems.append(KbProblem(at, f"usage '{usage}' is not listed under 'usages'"))
            for kind in rule["kinds"]:
                if kind not in kinds:
                    problems.append(KbProblem(at, f"kind '{kind}' is not listed under 'kinds'"))
            rules.append(AcceptRule(str(rule.get("scheme", "GPKI")), tuple(map(str, rule["usages"])),
                                    tuple(map(str, rule["kinds"]))))
        if rules:
            systems[str(system_id)] = System(str(system_id), str(info["name"]), tuple(rules))
    default = str(data.get("default", ""))
    if default not in systems:
        problems.append(KbProblem(where, f"'default' must name one of the systems, not {default!r}"))
    return Systems(default, dict(usages), kinds, systems, problems)


@lru_cache(maxsize=4)
def _bundled_systems(knowledge_dir: str) -> Systems:
    return load_systems(knowledge_dir)


def compare_with_system(usage: str | None, kind: str | None, scheme: str | None, system_id: str | None = None,
                        policy_oid: str | None = None, systems: Systems | None = None) -> WrongKind | None:
    """Does `system_id` (default: systems.yaml's default) accept this certificate? None if it does.

    `usage`/`kind`/`scheme` are the values `inspect --json` and the registry give; `policy_oid` fills
    in an unknown usage. A WrongKind with problem "unknown" means the usage could not be told.
    """
    if systems is None:
        from bot.config import DEFAULT_KNOWLEDGE_DIR

        systems = _bundled_systems(str(DEFAULT_KNOWLEDGE_DIR))
    return systems.compare(usage, kind, scheme, system_id, policy_oid)
