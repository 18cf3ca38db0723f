#!/usr/bin/env python3
"""The BI-tool flow through the ADBC Flight SQL driver, as one JSON object on stdout.

Steps, in the order a BI tool takes them:
  1. connect with user/password (Flight Handshake with Basic credentials)
  2. adbc_get_objects(depth="all"): catalogs, db schemas, tables (and their columns)
  3. adbc_get_table_schema(table, db_schema_filter=schema, catalog_filter=catalog)
  4. --query: execute and fetch all rows
  5. --prepared: adbc_prepare (CreatePreparedStatement), then execute with --param bound
     (DoPut of the one-row parameter batch, then GetFlightInfo/DoGet on the handle)

Output: {"catalogs": [...], "schemas": {catalog: [...]}, "tables": {schema: [...]},
         "table_schema": [[name, arrow type, nullable], ...],
         "query_rows": [[...], ...], "prepared_rows": [[...], ...]}
All name lists are sorted; rows keep the server's order. Dates, times and timestamps are ISO
strings (timestamps with a time zone as the UTC instant, "...+00:00"), decimals plain strings,
binary hex strings. Exit 0 on success; on any failure exit 1
with a message on stderr (and nothing on stdout).

Example:
  adbc_bi.py --uri grpc://127.0.0.1:50051 --user alice --password secret \
      --table police.residents --query "SELECT * FROM police.residents LIMIT 5" \
      --prepared "SELECT * FROM police.residents WHERE name = ?" --param 张三
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sys
from typing import Any


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors are failures too: exit 1
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(1)


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uri", required=True, help="grpc://HOST:PORT (or grpc+tls://)")
    p.add_argument("--user", help="omit --user and --password to connect without credentials")
    p.add_argument("--password")
    p.add_argument("--table", required=True, help="[catalog.]schema.table, e.g. police.residents")
    p.add_argument("--catalog", default="bund",
                   help="catalog of --table when it has two parts (default bund; '' = any catalog)")
    p.add_argument("--query", required=True, help="SQL to run and fetch")
    p.add_argument("--prepared", required=True, help="SQL with exactly one ? placeholder")
    p.add_argument("--param", required=True, help="value bound to the placeholder")
    p.add_argument("--param-type", choices=("str", "int", "float"), default="str",
                   help="Arrow type of the bound value: utf8 (default), int64 or float64")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for each call (default 60)")
    return p.parse_args(argv)


def jsonable(v: Any) -> Any:
    """Python values from pyarrow's as_py() -> JSON-serialisable values."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)  # NaN/inf are not JSON
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        # timestamps with a time zone: the instant in UTC (as JdbcBi.java renders them)
        return v.astimezone(dt.timezone.utc).isoformat()
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        # map<k, v> arrives as a list of (key, value) tuples
        return [jsonable(x) for x in v]
    if hasattr(v, "isoformat"):  # pandas.Timestamp and friends
        return v.isoformat()
    return str(v)


def table_rows(tbl) -> list[list[Any]]:
    """Rows of a pyarrow.Table as lists in column order (duplicate column names kept)."""
    cols = [col.to_pylist() for col in tbl.columns]
    return [[jsonable(v) for v in row] for row in zip(*cols)] if cols else []


def split_table(name: str, default_catalog: str) -> tuple[str, str, str]:
    parts = name.split(".")
    if len(parts) == 2:
        return default_catalog, parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"--table must be schema.table or catalog.schema.table, got {name!r}")


def bind_value(raw: str, kind: str) -> Any:
    return {"str": str, "int": int, "float": float}[kind](raw)


def run(args: argparse.Namespace) -> dict:
    import adbc_driver_flightsql.dbapi as fsql
    from adbc_driver_flightsql import DatabaseOptions

    catalog, schema, table = split_table(args.table, args.catalog)
    param = bind_value(args.param, args.param_type)
    if (args.user is None) != (args.password is None):
        raise ValueError("give both --user and --password, or neither (no credentials)")
    db_kwargs = {
        DatabaseOptions.TIMEOUT_QUERY.value: str(args.timeout),
        DatabaseOptions.TIMEOUT_FETCH.value: str(args.timeout),
        DatabaseOptions.TIMEOUT_UPDATE.value: str(args.timeout),
    }
    if args.user is not None:
        db_kwargs["username"] = args.user
        db_kwargs["password"] = args.password
    out: dict[str, Any] = {}
    step = "connect"
    try:
        with fsql.connect(args.uri, db_kwargs=db_kwargs, autocommit=True) as conn:
            step = "adbc_get_objects(depth=all)"
            objs = conn.adbc_get_objects(depth="all").read_all().to_pylist()
            catalogs: set[str] = set()
            schemas: dict[str, set[str]] = {}
            tables: dict[str, set[str]] = {}
            for cat in objs:
                cname = cat["catalog_name"] or ""  # null names are keyed "" (as JdbcBi does)
                if cat["catalog_name"] is not None:
                    catalogs.add(cname)
                schemas.setdefault(cname, set())
                for sch in cat.get("catalog_db_schemas") or []:
                    sname = sch["db_schema_name"] or ""
                    schemas[cname].add(sname)
                    tables.setdefault(sname, set())
                    for t in sch.get("db_schema_tables") or []:
                        tables[sname].add(t["table_name"])
            out["catalogs"] = sorted(catalogs)
            out["schemas"] = {k: sorted(v) for k, v in sorted(schemas.items())}
            out["tables"] = {k: sorted(v) for k, v in sorted(tables.items())}

            step = f"adbc_get_table_schema({table!r}, db_schema_filter={schema!r}, catalog_filter={catalog!r})"
            ts = conn.adbc_get_table_schema(table, db_schema_filter=schema, catalog_filter=catalog or None)
            out["table_schema"] = [[f.name, str(f.type), bool(f.nullable)] for f in ts]

            step = "execute query"
            with conn.cursor() as cur:
                cur.execute(args.query)
                step = "fetch query results"
                out["query_rows"] = table_rows(cur.fetch_arrow_table())

            with conn.cursor() as cur:
                step = "adbc_prepare (CreatePreparedStatement)"
                cur.adbc_prepare(args.prepared)
                # adbc_prepare swallows NotSupportedError from Prepare; make sure the statement
                # really is prepared, or executing with a bound batch would silently become
                # something else (the driver treats an unprepared statement + bind as ingest).
                if not _is_prepared(cur):
                    raise RuntimeError("the server did not prepare the statement "
                                       "(CreatePreparedStatement unsupported?)")
                step = f"execute prepared with parameter {param!r}"
                # same SQL as adbc_prepare: the dbapi binds to the prepared handle without
                # preparing again (DoPut of the parameter batch, then GetFlightInfo)
                cur.execute(args.prepared, parameters=(param,))
                step = "fetch prepared results"
                out["prepared_rows"] = table_rows(cur.fetch_arrow_table())
            step = "close"
    except Exception as exc:  # noqa: BLE001 - any failure is reported the same way
        raise StepError(step, exc) from exc
    return out


def _is_prepared(cur) -> bool:
    """True when the driver holds a prepared statement: its parameter schema is readable."""
    import adbc_driver_manager

    try:
        cur.adbc_statement.get_parameter_schema()
        return True
    except adbc_driver_manager.NotSupportedError:
        # the server returned no parameter schema: prepared, but the driver cannot describe it
        return True
    except adbc_driver_manager.Error:
        # the Flight SQL driver answers INVALID_STATE ("must call Prepare") when not prepared
        return False


class StepError(Exception):
    def __init__(self, step: str, exc: BaseException):
        super().__init__(step)
        self.step, self.exc = step, exc

    def __str__(self) -> str:
        msg = str(self.exc).strip() or type(self.exc).__name__
        extra = []
        for attr in ("status_code", "sqlstate", "vendor_code"):
            val = getattr(self.exc, attr, None)
            if val not in (None, 0, "", b""):
                extra.append(f"{attr}={getattr(val, 'name', val)}")
        tail = f" [{', '.join(extra)}]" if extra else ""
        return f"{self.step} failed: {type(self.exc).__name__}: {msg}{tail}"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = run(args)
    except StepError as exc:
        print(f"adbc_bi: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. the driver failed to import
        print(f"adbc_bi: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(out, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
