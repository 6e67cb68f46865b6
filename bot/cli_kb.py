"""`helpdesk kb dump|check|unanswered` and `helpdesk stats`."""
from __future__ import annotations

import argparse
import sys

from bot.cli_common import config_from_args, open_helpdesk, print_json
from bot.knowledge import KbProblem, check_knowledge, load_knowledge
from bot.render import Renderer, RenderError
from bot.reports import daily_stats, unanswered


def register(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")
    dump = kb_sub.add_parser("dump", help="every entry")
    dump.add_argument("--json", action="store_true", help="as a JSON array")
    dump.set_defaults(func=run_dump)
    check = kb_sub.add_parser("check", help="validate the knowledge base (non-zero exit on problems)")
    check.set_defaults(func=run_check)
    missing = kb_sub.add_parser("unanswered", help="questions the bot could not answer, by frequency")
    missing.add_argument("--json", action="store_true")
    missing.add_argument("--limit", type=int, default=50)
    missing.set_defaults(func=run_unanswered)
    kb.set_defaults(func=lambda args: kb.print_help() or 2)
    stats = sub.add_parser("stats", help="daily usage and feedback")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--days", type=int, default=14)
    stats.set_defaults(func=run_stats)


def run_dump(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    items = [
        {"id": e.id, "title": e.title, "questions": list(e.questions),
         "answer": hd.renderer.from_source(f"kb:{e.id}", e.answer), "tags": [e.kind, *e.keywords]}
        for e in hd.kb.entries.values()
    ]
    if args.json:
        print_json(items)
    else:
        for item in items:
            print(f"{item['id']}\t{item['title']}\t{len(item['questions'])} questions")
    return 0


def run_check(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    kb = load_knowledge(config.knowledge_dir)
    try:
        renderer = Renderer(config.knowledge_dir, {"contact": config.contact_text, "cfg": {}})
    except RenderError as exc:
        print(f"FAIL {exc}")
        return 1
    problems = check_knowledge(kb, renderer) + check_error_tables(config.knowledge_dir, kb)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"{len(problems)} problem(s) in {config.knowledge_dir}", file=sys.stderr)
        return 1
    print(f"OK {len(kb.entries)} entries, {sum(len(e.questions) for e in kb.entries.values())} example questions")
    return 0


def check_error_tables(knowledge_dir: str, kb) -> list[KbProblem]:
    """knowledge/diagnosis/ is valid, and every code an entry lists leads to that entry in codes.yaml."""
    from bot.diagnosis import load_table
    from bot.diagnosis_feature import check_diagnosis

    problems = check_diagnosis(knowledge_dir, kb)
    table, _ = load_table(knowledge_dir, set(kb.entries), set(kb.action_labels))
    for entry in kb.entries.values():
        for code in entry.error_codes:
            row = table.row_for(code)
            if row is None:
                problems.append(KbProblem(entry.path, f"error code {code} is not in knowledge/diagnosis/codes.yaml"))
            elif row.kb_id != entry.id:
                problems.append(KbProblem(entry.path, f"error code {code} leads to '{row.kb_id}' in "
                                                      f"knowledge/diagnosis/codes.yaml, not here"))
    return problems


def run_unanswered(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    rows = unanswered(hd.store, limit=args.limit)
    if args.json:
        print_json([row.__dict__ for row in rows])
    else:
        for row in rows:
            print(f"{row.count:>5}  {row.last_at[:10]}  {row.question}")
        if not rows:
            print("no unanswered questions")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    hd = open_helpdesk(args)
    report = daily_stats(hd.store, days=args.days, today=hd.clock.today())
    if args.json:
        print_json(report)
        return 0
    print(f"{'day':<12}{'asked':>7}{'answer':>8}{'clarify':>9}{'fallback':>10}{'👍':>5}{'👎':>5}")
    for day in report["days"]:
        print(f"{day['day']:<12}{day['asked']:>7}{day['answer']:>8}{day['clarify']:>9}{day['fallback']:>10}"
              f"{day['up']:>5}{day['down']:>5}")
    if report["feedback"]:
        print("\nfeedback per entry (👍 / 👎):")
        for row in report["feedback"]:
            print(f"  {row['entry_id']:<32} {row['up']:>4} / {row['down']:<4}")
    t = report["tickets"]
    median = "-" if t["median_first_reply_minutes"] is None else f"{t['median_first_reply_minutes']} min"
    rating = "-" if t["satisfaction_avg"] is None else f"{t['satisfaction_avg']} / 5 ({t['satisfaction_count']} rated)"
    print(f"\ntickets: {t['opened']} opened, {t['closed']} closed, {t['open_now']} open now; "
          f"median first staff reply {median}; satisfaction {rating}")
    return 0
