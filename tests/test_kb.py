"""The knowledge base: the shipped one passes every check; broken ones are reported by file and reason."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.knowledge import check_knowledge, load_knowledge
from bot.render import Renderer, to_plain
from tests.conftest import ROOT

KNOWLEDGE = ROOT / "knowledge"
REQUIRED = [l.strip() for l in (KNOWLEDGE / "required-ids.txt").read_text(encoding="utf-8").splitlines()
            if l.strip() and not l.startswith("#")]


def run_cli(*args: str, env_extra: dict | None = None, stdin: bytes | None = None, cwd: Path = ROOT):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, cwd=cwd,
                          env=env, timeout=60)


def test_shipped_kb_passes_kb_check(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "k.db"), "kb", "check")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().startswith("OK ")


def test_required_ids_are_exactly_the_topics_file() -> None:
    topics = (ROOT.parent / "shared" / "domain" / "kb-topics.md")
    if topics.is_file():  # the shared folder sits beside the checkout in CI and for developers
        import re

        listed = re.findall(r"^- `([a-z.-]+)`", topics.read_text(encoding="utf-8"), flags=re.MULTILINE)
        assert listed == REQUIRED
    kb = load_knowledge(KNOWLEDGE)
    assert set(REQUIRED) <= set(kb.entries)


def test_entries_follow_the_writing_rules() -> None:
    kb = load_knowledge(KNOWLEDGE)
    renderer = Renderer(KNOWLEDGE, {"contact": "소속 기관 등록기관 인증담당자", "cfg": {}})
    for entry in kb.entries.values():
        text = to_plain(renderer.from_source(entry.id, entry.answer))
        assert len(entry.questions) >= 6, entry.id
        assert len(text) <= 700, (entry.id, len(text))
        assert "요" in text, entry.id  # polite 해요체
        assert entry.sources, entry.id


@pytest.mark.parametrize("myth, entry_id, correction", [
    ("행정전자서명 인증서 유효기간 1년이죠?", "validity.period", "1년"),
])
def test_myths_are_corrected(myth: str, entry_id: str, correction: str) -> None:
    kb = load_knowledge(KNOWLEDGE)
    assert correction in kb.entries[entry_id].answer


def test_answers_never_state_an_invented_validity_term() -> None:
    kb = load_knowledge(KNOWLEDGE)
    import re

    for entry in kb.entries.values():
        if entry.is_redirect:
            continue
        # "유효기간은 N년" as a GPKI rule is a fact no source gives.
        assert not re.search(r"유효기간은\s*\d+\s*년", entry.answer), entry.id


BROKEN = [
    ("no-front-matter.md", "그냥 답변만 있어요.", "missing front matter"),
    ("bad.yaml-entry.md", "---\nid: bad.yaml-entry\ntitle: [unclosed\n---\n답", "not valid YAML"),
    ("few.questions.md", "---\nid: few.questions\ntitle: 적음\nquestions: [하나, 둘]\n---\n답이에요", "at least 6"),
    ("wrong.name.md", "---\nid: other.name\ntitle: t\nquestions: [a1, a2, a3, a4, a5, a6]\n---\n답", "does not match"),
    ("bad.template.md", "---\nid: bad.template\ntitle: t\nquestions: [b1, b2, b3, b4, b5, b6]\n---\n{{ oops(", "does not render"),
    ("bad.related.md", "---\nid: bad.related\ntitle: t\nquestions: [c1, c2, c3, c4, c5, c6]\nrelated: [no.such]\n---\n답",
     "related id 'no.such'"),
    ("bad.action.md", "---\nid: bad.action\ntitle: t\nquestions: [d1, d2, d3, d4, d5, d6]\nactions: [fly]\n---\n답",
     "unknown action 'fly'"),
    ("dup.question.md", "---\nid: dup.question\ntitle: t\nquestions: [\"{taken}\", e2, e3, e4, e5, e6]\n---\n답",
     "also listed under"),
]


@pytest.mark.parametrize("filename, content, message", BROKEN)
def test_kb_check_names_the_file_and_the_problem(tmp_path: Path, filename: str, content: str, message: str) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    taken = load_knowledge(KNOWLEDGE).entries["password.forgotten"].questions[0]
    (knowledge / "entries" / filename).write_text(content.replace("{taken}", taken), encoding="utf-8")
    result = run_cli("--db", str(tmp_path / "k.db"), "kb", "check", env_extra={"HELPDESK_KNOWLEDGE_DIR": str(knowledge)})
    out = result.stdout.decode()
    assert result.returncode == 1
    assert filename in out and message in out, out


def test_missing_required_entry_fails_the_check(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    (knowledge / "entries" / "password.forgotten.md").unlink()
    result = run_cli("--db", str(tmp_path / "k.db"), "kb", "check", env_extra={"HELPDESK_KNOWLEDGE_DIR": str(knowledge)})
    assert result.returncode == 1
    assert "required entry 'password.forgotten' is missing" in result.stdout.decode()
    # related ids pointing at it are reported too, and start-up still works for everything else
    assert "related id 'password.forgotten'" in result.stdout.decode()


def test_corrupt_knowledge_file_stops_start_up_with_the_file_named(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    (knowledge / "entries" / "password.forgotten.md").write_bytes(b"---\nid: password.forgotten\n\xff\xfe broken")
    result = run_cli("--db", str(tmp_path / "k.db"), "ask", "비밀번호", env_extra={"HELPDESK_KNOWLEDGE_DIR": str(knowledge)})
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "password.forgotten.md" in err and "Traceback" not in err


def test_kb_dump_json_has_the_contract_fields(tmp_path: Path) -> None:
    import json

    result = run_cli("--db", str(tmp_path / "k.db"), "kb", "dump", "--json")
    items = json.loads(result.stdout)
    assert {tuple(sorted(i)) for i in items} == {("answer", "id", "questions", "tags", "title")}
    assert set(REQUIRED) <= {i["id"] for i in items}
