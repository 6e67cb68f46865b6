"""FAQ matching speed and memory: Helpdesk.handle latency on the real KB and a 5,000-entry synthetic KB,
`helpdesk ask` start-up to first answer, and RSS after load. Each figure beside a baseline measured here:
rapidfuzz `process.extractOne` over the same example questions (latency), a bare `python -c pass`
(start-up) and the interpreter with the same imports but no KB (memory)."""
from __future__ import annotations

import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.eval import DATA, read_tsv  # noqa: E402
from bot.helpdesk import Helpdesk  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.types import Inbound  # noqa: E402

SYNTHETIC_ENTRIES = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(hd: Helpdesk, questions: list[str], rounds: int = 3) -> list[float]:
    """Steady-state latency: one unmeasured pass first compiles every template the answers use."""
    for question in questions:
        hd.handle(Inbound(chat_id="bench:warm-up", user_id="bench", text=question))
    timings = []
    for round_ in range(rounds):
        for number, question in enumerate(questions):
            inbound = Inbound(chat_id=f"bench:{number % 50}", user_id="bench", text=question)
            started = time.perf_counter()
            hd.handle(inbound)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def baseline_latency(hd: Helpdesk, questions: list[str]) -> list[float]:
    corpus = [q for e in hd.kb.entries.values() for q in e.questions]
    timings = []
    for question in questions:
        started = time.perf_counter()
        process.extractOne(question, corpus, scorer=fuzz.WRatio)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def synthetic_kb(target: Path, source: Path, count: int) -> None:
    """The real knowledge folder plus `count` entries whose questions recombine words of the real ones."""
    shutil.copytree(source, target)
    rng = random.Random(7)
    words = sorted({w for p in (source / "entries").glob("*.md") for w in p.read_text(encoding="utf-8").split()
                    if 2 <= len(w) <= 6 and w.isalnum()})
    for number in range(count):
        entry_id = f"synthetic.e{number:05d}"
        questions = "\n".join(f"  - {' '.join(rng.sample(words, 6))} {number}" for _ in range(8))
        (target / "entries" / f"{entry_id}.md").write_text(
            f"---\nid: {entry_id}\ntitle: 합성 항목 {number}\nquestions:\n{questions}\n"
            f"keywords: [{', '.join(rng.sample(words, 4))}]\n---\n합성 답변 {number}번이에요.\n",
            encoding="utf-8",
        )


def report(name: str, timings: list[float], base: list[float], target_p99: float) -> None:
    p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
    b99 = percentile(base, 0.99)
    print(f"{name}: handle() p50 {p50:.3f} ms, p99 {p99:.3f} ms (target p99 <= {target_p99} ms); "
          f"baseline extractOne(WRatio) p99 {b99:.3f} ms; ratio ours/baseline {p99 / b99:.2f}")


def startup() -> None:
    def timed(args: list[str]) -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    with tempfile.TemporaryDirectory() as tmp:
        ask = timed([sys.executable, "-m", "bot", "--db", f"{tmp}/s.db", "ask", "--json", "인증서 비밀번호를 잊어버렸어요"])
    bare = timed([sys.executable, "-c", "pass"])
    print(f"start-up: `helpdesk ask` to first answer {ask * 1000:.0f} ms (target <= 1000 ms); "
          f"bare interpreter {bare * 1000:.0f} ms; ratio {ask / bare:.1f}")


def memory() -> None:
    # VmRSS, not ru_maxrss: the peak is inherited across fork+exec from this (large) bench process.
    code = ("import sys; sys.path.insert(0,'.'); {load}; "
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')))")
    load_kb = ("from bot.config import load_config; from bot.helpdesk import Helpdesk; from bot.store import Store; "
               "hd=Helpdesk(load_config(environ={}), store=Store(':memory:')); hd.decide('인증서')")
    imports_only = "import bot.helpdesk, rapidfuzz, jinja2, yaml, sqlite_utils"
    ours = int(subprocess.run([sys.executable, "-c", code.format(load=load_kb)], capture_output=True, text=True,
                              cwd=ROOT, check=True).stdout) / 1024
    base = int(subprocess.run([sys.executable, "-c", code.format(load=imports_only)], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout) / 1024
    print(f"memory: RSS after loading the KB {ours:.1f} MB (target <= 120 MB); imports only {base:.1f} MB; "
          f"ratio {ours / base:.2f}")


def main() -> int:
    questions = [ex.question for ex in read_tsv(DATA / "faq_dev.tsv")]
    startup()
    memory()
    with tempfile.TemporaryDirectory() as tmp:
        hd = Helpdesk(load_config(environ={}), store=Store(f"{tmp}/bench.db"))
        report(f"real KB ({len(hd.kb)} entries)", latency(hd, questions), baseline_latency(hd, questions), 2.0)
        hd.close()
        synthetic = Path(tmp) / "knowledge"
        synthetic_kb(synthetic, ROOT / "knowledge", SYNTHETIC_ENTRIES)
        started = time.perf_counter()
        big = Helpdesk(load_config(environ={"HELPDESK_KNOWLEDGE_DIR": str(synthetic)}), store=Store(f"{tmp}/big.db"))
        print(f"synthetic KB: {len(big.kb)} entries loaded and indexed in {time.perf_counter() - started:.2f} s")
        report(f"synthetic KB ({len(big.kb)} entries)", latency(big, questions[:200], rounds=1),
               baseline_latency(big, questions[:50]), 20.0)
        big.close()
    print(f"(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
