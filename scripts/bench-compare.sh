#!/usr/bin/env bash
# Side-by-side benchmark of two `bund` binaries (figures, not a test): for example the
# release profile before and after a change. Both servers serve the same example data; each
# case runs through ADBC against A then B, interleaved, after one warm-up round, so that
# machine noise hits both alike. Prints the median seconds per case and the ratio B / A.
#
#   bash scripts/bench-compare.sh BUND_A BUND_B [ROWS] [ROUNDS]   # default 3000000 rows, 5 rounds
#   ONLY=police,join bash scripts/bench-compare.sh ...              # just these cases
#
# Cases: the full scan, the same under the police policy (row filter + masks), a GROUP BY,
# an aggregate over the CSV bureau, string functions, a join with an aggregate, a top-n, a
# topic library as `city_analyst` (a join of two bureaus, ID numbers as HMAC tokens), and
# a planning-bound query (10 rows under the police policy; median of 20 per round). Each
# case is reported by wall time and by the server's CPU time (from /proc, in clock ticks of
# 10 ms: a figure for the cases that take tenths of a second, not for the planning case).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BUND_A BUND_B [ROWS] [ROUNDS]" >&2; exit 2; }
BUND_A=$(realpath "$1")
BUND_B=$(realpath "$2")
ROWS="${3:-3000000}"
ROUNDS="${4:-5}"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

data=$(bench_data "$BUND_B" "$ROWS")
pids=()
trap 'kill "${pids[@]}" "${BENCH_PID:-}" 2>/dev/null || true' EXIT
addrs=()
for side in a b; do
    bin=$BUND_A
    [ "$side" = b ] && bin=$BUND_B
    bench_serve "$bin" "$BUND_CACHE/bench-compare-$side" "$data"
    pids+=("$BENCH_PID")
    addrs+=("$BENCH_ADDR")
done
echo "== $ROWS residents; A = $BUND_A at ${addrs[0]}; B = $BUND_B at ${addrs[1]}"

"$PY" - "${addrs[0]}" "${addrs[1]}" "$ROUNDS" "${pids[0]}" "${pids[1]}" <<'PY'
import os, statistics, sys, time
import adbc_driver_flightsql.dbapi as fsql

addr_a, addr_b, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
pid = {"a": sys.argv[4], "b": sys.argv[5]}
TICK = os.sysconf("SC_CLK_TCK")

def cpu(side):
    """The server's user + system CPU seconds so far (less noisy than wall time on a
    shared machine: another process's load slows a query's clock, not its CPU)."""
    fields = open(f"/proc/{pid[side]}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK
CASES = [
    ("scan", "admin", "SELECT * FROM police.residents", 1),
    ("police", "pudong_police", "SELECT * FROM police.residents", 1),
    ("groupby", "admin",
     "SELECT district_code, sex, count(*) AS n FROM police.residents GROUP BY district_code, sex", 1),
    ("csv_agg", "admin",
     "SELECT employer_uscc, count(*) AS n, sum(amount) AS total FROM hrss.contributions "
     "GROUP BY employer_uscc", 1),
    ("strings", "admin",
     "SELECT upper(phone) AS p, substr(address, 1, 6) AS s, length(address) AS l "
     "FROM police.residents WHERE name LIKE '%明%'", 1),
    ("join", "admin",
     "SELECT r.district_code, count(*) AS n, sum(c.amount) AS total FROM police.residents r "
     "JOIN hrss.contributions c ON r.id_card = c.id_card GROUP BY r.district_code", 1),
    ("top_n", "admin", "SELECT * FROM police.residents ORDER BY birth_date DESC, id_card LIMIT 100", 1),
    ("topic", "city_analyst", "SELECT * FROM topic.population WHERE district_code = '310104'", 1),
    ("planning", "pudong_police", "SELECT name, phone FROM police.residents LIMIT 10", 20),
]
only = [c for c in os.environ.get("ONLY", "").split(",") if c]
if only:
    unknown = set(only) - {c[0] for c in CASES}
    if unknown:
        sys.exit(f"ONLY names unknown cases: {sorted(unknown)}; cases: {[c[0] for c in CASES]}")
    CASES = [c for c in CASES if c[0] in only]
conns = {}

def conn(addr, user):
    key = (addr, user)
    if key not in conns:
        conns[key] = fsql.connect(addr, db_kwargs={"username": user, "password": user + "-demo"},
                                  autocommit=True)
    return conns[key]

def run(addr, user, sql):
    t0 = time.perf_counter()
    rows = 0
    with conn(addr, user).cursor() as cur:
        cur.execute(sql)
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
    return time.perf_counter() - t0, rows

times = {(c[0], s): [] for c in CASES for s in "ab"}
cpus = {(c[0], s): [] for c in CASES for s in "ab"}
rows = {}
for r in range(rounds + 1):
    for name, user, sql, reps in CASES:
        for side, addr in (("a", addr_a), ("b", addr_b)):
            secs = []
            c0 = cpu(side)
            for _ in range(reps):
                t, n = run(addr, user, sql)
                secs.append(t)
                if rows.setdefault((name, side), n) != n:
                    sys.exit(f"{name}: {side} returned {n} rows, earlier {rows[(name, side)]}")
            used = (cpu(side) - c0) / reps
            if r > 0:  # round 0 warms up
                times[(name, side)].append(statistics.median(secs))
                cpus[(name, side)].append(used)
print(f"{'case':9s} {'rows':>9s} {'A median s':>11s} {'B median s':>11s} {'B / A':>6s}"
      f" {'A CPU s':>8s} {'B CPU s':>8s} {'B / A':>6s}")
for name, *_ in CASES:
    if rows[(name, "a")] != rows[(name, "b")]:
        sys.exit(f"{name}: A returned {rows[(name, 'a')]} rows, B {rows[(name, 'b')]}")
    a = statistics.median(times[(name, "a")])
    b = statistics.median(times[(name, "b")])
    ca = statistics.median(cpus[(name, "a")])
    cb = statistics.median(cpus[(name, "b")])
    ratio = f"{cb / ca:6.2f}" if ca > 0 else "     -"
    print(f"{name:9s} {rows[(name, 'a')]:9d} {a:11.4f} {b:11.4f} {b / a:6.2f}"
          f" {ca:8.3f} {cb:8.3f} {ratio}")
PY
for i in 0 1; do
    echo "server $i peak RSS: $(grep VmHWM "/proc/${pids[$i]}/status")"
done
