"""Registry at scale: `registry import` of 100,000 CSV rows, and /status lookups among 100,000 holders.

1. Import: a generated CSV of 100,000 rows (50,000 holders, each a sig/env pair, with 주민등록번호 and phone
   numbers to hash) through `helpdesk registry import` as a subprocess (target <= 10 s), and in-process
   (`Registry.import_csv`). Baseline, same run: the same rows parsed with csv and inserted with a plain
   sqlite3 executemany into the same tables (no validation, no hashing, no upsert).
2. Status: 50,000 more holders are imported (100,000 holders, 200,000 certificates), every holder linked to a
   chat; then for 2,000 random chats the data of /status (`holder_by_chat` + `certificates`, target p99
   <= 5 ms) and the whole `/status` turn through `Helpdesk.handle` (rendering and the turn log included).
   Baseline: a bare SELECT of a holder by primary key.

Run: .venv/bin/python bench/bench_registry.py [--quick]   (--quick: 10,000 rows)
"""
from __future__ import annotations

import csv
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import SEOUL, FixedClock, to_iso  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.helpdesk import Helpdesk  # noqa: E402
from bot.registry import CSV_OPTIONAL, CSV_REQUIRED, Registry  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.types import Inbound  # noqa: E402

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SEOUL)
ISSUER = "CN=CA131000002,OU=GPKI,O=Government of Korea,C=KR"
IMPORT_TARGET_S = 10.0
STATUS_TARGET_MS = 5.0
LOOKUPS = 2000


def write_csv(path: Path, holders: range, seed: int) -> int:
    """Two rows (sig, env) per holder; returns the number of rows."""
    rng = random.Random(seed)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_REQUIRED + CSV_OPTIONAL)
        for i in holders:
            emp = f"S{i:06d}"
            name = f"공무원{i}"
            not_after = (NOW + timedelta(days=rng.randint(-365, 730))).date().isoformat()
            not_before = (NOW - timedelta(days=rng.randint(400, 800))).date().isoformat()
            phone = f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
            rrn = f"{rng.randint(700101, 991231)}-{rng.randint(1, 4)}{rng.randint(0, 999999):06d}"
            status = "revoked" if rng.random() < 0.03 else ""
            for k, kind in enumerate(("sig", "env")):
                serial = f"{i * 2 + k + 0x10000:X}"
                writer.writerow([emp, name, "행정안전부", "1311000", "정보화담당관", phone, f"{emp.lower()}@example.kr",
                                 serial, ISSUER, f"CN=001{name}001,OU=people,OU=행정안전부,O=Government of Korea,C=KR",
                                 not_before, not_after, rrn, status, "", "keyCompromise" if status else "",
                                 "1.2.410.100001.2.2.1", kind])
                rows += 1
    return rows


def baseline_import(db_path: Path, csv_path: Path) -> float:
    """Plain csv + sqlite3 executemany of the same rows into the same tables."""
    Store(db_path).close()
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    stamp = to_iso(NOW)
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        holders, certs = {}, []
        for r in reader:
            holders[r[0]] = (r[0], r[1], r[2], r[3], r[4], r[6], stamp, stamp)
            certs.append((r[0], r[8], r[7], r[9], r[10], r[11], stamp, stamp))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO holders (employee_id, name, agency, agency_code, department, email, created_at,"
                     " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(holders.values()))
    conn.executemany("INSERT INTO certificates (employee_id, issuer, serial, subject, not_before, not_after,"
                     " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", certs)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    quick = "--quick" in sys.argv
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at start"
          + ("  (busy: timings, the p99 most of all, include waiting for a CPU)" if load > (os.cpu_count() or 1) else ""))
    holders = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        tmp_path = Path(tmp)
        first, second = tmp_path / "first.csv", tmp_path / "second.csv"
        rows = write_csv(first, range(holders), seed=1)
        write_csv(second, range(holders, 2 * holders), seed=2)
        env = {**os.environ, "HELPDESK_PII_KEY": "bench-key", "HELPDESK_NOW": to_iso(NOW)}

        # 1. import
        base_s = baseline_import(tmp_path / "baseline.db", first)
        db = tmp_path / "registry.db"
        Store(db).close()  # schema, so the subprocess time is the import's
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "bot", "--db", str(db), "registry", "import", str(first)],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        cli_s = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout[-2000:], result.stderr[-2000:])
            return 1
        config = load_config(environ={"HELPDESK_DB": str(db), "HELPDESK_PII_KEY": "bench-key"})
        hd = Helpdesk(config, clock=FixedClock(NOW))
        registry = Registry(hd)
        started = time.perf_counter()
        report = registry.import_csv(second)
        lib_s = time.perf_counter() - started
        assert report.ok and report.rows == rows, report
        again_started = time.perf_counter()
        registry.import_csv(first)  # re-import: every row an update
        again_s = time.perf_counter() - again_started

        print(f"registry import, {rows:,} CSV rows ({holders:,} holders):")
        print(f"  helpdesk registry import (subprocess) {cli_s:6.2f} s   target <= {IMPORT_TARGET_S:.0f} s   "
              f"{'OK' if cli_s <= IMPORT_TARGET_S else 'OVER TARGET'}")
        print(f"  Registry.import_csv (in process)      {lib_s:6.2f} s   ({rows / lib_s:,.0f} rows/s)")
        print(f"  re-import of the same rows (updates)  {again_s:6.2f} s")
        print(f"  baseline: csv + plain executemany     {base_s:6.2f} s   ratio {cli_s / base_s:.1f}x (subprocess), "
              f"{lib_s / base_s:.1f}x (in process)")

        # 2. status
        total = 2 * holders
        with hd.store.transaction():
            hd.store.db.execute("UPDATE holders SET chat_id = 'tg:' || employee_id")
        rng = random.Random(3)
        picks = [f"S{rng.randrange(total):06d}" for _ in range(LOOKUPS)]
        lookup_ms, handle_ms, base_ms = [], [], []
        conn = hd.store.db.conn
        for emp in picks[:200]:  # warm-up
            registry.certificates(emp)
        for emp in picks:
            started = time.perf_counter()
            conn.execute("SELECT * FROM holders WHERE employee_id = ?", [emp]).fetchone()
            base_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            holder = registry.holder_by_chat(f"tg:{emp}")
            certs = registry.certificates(holder.employee_id)
            lookup_ms.append((time.perf_counter() - started) * 1000)
            assert len(certs) == 2
            started = time.perf_counter()
            replies = hd.handle(Inbound(chat_id=f"tg:{emp}", user_id=emp, text="/status", channel="telegram"))
            handle_ms.append((time.perf_counter() - started) * 1000)
            assert "registry:status" in replies[0].tags
        p99_lookup, p99_handle, p99_base = (percentile(v, 0.99) for v in (lookup_ms, handle_ms, base_ms))
        print(f"status among {total:,} holders ({2 * total:,} certificates), {LOOKUPS:,} random chats:")
        print(f"  lookup (holder_by_chat + certificates)  p50 {statistics.median(lookup_ms):.3f} ms  "
              f"p99 {p99_lookup:.3f} ms   target p99 <= {STATUS_TARGET_MS:.0f} ms   "
              f"{'OK' if p99_lookup <= STATUS_TARGET_MS else 'OVER TARGET'}")
        print(f"  whole /status turn (Helpdesk.handle)    p50 {statistics.median(handle_ms):.3f} ms  "
              f"p99 {p99_handle:.3f} ms   {'OK' if p99_handle <= STATUS_TARGET_MS else 'over the lookup target'}")
        print(f"  baseline: SELECT holder by primary key  p50 {statistics.median(base_ms):.3f} ms  "
              f"p99 {p99_base:.3f} ms   ratio {p99_lookup / p99_base:.1f}x (lookup), "
              f"{p99_handle / p99_base:.1f}x (turn)")
        hd.close()
        ok = cli_s <= IMPORT_TARGET_S and p99_lookup <= STATUS_TARGET_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
