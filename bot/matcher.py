"""Korean-aware matching of a question against the knowledge base -> ranked candidates and a decision.

Each entry is one document: its title, every example question and (twice) its keywords. A question is
scored against every entry with BM25 over character bigrams of the normalised, unspaced text (so
spacing mistakes and particles matter little) plus particle-stripped whole words. Bigrams that every
entry shares ("인증", "증서") carry almost no weight. The score reported (0-100) is the BM25 score as a
share of what the question could score if all of its informative bigrams were found, so a question
about something the knowledge base never mentions scores low even when it has a best entry.
Error codes are not matched here: the diagnosis table (knowledge/diagnosis/codes.yaml) reads them first.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.config import MatchingSettings
from bot.knowledge import Entry, KnowledgeBase
from bot.normalize import fillers, normalize, words

TOP_N = 3
K1 = 1.2
B = 0.75
KEYWORD_REPEAT = 2
# A query term the knowledge base never uses counts this much towards what the question "could" score:
# unknown words are evidence that the question is about something else.
UNKNOWN_TERM_IDF_SHARE = 0.6
SCORE_SCALE = 2.2
# A question carrying less information than this (sum of IDF) is too vague to answer at once ("인증서").
INFORMATIVE_IDF = 12.0
# A question nearly identical to one of an entry's examples (rapidfuzz ratio above ECHO_FROM) is strong
# evidence for that entry beyond what shared bigrams show; it earns up to ECHO_BONUS points.
ECHO_FROM = 80.0
ECHO_BONUS = 30.0
SHORTLIST = 8


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


def terms(text: str) -> list[str]:
    """Character bigrams of the unspaced normalised text, and whole words (particles stripped)."""
    skip = fillers()
    norm = " ".join(w for w in normalize(text).split() if w not in skip)
    compact = norm.replace(" ", "")
    grams = [compact[i : i + 2] for i in range(len(compact) - 1)]
    if len(compact) == 1:
        grams.append(compact)
    grams.extend("w:" + word for word in words(norm) if len(word) >= 2)
    return grams


class Matcher:
    """A BM25 index over the knowledge base; `rank` scores entries, `decide` applies the thresholds."""

    def __init__(self, kb: KnowledgeBase, settings: MatchingSettings) -> None:
        self.settings = settings
        self.redirects = {e.id for e in kb.entries.values() if e.is_redirect}
        self._build(list(kb.entries.values()))

    def _build(self, entries: list[Entry]) -> None:
        self.entry_ids = [e.id for e in entries]
        # A redirect only competes when the question names what it redirects (은행, 카카오, 공무원증...):
        # everyday words (재발급, 비밀번호) alone must never send an in-scope question elsewhere.
        self.markers = {
            index: [normalize(k).replace(" ", "") for k in e.keywords if normalize(k)]
            for index, e in enumerate(entries) if e.is_redirect
        }
        self.examples = [[normalize(q) for q in (e.title, *e.questions)] for e in entries]
        counts: list[dict[str, int]] = []
        for entry in entries:
            tf: dict[str, int] = defaultdict(int)
            for text in (entry.title, *entry.questions):
                for term in terms(text):
                    tf[term] += 1
            for keyword in entry.keywords:
                for term in terms(keyword):
                    tf[term] += KEYWORD_REPEAT
            counts.append(tf)
        n = max(len(entries), 1)
        lengths = [sum(tf.values()) for tf in counts]
        average = sum(lengths) / n if lengths else 1.0
        df: dict[str, int] = defaultdict(int)
        for tf in counts:
            for term in tf:
                df[term] += 1
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5) * UNKNOWN_TERM_IDF_SHARE
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for index, tf in enumerate(counts):
            norm = K1 * (1 - B + B * lengths[index] / average)
            for term, count in tf.items():
                postings[term].append((index, self.idf[term] * count * (K1 + 1) / (count + norm)))
        self.postings = dict(postings)

    def rank(self, text: str, limit: int = TOP_N) -> list[Candidate]:
        """Entries by score (0-100), best first."""
        query = set(terms(text))
        if not query:
            return []
        totals: dict[int, float] = defaultdict(float)
        ceiling = 0.0
        for term in query:
            posting = self.postings.get(term)
            if posting is None:
                ceiling += self.unknown_idf
                continue
            ceiling += self.idf[term]
            for index, weight in posting:
                totals[index] += weight
        if not totals or ceiling <= 0:
            return []
        shortlist = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:SHORTLIST]
        scale = 100.0 / (SCORE_SCALE * ceiling) * min(1.0, ceiling / INFORMATIVE_IDF)
        norm = normalize(text)
        compact = norm.replace(" ", "")
        scored = []
        for index, total in shortlist:
            if index in self.markers and not any(m in compact for m in self.markers[index]):
                continue
            echo = process.extractOne(norm, self.examples[index], scorer=fuzz.ratio, score_cutoff=ECHO_FROM)
            bonus = ECHO_BONUS * (echo[1] - ECHO_FROM) / (100.0 - ECHO_FROM) if echo else 0.0
            scored.append((min(100.0, total * scale + bonus), index))
        scored.sort(reverse=True)
        return [Candidate(self.entry_ids[i], round(s, 2)) for s, i in scored[:limit]]

    def decide(self, text: str) -> Decision:
        """answer / clarify / fallback for one question, per the thresholds in config."""
        candidates = self.rank(text)
        if not candidates:
            return Decision(text, "fallback", None, 0.0, ())
        s = self.settings
        best = candidates[0]
        second = candidates[1].score if len(candidates) > 1 else 0.0
        clear = best.score >= s.answer_threshold and second <= s.close_ratio * best.score
        strong = best.score >= s.strong_threshold and second <= s.strong_ratio * best.score
        if clear or strong:
            # A redirect recognised out-of-scope: it answers with where to go, but counts as a fallback.
            action = "fallback" if best.id in self.redirects else "answer"
            return Decision(text, action, best.id, best.score, tuple(candidates))
        if best.score >= s.clarify_threshold:
            return Decision(text, "clarify", None, best.score, tuple(candidates))
        return Decision(text, "fallback", None, best.score, tuple(candidates))
