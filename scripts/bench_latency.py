"""The measurements of scripts/bench-latency.sh (see there): Bund over Flight SQL on
loopback, and DuckDB and DataFusion in-process on the same Parquet files."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import adbc_driver_flightsql.dbapi as fsql
import datafusion
import duckdb
import pyarrow.flight as flight

addr, data, client, clients, secs = sys.argv[1:6]
clients, secs = int(clients), float(secs)
only = set(filter(None, os.environ.get("LAT_ONLY", "").split(",")))


def want(case):
    return not only or case in only

residents = os.path.join(data, "police", "residents")
plain = os.path.join(data, "plain", "residents")
sys.path.insert(0, os.path.dirname(os.path.abspath(client)))
from bi_client import statement_query_command  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def ms(x):
    return f"{x * 1000:8.2f} ms"


def connect(user):
    return fsql.connect(addr, db_kwargs={"username": user, "password": user + "-demo"},
                        autocommit=True)


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# Lookup keys: ID numbers spread over the file, read by DuckDB.
duck = duckdb.connect()
duck.execute("SET threads = 2")
parquet = f"read_parquet('{residents}/*.parquet')"
ids = [r[0] for r in duck.execute(
    f"SELECT id_card FROM {parquet} USING SAMPLE 40 ROWS (reservoir, 7)").fetchall()]

if want("select1"):
    # select1
    raw = flight.FlightClient(addr)
    opts = flight.FlightCallOptions(headers=[raw.authenticate_basic_token("admin", "admin-demo")])
    info_t, get_t, both_t = [], [], []
    for i in range(210):
        t0 = time.perf_counter()
        info = raw.get_flight_info(
            flight.FlightDescriptor.for_command(statement_query_command("SELECT 1")), opts)
        t1 = time.perf_counter()
        raw.do_get(info.endpoints[0].ticket, opts).read_all()
        t2 = time.perf_counter()
        if i >= 10:
            info_t.append(t1 - t0)
            get_t.append(t2 - t1)
            both_t.append(t2 - t0)
    print(f"select1      GetFlightInfo+DoGet p50 {ms(statistics.median(both_t))}  p90 {ms(pct(both_t, .9))}"
          f"  (GetFlightInfo p50 {ms(statistics.median(info_t))}, DoGet p50 {ms(statistics.median(get_t))})")


if want("bi_flow"):
    # bi_flow
    for label, extra in (
            ("default table", []),
            ("police.residents", ["--table", "bund.police.residents", "--param-query",
                                  "SELECT * FROM police.residents WHERE id_card = ?",
                                  "--param", ids[0]])):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([sys.executable, client, addr, "-u", "admin", "-p", "admin-demo",
                            "--mode", "bi", "--json", out.name, *extra],
                           check=True, stdout=subprocess.DEVNULL)
            steps = json.load(open(out.name))["steps"]
        total = sum(s.get("ms", 0) for s in steps)
        failed = [s["step"] for s in steps if s.get("ok") is False]
        detail = ", ".join(f"{s['step'].split(' (')[0]} {s.get('ms', 0):.0f}" for s in steps)
        print(f"bi_flow      {label}: total {total:8.1f} ms{'  FAILED ' + str(failed) if failed else ''}"
              f"  [{detail}]")


if want("prepared"):
    # prepared
    with connect("admin") as conn, conn.cursor() as cur:
        query = "SELECT * FROM police.residents WHERE id_card = ?"
        cur.adbc_prepare(query)
        lookups = []
        for i, key in enumerate(ids):
            t0 = time.perf_counter()
            cur.execute(query, parameters=(key,))
            n = cur.fetch_arrow_table().num_rows
            if i >= 2:
                lookups.append(time.perf_counter() - t0)
            assert n >= 1, key
    print(f"prepared     re-executed ID lookup p50 {ms(statistics.median(lookups))}  p90 {ms(pct(lookups, .9))}"
          f"  ({len(lookups)} lookups)")



def df_ctx(pushdown):
    cfg = datafusion.SessionConfig().with_target_partitions(2).set(
        "datafusion.execution.parquet.pushdown_filters", "true" if pushdown else "false")
    ctx = datafusion.SessionContext(cfg)
    ctx.register_parquet("residents", residents + "/")
    ctx.register_parquet("plain", plain + "/")
    return ctx


ctxs = {"DataFusion": df_ctx(False), "DataFusion pushdown": df_ctx(True)}
admin = connect("admin")
police = connect("pudong_police")


def bund(sql, conn=admin):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().num_rows


def engines(sql_for, file="residents"):
    """(name, run) for Bund and the in-process engines on `file` (residents as generated,
    or the plain copy); each run returns its row count."""
    bund_table, path, df_table = {
        "residents": ("police.residents", parquet, "residents"),
        "plain": ("plain.residents", f"read_parquet('{plain}/*.parquet')", "plain"),
    }[file]
    yield "Bund (ADBC)", lambda: bund(sql_for(bund_table))
    yield "DuckDB", lambda: duck.sql(sql_for(path)).to_arrow_table().num_rows
    for name, ctx in ctxs.items():
        yield name, lambda ctx=ctx: ctx.sql(sql_for(df_table)).to_arrow_table().num_rows


if want("id_lookup"):
    # id_lookup
    key = ids[1]
    # what any statement costs through the same client path (a cursor per query, as here)
    bund("SELECT 1")
    floor = statistics.median(timed(lambda: bund("SELECT 1"), 7))
    print(f"id_lookup    protocol floor       Bund (ADBC) SELECT 1   {ms(floor)}")
    for file, label in (("residents", "as generated"), ("plain", "no bloom/page index")):
        for name, run in engines(lambda t: f"SELECT * FROM {t} WHERE id_card = '{key}'", file):
            run()
            t = statistics.median(timed(run, 7))
            print(f"id_lookup    {label:20s} {name:20s} {ms(t)}")


if want("district"):
    # district
    for name, run in engines(lambda t: f"SELECT * FROM {t} WHERE district_code = '310115'"):
        n = run()
        t = statistics.median(timed(run, 3))
        print(f"district     {name:20s} {n / t / 1e6:6.2f} M rows/s  ({n} rows, {t:.3f} s)")


if want("masked"):
    # masked
    masked = statistics.median(timed(lambda: bund("SELECT * FROM police.residents", police), 5))
    plain = statistics.median(timed(
        lambda: bund("SELECT * FROM police.residents WHERE district_code IN ('310115')"), 5))
    print(f"masked       pudong_police {masked:.3f} s, admin same rows {plain:.3f} s: {masked / plain:.2f}x")


if want("oracle"):
    # oracle: the time of an empty answer must not depend on hidden rows. pudong_police counts
    # a household of another district, and one outside every row group's range: both are 0.
    with admin.cursor() as cur:
        cur.execute("SELECT household_id FROM police.residents WHERE district_code = '310104' LIMIT 1")
        hidden = cur.fetchall()[0][0]
    oracle = {}
    for label, value in (("hidden household", hidden), ("no such household", "H0000000000")):
        sql = f"SELECT count(*) FROM police.residents WHERE household_id = '{value}'"
        bund(sql, police)
        oracle[label] = statistics.median(timed(lambda: bund(sql, police), 7))
    print("oracle       pudong_police, count of another district's household "
          f"{oracle['hidden household'] * 1000:.0f} ms, of a household outside every range "
          f"{oracle['no such household'] * 1000:.0f} ms (both 0 rows)")


if want("concurrent"):
    # concurrent
    DASHBOARD = [
        "SELECT district_code, count(*) FROM police.residents GROUP BY district_code",
        "SELECT sex, count(*) FROM police.residents WHERE district_code = '310104' GROUP BY sex",
        "SELECT count(*) FROM market.enterprises",
        "SELECT * FROM police.residents WHERE id_card = '{key}'",
    ]
    latencies, errors = [], []
    lock = threading.Lock()
    stop_at = time.perf_counter() + secs

    def dashboard(i):
        mine, conn = [], connect("admin")
        try:
            j = i
            while time.perf_counter() < stop_at:
                sql = DASHBOARD[j % len(DASHBOARD)].format(key=ids[j % len(ids)])
                j += 1
                t0 = time.perf_counter()
                try:
                    bund(sql, conn)
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        errors.append(str(e)[:120])
                    continue
                mine.append(time.perf_counter() - t0)
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)


    threads = [threading.Thread(target=dashboard, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"concurrent   {clients} clients for {secs:.0f} s: {len(latencies) / secs:7.1f} queries/s,"
          f" p50 {ms(statistics.median(latencies))}, p99 {ms(pct(latencies, .99))}, {len(errors)} errors"
          + (f" (first: {errors[0]})" if errors else ""))


