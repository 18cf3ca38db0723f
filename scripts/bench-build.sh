#!/usr/bin/env bash
# Clone to serving (a figure, not a test): what a new user's first command costs on this
# machine. Clones HEAD into a temporary directory with an empty cargo home (every crate is
# downloaded, as on a fresh machine) and its own target directory, then times, one after the
# other:
#   download   cargo fetch --locked
#   build      cargo build --release --locked -p bund-server --timings (also CPU time)
#   serve      the README's `cargo run --release -p bund-server -- serve` until it prints
#              the address it listens on (this generates the example data on first run)
# and prints each, the total, and the largest units of the build.
#
#   bash scripts/bench-build.sh            # the temporary directory is removed afterwards
#   KEEP=1 bash scripts/bench-build.sh     # keep it (the timings report is in it)
#
# The Rust toolchain itself (rustup) is taken as installed. Needs git and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/bund-clone.XXXXXX")
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

git clone -q . "$work/bund"
export CARGO_HOME="$work/cargo-home"
unset CARGO_TARGET_DIR
cd "$work/bund"
echo "== clone of $(git rev-parse --short HEAD) in $work/bund, empty CARGO_HOME"

now() { date +%s.%N; }
t0=$(now)
cargo fetch --locked --quiet
t1=$(now)
/usr/bin/time -f "%U %S" -o "$work/cpu" cargo build --release --locked -p bund-server --timings
t2=$(now)
log="$work/serve.out"
cargo run --release --locked --quiet -p bund-server -- serve --flight-addr 127.0.0.1:0 \
    >"$log" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 1 1200); do
    grep -qs '^bund: serving Flight SQL on ' "$log" && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.1
done
grep -qs '^bund: serving Flight SQL on ' "$log" || { echo "bund did not start in 120 s" >&2; exit 1; }
t3=$(now)

python3 - "$t0" "$t1" "$t2" "$t3" "$work/cpu" target/cargo-timings/cargo-timing.html <<'PY'
import json, re, sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
user, system = map(float, open(sys.argv[5]).read().split()[-2:])
def mmss(s):
    return f"{int(s // 60)} min {s % 60:04.1f} s"
print(f"download  {mmss(t1 - t0)}")
print(f"build     {mmss(t2 - t1)}  (CPU {mmss(user + system)})")
print(f"serve     {mmss(t3 - t2)}  (example data generated, address printed)")
print(f"total     {mmss(t3 - t0)}  from clone to serving")
html = open(sys.argv[6]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
units.sort(key=lambda u: -u["duration"])
print("largest units: " + ", ".join(f"{u['name']}{u['target']} {u['duration']:.0f} s" for u in units[:12]))
PY
