"""Korean-aware matching of a question against the knowledge base -> ranked candidates and a decision.

Scoring blends, per entry: the best cosine against one of its example questions (character 2/3-grams
without spaces, so spacing mistakes do not matter, plus particle-stripped words), the cosine against
the entry as a whole (all its questions, title and keywords), a bonus for the entry's keywords, and a
rapidfuzz partial-ratio tie-breaker. Feature weights are IDF over entries, so words every entry shares
("인증서") weigh almost nothing. An error code the KB lists goes straight to its entry.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz

from bot.config import MatchingSettings
from bot.knowledge import Entry, KnowledgeBase
from bot.normalize import normalize, words

_CODE = re.compile(r"(?<![0-9])([0-9]{4,5})(?![0-9])")

W_BEST_QUESTION = 0.50
W_CENTROID = 0.30
W_KEYWORD = 0.12
W_FUZZ = 0.08
TOP_N = 3


@dataclass(frozen=True)
class Candidate:
    """An entry and how well it matches (0-100)."""

    id: str
    score: float


@dataclass(frozen=True)
class Decision:
    """What the bot does with a question: answer / clarify / fallback (see design.md)."""

    question: str
    action: str
    id: str | None
    score: float
    candidates: tuple[Candidate, ...]
    via_code: str | None = None

    def as_json(self) -> dict:
        """The `ask --json` object."""
        return {
            "question": self.question,
            "action": self.action,
            "id": self.id,
            "score": round(self.score, 2),
            "candidates": [{"id": c.id, "score": round(c.score, 2)} for c in self.candidates],
        }


def features(normalized: str) -> dict[str, float]:
    """Sparse term frequencies: character 2- and 3-grams of the unspaced text, and whole words."""
    counts: dict[str, float] = defaultdict(float)
    compact = normalized.replace(" ", "")
    for n in (2, 3):
        for i in range(len(compact) - n + 1):
            counts[compact[i : i + n]] += 1.0
    for word in words(normalized):
        if len(word) >= 2:
            counts["w:" + word] += 1.0
    return counts


def _weighted(tf: dict[str, float], idf: dict[str, float], default_idf: float) -> dict[str, float]:
    vector = {f: (1.0 + math.log(c)) * idf.get(f, default_idf) for f, c in tf.items()}
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {f: v / norm for f, v in vector.items()}


class Matcher:
    """An index over a knowledge base; `rank` scores entries, `decide` applies the thresholds."""

    def __init__(self, kb: KnowledgeBase, settings: MatchingSettings) -> None:
        self.settings = settings
        self.entry_ids: list[str] = list(kb.entries)
        self.redirects = {e.id for e in kb.entries.values() if e.is_redirect}
        self.code_map: dict[str, str] = {}
        for entry in kb.entries.values():
            for code in entry.error_codes:
                self.code_map.setdefault(code, entry.id)
        self._build(list(kb.entries.values()))

    def _build(self, entries: list[Entry]) -> None:
        entry_tfs: list[dict[str, float]] = []
        question_tfs: list[tuple[int, dict[str, float], str]] = []
        df: dict[str, int] = defaultdict(int)
        for index, entry in enumerate(entries):
            merged: dict[str, float] = defaultdict(float)
            texts = [entry.title, *entry.questions]
            for text in texts:
                norm = normalize(text)
                tf = features(norm)
                question_tfs.append((index, tf, norm))
                for f, c in tf.items():
                    merged[f] += c
            for keyword in entry.keywords:
                for f, c in features(normalize(keyword)).items():
                    merged[f] += 2.0 * c
            entry_tfs.append(merged)
            for f in merged:
                df[f] += 1
        count = max(len(entries), 1)
        self.idf = {f: math.log((count + 1) / (d + 0.5)) for f, d in df.items()}
        self.default_idf = math.log((count + 1) / 0.5)
        self.question_owner: list[int] = []
        self.question_text: list[str] = []
        q_post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for q_index, (owner, tf, norm) in enumerate(question_tfs):
            self.question_owner.append(owner)
            self.question_text.append(norm)
            for f, w in _weighted(tf, self.idf, self.default_idf).items():
                q_post[f].append((q_index, w))
        c_post: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for e_index, tf in enumerate(entry_tfs):
            for f, w in _weighted(tf, self.idf, self.default_idf).items():
                c_post[f].append((e_index, w))
        self.q_post = dict(q_post)
        self.c_post = dict(c_post)
        # Keywords: IDF over how many entries list them, scaled to at most 1 per entry.
        keyword_df: dict[str, int] = defaultdict(int)
        self.keywords: list[list[str]] = []
        for entry in entries:
            kws = sorted({normalize(k).replace(" ", "") for k in entry.keywords if normalize(k)})
            self.keywords.append(kws)
            for k in kws:
                keyword_df[k] += 1
        self.keyword_idf = {k: math.log((count + 1) / (d + 0.5)) / math.log((count + 1) / 0.5) for k, d in keyword_df.items()}

    def code_entry(self, text: str) -> tuple[str, str] | None:
        """(code, entry id) for the first error code in the text that the KB knows."""
        for match in _CODE.finditer(text):
            entry_id = self.code_map.get(match.group(1))
            if entry_id:
                return match.group(1), entry_id
        return None

    def rank(self, text: str, limit: int = TOP_N) -> list[Candidate]:
        """Entries by score (0-100), best first."""
        norm = normalize(text)
        if not norm:
            return []
        query = _weighted(features(norm), self.idf, self.default_idf)
        best_question: dict[int, float] = defaultdict(float)
        per_question: dict[int, float] = defaultdict(float)
        for f, w in query.items():
            for q_index, qw in self.q_post.get(f, ()):
                per_question[q_index] += w * qw
        best_q_index: dict[int, int] = {}
        for q_index, score in per_question.items():
            owner = self.question_owner[q_index]
            if score > best_question[owner]:
                best_question[owner] = score
                best_q_index[owner] = q_index
        centroid: dict[int, float] = defaultdict(float)
        for f, w in query.items():
            for e_index, ew in self.c_post.get(f, ()):
                centroid[e_index] += w * ew
        compact = norm.replace(" ", "")
        scored: list[tuple[float, int]] = []
        for e_index in set(best_question) | set(centroid):
            keyword = min(1.0, sum(self.keyword_idf[k] for k in self.keywords[e_index] if k in compact))
            score = W_BEST_QUESTION * best_question.get(e_index, 0.0) + W_CENTROID * centroid.get(e_index, 0.0)
            score += W_KEYWORD * keyword
            scored.append((score, e_index))
        scored.sort(reverse=True)
        shortlist = scored[: max(limit, 8)]
        rescored = []
        for score, e_index in shortlist:
            q_index = best_q_index.get(e_index)
            similarity = fuzz.ratio(norm, self.question_text[q_index]) / 100.0 if q_index is not None else 0.0
            rescored.append((min(1.0, score + W_FUZZ * similarity), e_index))
        rescored.sort(reverse=True)
        return [Candidate(self.entry_ids[i], round(100.0 * s, 2)) for s, i in rescored[:limit]]

    def decide(self, text: str) -> Decision:
        """answer / clarify / fallback for one question, per the thresholds in config."""
        question = text
        via_code = self.code_entry(text)
        candidates = self.rank(text)
        if via_code is not None:
            code, entry_id = via_code
            others = tuple(c for c in candidates if c.id != entry_id)[: TOP_N - 1]
            top = (Candidate(entry_id, 100.0), *others)
            action = "fallback" if entry_id in self.redirects else "answer"
            return Decision(question, action, entry_id, 100.0, top, via_code=code)
        if not candidates:
            return Decision(question, "fallback", None, 0.0, ())
        best = candidates[0]
        second = candidates[1].score if len(candidates) > 1 else 0.0
        s = self.settings
        if best.id in self.redirects and best.score >= s.clarify_threshold:
            return Decision(question, "fallback", best.id, best.score, tuple(candidates))
        if best.score >= s.answer_threshold and best.score - second >= s.clarify_margin:
            return Decision(question, "answer", best.id, best.score, tuple(candidates))
        if best.score >= s.clarify_threshold:
            close = tuple(c for c in candidates if c.score >= s.clarify_threshold and c.id not in self.redirects)
            if len(close) == 1 and best.score >= s.answer_threshold:
                return Decision(question, "answer", best.id, best.score, tuple(candidates))
            if close:
                return Decision(question, "clarify", None, best.score, tuple(candidates))
        return Decision(question, "fallback", None, best.score, tuple(candidates))
