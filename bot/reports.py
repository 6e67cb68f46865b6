"""Reports for staff from the question and feedback logs: unanswered questions, daily statistics."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bot.handoff import ticket_stats
from bot.store import Store


@dataclass(frozen=True)
class Unanswered:
    question: str
    count: int
    last_at: str


def unanswered(store: Store, limit: int = 50) -> list[Unanswered]:
    """Fallback questions grouped by normalised text, most frequent first."""
    rows = store.db.execute(
        "SELECT MAX(question), COUNT(*) AS n, MAX(at) FROM questions WHERE action = 'fallback' "
        "GROUP BY normalized ORDER BY n DESC, MAX(at) DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [Unanswered(r[0], int(r[1]), r[2]) for r in rows]


def daily_stats(store: Store, days: int, today: date) -> dict:
    """Per day: questions asked, answered / clarified / fallback, 👍 / 👎; and feedback per entry."""
    since = (today - timedelta(days=days - 1)).isoformat()
    per_day: dict[str, dict] = {}
    for day, action, n in store.db.execute(
        "SELECT day, action, COUNT(*) FROM questions WHERE day >= ? GROUP BY day, action", [since]
    ).fetchall():
        row = per_day.setdefault(day, _empty_day(day))
        row["asked"] += n
        row[action] = row.get(action, 0) + n
    for day, up, down in store.db.execute(
        "SELECT day, SUM(value = 1), SUM(value = -1) FROM feedback WHERE day >= ? GROUP BY day", [since]
    ).fetchall():
        row = per_day.setdefault(day, _empty_day(day))
        row["up"], row["down"] = int(up or 0), int(down or 0)
    feedback = [
        {"entry_id": r[0], "up": int(r[1] or 0), "down": int(r[2] or 0)}
        for r in store.db.execute(
            "SELECT entry_id, SUM(value = 1), SUM(value = -1) FROM feedback WHERE day >= ? "
            "GROUP BY entry_id ORDER BY SUM(value = -1) DESC, entry_id", [since]
        ).fetchall()
    ]
    return {"days": [per_day[d] for d in sorted(per_day)], "feedback": feedback, "tickets": ticket_stats(store, since)}


def _empty_day(day: str) -> dict:
    return {"day": day, "asked": 0, "answer": 0, "clarify": 0, "fallback": 0, "up": 0, "down": 0}
