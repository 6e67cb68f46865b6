"""`make eval`: FAQ matching figures on tests/data/faq_dev.tsv beside two baselines computed in the same run.

Figures for our matcher (the same decision the chat uses):
- top-1: the best-ranked entry is the expected one; answered-right: the bot answers it at once;
- one-tap: answered right, or the right entry is among the "혹시 이 내용인가요?" buttons;
- top-3 recall, clarify rate, wrong answers (answered with another entry);
- out-of-scope false answers: an OUT question answered as if in scope (a redirect is not an answer).
Baselines: rapidfuzz `process.extract` with `fuzz.WRatio` over the example questions, and a plain
character-bigram BM25 over the example questions. Error reports (tests/data/errors_dev.tsv) are scored when the
diagnosis module is present.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.config import load_config
from bot.helpdesk import Helpdesk
from bot.knowledge import KnowledgeBase
from bot.store import Store

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
OUT = "OUT"


@dataclass(frozen=True)
class Example:
    expected: str
    question: str


def read_tsv(path: Path) -> list[Example]:
    """(expected, question) rows of a dev/test file (header line first)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Example(r[0].strip(), r[1].strip()) for r in rows[1:] if len(r) >= 2 and r[1].strip()]


def evaluate_matcher(hd: Helpdesk, examples: list[Example]) -> dict:
    """Our decision over every example."""
    counts: Counter = Counter()
    misses: list[tuple[str, str, str, str]] = []
    for ex in examples:
        decision = hd.decide(ex.question)
        ranked = [c.id for c in decision.candidates]
        if ex.expected == OUT:
            counts["out"] += 1
            if decision.action == "answer":
                counts["out_false"] += 1
                misses.append((ex.expected, decision.action, decision.id or "-", ex.question))
            continue
        counts["in"] += 1
        top1 = (decision.id if decision.action == "answer" else (ranked[0] if ranked else None))
        counts["top1"] += top1 == ex.expected
        counts["top3"] += ex.expected in ranked[:3]
        counts["clarify"] += decision.action == "clarify"
        right_now = decision.action == "answer" and decision.id == ex.expected
        counts["answered_right"] += right_now
        counts["one_tap"] += right_now or (decision.action == "clarify" and ex.expected in ranked[:3])
        if decision.action == "answer" and decision.id != ex.expected:
            counts["wrong"] += 1
        if not right_now:
            misses.append((ex.expected, decision.action, decision.id or (ranked[0] if ranked else "-"), ex.question))
    n_in, n_out = max(counts["in"], 1), max(counts["out"], 1)
    return {
        "in_scope": counts["in"], "out_of_scope": counts["out"],
        "top1": counts["top1"] / n_in, "top3": counts["top3"] / n_in,
        "answered_right": counts["answered_right"] / n_in, "one_tap": counts["one_tap"] / n_in,
        "clarify_rate": counts["clarify"] / n_in, "wrong_answers": counts["wrong"] / n_in,
        "out_false_answers": counts["out_false"] / n_out, "misses": misses,
    }


def _corpus(kb: KnowledgeBase) -> tuple[list[str], list[str]]:
    texts, owners = [], []
    for entry in kb.entries.values():
        for question in (entry.title, *entry.questions):
            texts.append(question)
            owners.append(entry.id)
    return texts, owners


def baseline_wratio(kb: KnowledgeBase, examples: list[Example]) -> dict:
    """rapidfuzz.process.extract with fuzz.WRatio over the example questions (the design.md baseline)."""
    texts, owners = _corpus(kb)
    return _score_rankings(examples, lambda q: _dedupe(
        owners[i] for _, _, i in process.extract(q, texts, scorer=fuzz.WRatio, limit=30)))


class Bm25Bigrams:
    """Plain character-bigram BM25 over the example questions: each stored question is a document and
    the best-scoring question's entry wins. Text is only lower-cased with spaces removed: no synonyms,
    particles or keywords (those are what our matcher adds)."""

    def __init__(self, kb: KnowledgeBase, k1: float = 1.2, b: float = 0.75) -> None:
        texts, self.owners = _corpus(kb)
        self.docs = [Counter(self.grams(text)) for text in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(len(self.docs), 1)
        df = Counter(g for d in self.docs for g in d)
        n = len(self.docs)
        self.idf = {g: math.log(1 + (n - c + 0.5) / (c + 0.5)) for g, c in df.items()}
        self.k1, self.b = k1, b

    @staticmethod
    def grams(text: str) -> list[str]:
        compact = "".join(text.lower().split())
        return [compact[i:i + 2] for i in range(len(compact) - 1)]

    def rank(self, question: str) -> list[str]:
        query = set(self.grams(question))
        scores = []
        for index, doc in enumerate(self.docs):
            norm = self.k1 * (1 - self.b + self.b * self.lengths[index] / self.avg)
            score = sum(self.idf[g] * doc[g] * (self.k1 + 1) / (doc[g] + norm) for g in query if g in doc)
            scores.append((score, index))
        scores.sort(reverse=True)
        return _dedupe(self.owners[i] for _, i in scores[:30])


def baseline_bm25(kb: KnowledgeBase, examples: list[Example]) -> dict:
    return _score_rankings(examples, Bm25Bigrams(kb).rank)


def _dedupe(ids) -> list[str]:
    seen: list[str] = []
    for entry_id in ids:
        if entry_id not in seen:
            seen.append(entry_id)
        if len(seen) == 3:
            break
    return seen


def _score_rankings(examples: list[Example], rank) -> dict:
    in_scope = [ex for ex in examples if ex.expected != OUT]
    top1 = top3 = 0
    for ex in in_scope:
        ranked = rank(ex.question)
        top1 += bool(ranked) and ranked[0] == ex.expected
        top3 += ex.expected in ranked[:3]
    n = max(len(in_scope), 1)
    return {"top1": top1 / n, "top3": top3 / n}


def evaluate(hd: Helpdesk, path: Path) -> dict:
    """All FAQ figures and both baselines for one data file."""
    examples = read_tsv(path)
    return {
        "file": str(path),
        "matcher": evaluate_matcher(hd, examples),
        "wratio": baseline_wratio(hd.kb, examples),
        "bm25": baseline_bm25(hd.kb, examples),
    }


def print_report(report: dict, show_misses: int) -> None:
    m, w, b = report["matcher"], report["wratio"], report["bm25"]
    pct = lambda x: f"{100 * x:5.1f} %"  # noqa: E731
    print(f"FAQ matching: {report['file']} ({m['in_scope']} in scope, {m['out_of_scope']} out of scope)")
    print(f"  {'':26}{'ours':>9}{'WRatio':>9}{'BM25-2g':>9}   target")
    print(f"  {'top-1 accuracy':26}{pct(m['top1']):>9}{pct(w['top1']):>9}{pct(b['top1']):>9}   >= 90 %")
    print(f"  {'top-3 recall':26}{pct(m['top3']):>9}{pct(w['top3']):>9}{pct(b['top3']):>9}   >= 97 %")
    print(f"  {'answered right at once':26}{pct(m['answered_right']):>9}")
    print(f"  {'right at once or one tap':26}{pct(m['one_tap']):>9}")
    print(f"  {'clarify rate':26}{pct(m['clarify_rate']):>9}")
    print(f"  {'wrong answers':26}{pct(m['wrong_answers']):>9}")
    print(f"  {'out-of-scope false answers':26}{pct(m['out_false_answers']):>9}                     <= 5 %")
    better = max(w["top1"], b["top1"])
    print(f"  top-1 margin over the better baseline: {100 * (m['top1'] - better):+.1f} points (target >= +10)")
    for expected, action, got, question in m["misses"][:show_misses]:
        print(f"    miss: expected {expected:<30} {action:<8} {got:<30} {question}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.eval", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="TSV files (default: the dev set, then the kept-aside test set)")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    args = parser.parse_args(argv)
    config = load_config(environ={})
    hd = Helpdesk(config, store=Store(":memory:"))
    for path in args.files or [DATA / "faq_dev.tsv", DATA / "faq_test.tsv"]:
        print_report(evaluate(hd, path), args.misses)
        print()
    errors = DATA / "errors_dev.tsv"
    try:
        evaluate_errors = importlib.import_module("bot.eval_errors").evaluate_errors
    except (ImportError, AttributeError):
        evaluate_errors = None
    if evaluate_errors is not None and errors.is_file():
        result = evaluate_errors(hd, errors)
        print(f"Error reports: {errors} accuracy {100 * result['accuracy']:.1f} % "
              f"of {result.get('total', '?')} (target >= 95 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
