"""Accuracy on error reports (tests/data/errors_dev.tsv: `expected<TAB>text`), as `helpdesk ask --json` decides.

A report counts as right when the decision answers with the expected KB id. `make eval` prints this next to
the FAQ figures; `python -m bot.eval_errors [FILE...]` prints it alone.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from bot.config import PROJECT_ROOT

DEFAULT_FILE = PROJECT_ROOT / "tests" / "data" / "errors_dev.tsv"


def read_reports(path: str | Path) -> list[tuple[str, str]]:
    """(expected id, text) rows of a TSV with an `expected` and a `text` column."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or not {"expected", "text"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a header with 'expected' and 'text' columns")
        return [(row["expected"].strip(), row["text"]) for row in reader if (row.get("text") or "").strip()]


def evaluate_errors(hd, path: str | Path = DEFAULT_FILE) -> dict[str, Any]:
    """{"file", "total", "correct", "accuracy", "diagnosed", "misses": [{"text", "expected", "action", "id"}]}.

    `accuracy` is the share answered with the expected entry at once (0-1); `diagnosed` the share the
    diagnosis table itself maps to the expected entry (without the FAQ matcher).
    """
    rows = read_reports(path)
    feature = hd.feature("diagnosis")
    correct = diagnosed = 0
    misses: list[dict[str, Any]] = []
    for expected, text in rows:
        decision = hd.decide(text)
        if decision.action == "answer" and decision.id == expected:
            correct += 1
        else:
            misses.append({"text": text, "expected": expected, "action": decision.action, "id": decision.id})
        if feature is not None:
            d = feature.diagnose(text)
            diagnosed += int(d.recognized and d.kb_id == expected)
    total = len(rows)
    return {
        "file": str(path),
        "total": total,
        "correct": correct,
        "accuracy": round(correct / total, 4) if total else 0.0,
        "diagnosed": round(diagnosed / total, 4) if total else 0.0,
        "misses": misses,
    }


def format_report(result: dict[str, Any]) -> str:
    lines = [f"error reports ({Path(result['file']).name}): {result['correct']}/{result['total']} "
             f"= {100 * result['accuracy']:.1f}% answered with the expected entry "
             f"(diagnosis table alone: {100 * result['diagnosed']:.1f}%)"]
    for miss in result["misses"]:
        lines.append(f"  miss: expected {miss['expected']}, got {miss['action']} {miss['id']}: {miss['text'][:80]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from bot.config import ConfigError, load_config
    from bot.helpdesk import Helpdesk
    from bot.knowledge import KnowledgeError

    paths = (argv if argv is not None else sys.argv[1:]) or [str(DEFAULT_FILE)]
    with tempfile.TemporaryDirectory() as tmp:
        try:  # a scratch database: evaluating must not write questions into the real one
            hd = Helpdesk(load_config().with_overrides(db_path=str(Path(tmp) / "eval.db")))
        except (ConfigError, KnowledgeError) as exc:
            print(f"eval_errors: {exc}", file=sys.stderr)
            return 2
        try:
            for path in paths:
                try:
                    print(format_report(evaluate_errors(hd, path)))
                except (OSError, ValueError) as exc:
                    print(f"eval_errors: {exc}", file=sys.stderr)
                    return 2
        finally:
            hd.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
