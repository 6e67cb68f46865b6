"""Certificate inspection throughput (certificates/s) over a generated corpus, against the 2,000/s target.

The corpus: 2,000 GPKI/EPKI/NPKI-shaped certificates from bot.certgen (mixed usages, sig and env, a share
expiring, expired or not yet valid), each inspected as DER and as PEM, plus the same corpus in one call with a
CRL that lists a tenth of them. The baseline, measured in the same run: a bare
`x509.load_der_x509_certificate` / `load_pem_x509_certificate` of the same bytes, with the subject read
(the least any inspection must do). Best of 3 rounds each.
"""
from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402

from bot import certgen  # noqa: E402
from bot.certs import inspect_bytes, inspect_many  # noqa: E402
from bot.clock import SEOUL  # noqa: E402

COUNT = 2000
TARGET_PER_S = 2000
ROUNDS = 3
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SEOUL)
POLICIES = [certgen.PERSONAL_ADMIN] * 6 + [certgen.PERSONAL_PUBLIC, certgen.ORG_ADMIN, certgen.SERVER_ADMIN,
                                           certgen.EPKI_PERSONAL]


def corpus(count: int) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], bytes]:
    rng = random.Random(7)
    gpki, epki, npki = (certgen.make_authority(scheme=s) for s in ("GPKI", "EPKI", "NPKI"))
    ders, pems, revoked = [], [], []
    for number in range(count):
        policy = rng.choice(POLICIES)
        ca = epki if policy == certgen.EPKI_PERSONAL else npki if number % 50 == 0 else gpki
        end = NOW + timedelta(days=rng.choice([-30, 3, 20, 200, 700]))
        kind = "sig" if number % 2 == 0 else "env"
        cert, _ = certgen.issue(ca, cn=f"{number % 1000:03d}홍길동{number % 997:03d}", kind=kind,
                                policy_oid=None if ca is npki else policy, not_before=end - timedelta(days=800),
                                not_after=end, crl_url="ldap://cen.dir.go.kr:389/cn=crl1", serial=number + 1000)
        name = f"{number:04d}_{kind}"
        ders.append((f"{name}.cer", certgen.to_der(cert)))
        pems.append((f"{name}.pem", certgen.to_pem(cert)))
        if ca is gpki and number % 10 == 3:
            revoked.append((cert.serial_number, NOW - timedelta(days=1), None))
    crl = certgen.make_crl(gpki, revoked, this_update=NOW - timedelta(hours=1), next_update=NOW + timedelta(days=1))
    return ders, pems, certgen.to_der(crl)


def best_rate(work, count: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> int:
    started = time.perf_counter()
    ders, pems, crl = corpus(COUNT)
    print(f"corpus: {COUNT} certificates generated in {time.perf_counter() - started:.1f} s "
          f"(DER {sum(len(d) for _, d in ders) // COUNT} B, PEM {sum(len(d) for _, d in pems) // COUNT} B each)")

    def inspect_all(files):
        return lambda: [inspect_bytes(name, data, now=NOW) for name, data in files]

    def load_all(loader, files):
        return lambda: [loader(data).subject for _, data in files]

    figures = [
        ("inspect DER", best_rate(inspect_all(ders), COUNT),
         "load_der_x509_certificate", best_rate(load_all(x509.load_der_x509_certificate, ders), COUNT)),
        ("inspect PEM", best_rate(inspect_all(pems), COUNT),
         "load_pem_x509_certificate", best_rate(load_all(x509.load_pem_x509_certificate, pems), COUNT)),
    ]
    with_crl = [("ca.crl", crl)] + ders
    figures.append(("inspect_many DER + CRL", best_rate(lambda: inspect_many(with_crl, now=NOW), COUNT),
                    "load_der_x509_certificate", figures[0][3]))
    results = inspect_many(with_crl, now=NOW)
    statuses = {}
    for result in results[1:]:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    print(f"statuses in the corpus: {dict(sorted(statuses.items()))}")
    print(f"{'what':<26}{'certs/s':>10}{'target':>9}{'':>6}{'baseline':>30}{'certs/s':>10}{'ratio':>8}")
    worst = float("inf")
    for what, rate, base_name, base_rate in figures:
        verdict = "ok" if rate >= TARGET_PER_S else "BELOW"
        worst = min(worst, rate)
        print(f"{what:<26}{rate:>10,.0f}{TARGET_PER_S:>9,}{verdict:>6}{base_name:>30}{base_rate:>10,.0f}"
              f"{rate / base_rate:>8.2f}")
    print(f"slowest inspection: {worst:,.0f} certificates/s ({worst / TARGET_PER_S:.1f}x the {TARGET_PER_S:,}/s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
