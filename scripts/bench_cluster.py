"""The clients of scripts/bench-cluster.sh: CLIENTS threads, each one connection through the
load balancer as pudong_police, running small dashboard queries and an ID lookup for SECS
seconds over raw pyarrow.flight. A query that fails makes its client reconnect and send it
again, once (what a BI tool's retry does).

    bench_cluster.py CASE ADDR DATA_DIR CLIENT_PY CLIENTS SECS
"""
import os
import statistics
import sys
import threading
import time

import pyarrow.flight as flight
import pyarrow.parquet as pq

case, addr, data, client_py, clients, secs = sys.argv[1:7]
clients, secs = int(clients), float(secs)
sys.path.insert(0, os.path.dirname(os.path.abspath(client_py)))
from bi_client import statement_query_command  # noqa: E402

ids = pq.read_table(f"{data}/police/residents", columns=["id_card"],
                    filters=[("district_code", "=", "310115")]).column(0).to_pylist()[:1000:10]
QUERIES = [
    "SELECT sex, count(*) FROM police.residents GROUP BY sex",
    "SELECT count(*) FROM police.residents WHERE birth_date >= DATE '1990-01-01'",
    "SELECT substr(household_id, 1, 4) AS h, count(*) FROM police.residents GROUP BY h ORDER BY h LIMIT 10",
    "SELECT * FROM police.residents WHERE id_card = '{key}'",
]


def connect():
    c = flight.FlightClient(f"grpc://{addr}")
    header = c.authenticate_basic_token("pudong_police", "pudong_police-demo")
    return c, flight.FlightCallOptions(headers=[header], timeout=30)


def run(conn, sql):
    c, opts = conn
    info = c.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(sql)), opts)
    return c.do_get(info.endpoints[0].ticket, opts).read_all().num_rows


lock = threading.Lock()
latencies, first_try, after_retry, failed, errors = [], [0], [0], [0], []
deadline = time.monotonic() + secs


def client(n):
    conn = None
    i = n
    while time.monotonic() < deadline:
        sql = QUERIES[i % len(QUERIES)].format(key=ids[i % len(ids)])
        i += 1
        t0 = time.perf_counter()
        try:
            conn = conn or connect()
            run(conn, sql)
            outcome = first_try
        except Exception:  # noqa: BLE001 - counted: the client reconnects and retries once
            try:
                conn = connect()
                run(conn, sql)
                outcome = after_retry
            except Exception as e:  # noqa: BLE001
                conn = None
                outcome = failed
                with lock:
                    errors.append(str(e).splitlines()[0][:160])
        with lock:
            outcome[0] += 1
            if outcome is not failed:
                latencies.append(time.perf_counter() - t0)


threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
started = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - started
total = first_try[0] + after_retry[0] + failed[0]
lat = sorted(latencies)
p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
line = (f"{case:5s} {total / elapsed:7.1f} queries/s  p50 {p(0.5):7.1f} ms  p99 {p(0.99):7.1f} ms  "
        f"({total} queries")
if case == "kill":
    line += (f"; answered {100 * (first_try[0] + after_retry[0]) / max(total, 1):.3f} %: "
             f"{first_try[0]} at the first try, {after_retry[0]} after a retry, {failed[0]} failed")
else:
    line += f", {failed[0]} failed"
print(line + ")")
for e in sorted(set(errors))[:5]:
    print(f"      error: {e}")
