"""Loads knowledge/entries/*.md (YAML front matter + jinja2 answer), validates the whole knowledge base."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.yamlfile import load_yaml

from bot.normalize import normalize

REQUIRED_IDS_FILE = "required-ids.txt"
ENTRY_KINDS = ("answer", "redirect")
_ID = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$")


@dataclass(frozen=True)
class Entry:
    """One curated knowledge-base entry."""

    id: str
    title: str
    kind: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    related: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    path: str = ""

    @property
    def is_redirect(self) -> bool:
        return self.kind == "redirect"


@dataclass(frozen=True)
class KbProblem:
    """Something wrong in the knowledge base: which file and why (English, for staff and operators)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class KnowledgeError(RuntimeError):
    """The knowledge base cannot be loaded; `problems` says where and why."""

    def __init__(self, problems: list[KbProblem]) -> None:
        self.problems = problems
        super().__init__("knowledge base has problems:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class KnowledgeBase:
    """All entries by id, plus the action labels and the ids that must exist."""

    entries: dict[str, Entry]
    action_labels: dict[str, str]
    required_ids: tuple[str, ...] = ()
    problems: list[KbProblem] = field(default_factory=list)

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def __len__(self) -> int:
        return len(self.entries)


def split_front_matter(text: str) -> tuple[str, str] | None:
    """('yaml', 'body') from a file that starts with a --- fenced header, or None."""
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        return None
    parts = re.split(r"^---\s*$", text, maxsplit=2, flags=re.MULTILINE)
    if len(parts) < 3:
        return None
    return parts[1], parts[2].strip()


def _str_tuple(value, field_name: str, path: str, problems: list[KbProblem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(KbProblem(path, f"'{field_name}' must be a list"))
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def parse_entry(path: Path, problems: list[KbProblem]) -> Entry | None:
    """Parse one entry file; append problems and return None when it cannot be used."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(KbProblem(where, f"cannot read file: {exc}"))
        return None
    split = split_front_matter(text)
    if split is None:
        problems.append(KbProblem(where, "missing front matter: the file must start with a '---' header block"))
        return None
    header_text, body = split
    try:
        header = load_yaml(header_text)
    except yaml.YAMLError as exc:
        problems.append(KbProblem(where, f"front matter is not valid YAML: {exc}".replace("\n", " ")))
        return None
    if not isinstance(header, dict):
        problems.append(KbProblem(where, "front matter must be a mapping of fields"))
        return None
    before = len(problems)
    entry_id = str(header.get("id", "")).strip()
    if not entry_id:
        problems.append(KbProblem(where, "missing 'id'"))
    elif entry_id != path.stem:
        problems.append(KbProblem(where, f"id '{entry_id}' does not match the file name '{path.stem}'"))
    elif not _ID.match(entry_id):
        problems.append(KbProblem(where, f"id '{entry_id}' must look like 'topic.sub-topic' (lowercase)"))
    title = str(header.get("title", "")).strip()
    if not title:
        problems.append(KbProblem(where, "missing 'title'"))
    kind = str(header.get("kind", "answer")).strip()
    if kind not in ENTRY_KINDS:
        problems.append(KbProblem(where, f"'kind' must be one of {', '.join(ENTRY_KINDS)}, not '{kind}'"))
    questions = _str_tuple(header.get("questions"), "questions", where, problems)
    if len(questions) < 6:
        problems.append(KbProblem(where, f"needs at least 6 example questions, has {len(questions)}"))
    if not body:
        problems.append(KbProblem(where, "the answer (text below the front matter) is empty"))
    codes = tuple(str(c) for c in (header.get("error_codes") or []))
    if len(problems) > before:
        return None
    return Entry(
        id=entry_id,
        title=title,
        kind=kind,
        questions=questions,
        keywords=_str_tuple(header.get("keywords"), "keywords", where, problems),
        answer=body,
        related=_str_tuple(header.get("related"), "related", where, problems),
        actions=_str_tuple(header.get("actions"), "actions", where, problems),
        sources=_str_tuple(header.get("sources"), "sources", where, problems),
        error_codes=codes,
        path=where,
    )


def load_knowledge(knowledge_dir: str | Path) -> KnowledgeBase:
    """Load every entry; problems are collected in `kb.problems` (use `check_knowledge` for the full check)."""
    root = Path(knowledge_dir)
    problems: list[KbProblem] = []
    entries: dict[str, Entry] = {}
    entry_dir = root / "entries"
    if not entry_dir.is_dir():
        problems.append(KbProblem(str(entry_dir), "entries folder not found"))
    for path in sorted(entry_dir.glob("*.md")) if entry_dir.is_dir() else []:
        entry = parse_entry(path, problems)
        if entry is None:
            continue
        if entry.id in entries:
            problems.append(KbProblem(str(path), f"duplicate id '{entry.id}' (also in {entries[entry.id].path})"))
            continue
        entries[entry.id] = entry
    action_labels: dict[str, str] = {}
    actions_file = root / "actions.yaml"
    try:
        loaded = load_yaml(actions_file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError("expected a mapping of action -> label")
        action_labels = {str(k): str(v) for k, v in loaded.items()}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problems.append(KbProblem(str(actions_file), f"cannot load actions: {exc}"))
    required: tuple[str, ...] = ()
    required_file = root / REQUIRED_IDS_FILE
    if required_file.is_file():
        required = tuple(
            line.split("#", 1)[0].strip()
            for line in required_file.read_text(encoding="utf-8").splitlines()
            if line.split("#", 1)[0].strip()
        )
    return KnowledgeBase(entries=entries, action_labels=action_labels, required_ids=required, problems=problems)


def check_knowledge(kb: KnowledgeBase, renderer, *, max_answer_chars: int = 1000) -> list[KbProblem]:
    """Every problem of the knowledge base: loading, required ids, references, templates, duplicate questions."""
    problems = list(kb.problems)
    for required in kb.required_ids:
        if required not in kb.entries:
            problems.append(KbProblem(REQUIRED_IDS_FILE, f"required entry '{required}' is missing"))
    seen_questions: dict[str, str] = {}
    for entry in kb.entries.values():
        for related in entry.related:
            if related not in kb.entries:
                problems.append(KbProblem(entry.path, f"related id '{related}' does not exist"))
            elif related == entry.id:
                problems.append(KbProblem(entry.path, "an entry cannot be related to itself"))
        for action in entry.actions:
            if action not in kb.action_labels:
                problems.append(KbProblem(entry.path, f"unknown action '{action}' (see actions.yaml)"))
        for question in entry.questions:
            key = normalize(question)
            owner = seen_questions.get(key)
            if owner is not None and owner != entry.id:
                other = kb.entries[owner].path
                problems.append(KbProblem(entry.path, f"question '{question}' is also listed under '{owner}' ({other})"))
            elif owner == entry.id:
                problems.append(KbProblem(entry.path, f"question '{question}' is listed twice"))
            seen_questions[key] = entry.id
        try:
            text = renderer.from_source(f"check:{entry.id}", entry.answer, contact="담당자", cfg={})
        except Exception as exc:  # any template failure is a KB problem to report, not a crash
            problems.append(KbProblem(entry.path, f"answer template does not render: {exc}"))
            continue
        if len(text) > max_answer_chars:
            problems.append(KbProblem(entry.path, f"answer is {len(text)} characters; keep it under {max_answer_chars}"))
    return problems
