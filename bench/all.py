"""Every benchmark, one after the other, and one table at the end.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/all.py [--quick]

Each script runs in its own process on its own scratch database (created and dropped) and
writes its figures to a shared file; their own detailed output goes to bench/last-run.log.
The table: measure, our median, the peer's (measured in the same run), the ratio (how many
times better we are: peer ÷ ours for times, ours ÷ peer for rates), the target. `--quick`
runs everything at a small size, to check that the command works (the figures mean little).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = "--quick" in sys.argv

# (script, its arguments at full size, at --quick size)
SCRIPTS = [
    ("grids.py", [], ["0.02"]),
    ("sales_control.py", [], []),
    ("leads.py", [], ["20000"]),
    ("grid_count.py", [], ["20000"]),
    ("ladder.py", [], ["200000"]),  # at least 10,000 deals: the escalating ones
    ("documents.py", [], []),
    ("exports.py", [], ["20000"]),
    ("load.py", ["1", "60", "50"], ["0.02", "10", "10"]),
    ("dashboard_http.py", ["1", "30", "10"], ["0.02", "5", "10"]),  # needs wrk: scripts/setup --bench
    ("changes.py", [], ["0.05"]),  # issue 21: a unit swap, the settlement worklist
    ("tickets.py", [], ["0.1"]),  # issue 22: after-sales tickets and satisfaction (R-SVC-1/2)
    ("late_fees.py", [], ["20000"]),  # issue 22: the daily run with late fees (R-AFT-1)
    ("loan_ageing.py", [], []),  # issue 22: mortgage ageing on 40,000 live files (R-AFT-2)
    ("true_up.py", [], ["50"]),  # issue 22: a building's true-up (R-AFT-3)
    ("handover.py", ["100"], ["20"]),  # issue 22: notices, inspection and keys (R-AFT-4)
    ("check_in.py", [], ["20000"]),  # issue 23: the desk's phone check-in (R-RCP-2, R-COM-1)
    ("commission_statement.py", [], ["4000"]),  # issue 23: the month's statements, 40,000 live deals (R-COM-2)
]


def main() -> None:
    if not os.environ.get("DATABASE_URL"):
        sys.exit("bench/all.py measures on PostgreSQL: set DATABASE_URL (and REDIS_URL for the workers)")
    table = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    log = (HERE / "last-run.log").open("w")
    env = {**os.environ, "BENCH_TABLE": str(table)}
    if QUICK:
        env["BENCH_PAYMENTS"] = "20000"
    started = time.time()
    for script, full, quick in SCRIPTS:
        args = quick if QUICK else full
        print(f"running {script} {' '.join(args)}…", flush=True)
        log.write(f"\n===== {script} {' '.join(args)}\n")
        log.flush()
        result = subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE.parent, env=env,
                                stdout=log, stderr=subprocess.STDOUT, timeout=3600)
        if result.returncode:
            print(f"  {script} failed (exit {result.returncode}): see bench/last-run.log")
    rows = [json.loads(line) for line in table.read_text().splitlines() if line.strip()]
    table.unlink()
    print(f"\n{len(rows)} figures in {time.time() - started:.0f} s"
          f"{' (quick sizes)' if QUICK else ''}; details in bench/last-run.log\n")
    print(f"{'measure':70} {'ours':>10} {'peer':>10} {'ratio':>6} {'unit':>7}  target")
    for row in rows:
        ours, peer, unit = row["ours"], row["peer"], row["unit"]
        ratio = "-" if not peer or not ours else f"{(peer / ours if unit in ('ms', 's') else ours / peer):.1f}"
        peer_text = f"{peer:10.1f}" if peer else f"{'-':>10}"
        print(f"{row['measure'][:70]:70} {ours:10.1f} {peer_text} {ratio:>6} {unit:>7}  {row['target']}")


if __name__ == "__main__":
    main()
