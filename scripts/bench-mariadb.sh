#!/usr/bin/env bash
# MySQL/MariaDB source benchmark (figures, not a test). Starts a MariaDB server of its own
# (mariadb-install-db in $BUND_CACHE/bench-mariadb on a free port), loads ROWS people, and
# reports:
#   client      SELECT * FROM people through the `mariadb --quick` client into /dev/null:
#               how fast the server hands these rows to its own client
#   bund        SELECT * FROM mysrc.people through a release-built bund to ADBC
#   selective   a 1 %-selective query (bucket = 7) with filter pushdown and the same query
#               against a database entry with filter_pushdown = false
#   count       SELECT count(*), sum(amount) … GROUP BY district_code: run in MariaDB
#               against the same aggregate over every row sent to Bund (filter_pushdown
#               = false turns all pushdown off)
#   oracle      with an index on bucket, pudong_police (row filter: its district) counting a
#               bucket whose rows are all in other districts, and one that does not exist:
#               both answers are 0, and so must be alike in time
# Rounds are interleaved so that machine noise hits every case alike; medians of 3.
#
#   bash scripts/bench-mariadb.sh [ROWS]        # default: 10000000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ROWS="${1:-10000000}"
PASSWORD=bench-my-pw

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"

dir="$BUND_CACHE/bench-mariadb"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$dir"
mkdir -p "$dir/data"
as_root=()
if [ "$(id -u)" = 0 ]; then
    chown -R mysql "$dir"
    as_root=(--user=mysql)
fi
mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve "${as_root[@]}" >"$dir/install.log" 2>&1
"$BUND_TEST_MARIADBD" --no-defaults --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
    --innodb-buffer-pool-size=2G --skip-log-bin --log-error="$dir/error.log" "${as_root[@]}" &
server=$!
trap 'kill ${BENCH_PID:-0} 2>/dev/null || true; kill $server 2>/dev/null || true' EXIT
root() { mariadb --no-defaults --socket="$dir/sock" -u root "$@"; }
for _ in $(seq 1 600); do root -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
root -e "CREATE USER 'bund'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
    GRANT ALL ON *.* TO 'bund'@'127.0.0.1'; CREATE DATABASE bund;"

echo "== loading $ROWS rows into MariaDB"
root bund -e "CREATE TABLE people (id BIGINT NOT NULL PRIMARY KEY, id_card CHAR(18) NOT NULL,
        name VARCHAR(40) NOT NULL, district_code CHAR(6) NOT NULL, birth_date DATE NOT NULL,
        amount DECIMAL(12,2) NOT NULL, bucket INT NOT NULL) ENGINE=InnoDB;
    INSERT INTO people SELECT seq, LPAD(seq, 18, '0'), CONCAT('name ', seq),
        ELT(1 + seq % 16, '310101','310104','310105','310106','310107','310109','310110',
            '310112','310113','310114','310115','310116','310117','310118','310120','310151'),
        DATE '1950-01-01' + INTERVAL (seq % 20000) DAY, (seq % 100000) / 100.0, seq % 100
        FROM seq_1_to_$ROWS;
    ANALYZE TABLE people;" >/dev/null

config="$BUND_CACHE/bench-mariadb-config"
bench_config "$config"
bench_db_bureau "$config" mysql mysrc people
bench_police_policy "$config" mysrc
data=$(bench_data "$BUND" 1000000)
bench_start "$BUND" "$config" "$data" BUND_BENCH_DB_URL="mysql://bund:$PASSWORD@127.0.0.1:$port/bund"
pid=$BENCH_PID
addr=$BENCH_ADDR

runs="$BUND_CACHE/bench-mariadb-runs.txt"
: >"$runs"
client_run() {
    local t0 t1
    t0=$(date +%s.%N)
    mariadb --no-defaults --quick --protocol=tcp -h 127.0.0.1 -P "$port" -u bund -p"$PASSWORD" \
        -N -B bund -e "SELECT * FROM people" >/dev/null
    t1=$(date +%s.%N)
    echo "client $ROWS $(echo "$t1 - $t0" | bc)"
}
agg="SELECT district_code, count(*), sum(amount) FROM mysrc.people GROUP BY district_code"
for i in 1 2 3 4; do
    client_run >>"$runs"
    bench_throughput "$addr" bund admin "SELECT * FROM mysrc.people" >>"$runs"
    bench_throughput "$addr" pushdown admin "SELECT * FROM mysrc.people WHERE bucket = 7" >>"$runs"
    bench_throughput "$addr" nopush admin "SELECT * FROM mysrc.people_nopush WHERE bucket = 7" >>"$runs"
    bench_throughput "$addr" agg_push admin "$agg" >>"$runs"
    bench_throughput "$addr" agg_bund admin "${agg/mysrc.people/mysrc.people_nopush}" >>"$runs"
    [ "$i" = 1 ] && : >"$runs" # the first round warms caches
done
bench_summary "$runs" "
Bund rows/s / mariadb client rows/s = med['client'] / med['bund']
1 % selective query, pushdown speed-up = med['nopush'] / med['pushdown']
aggregate in MariaDB, speed-up = med['agg_bund'] / med['agg_push']"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status)"

# oracle: with an index on bucket, an officer's empty answers (see bench_oracle)
root bund -e "CREATE INDEX people_bucket ON people (bucket); ANALYZE TABLE people;" >/dev/null
bench_oracle "$addr" mysrc
