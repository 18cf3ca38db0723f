// The BI-tool flow through the Arrow Flight SQL JDBC driver (org.apache.arrow:flight-sql-jdbc-driver),
// printed as one JSON object on stdout. Single-file source program (Java 17+, no build tool):
//
//   java --add-opens=java.base/java.nio=ALL-UNNAMED -cp flight-sql-jdbc-driver-VERSION.jar \
//       tests/clients/JdbcBi.java \
//       --url 'jdbc:arrow-flight-sql://127.0.0.1:PORT/?useEncryption=false&user=U&password=P' \
//       --table police.residents --query 'SELECT ...' --prepared 'SELECT ... WHERE x = ?' --param VALUE
//
// Steps, as a DBeaver-style tool takes them: DriverManager.getConnection; DatabaseMetaData
// getCatalogs, getSchemas, getTables(null, null, "%", null), getColumns(catalog, schema, table, "%");
// Statement.executeQuery(--query); prepareStatement(--prepared) + setString(1, --param) + executeQuery
// (--param-type int|float binds with setLong/setDouble instead).
//
// Output: {"catalogs":[...], "schemas":{catalog:[...]}, "tables":{schema:[...]},
//          "table_schema":[[name, JDBC type name, nullable], ...], "query_rows":[[...]], "prepared_rows":[[...]]}
// Name lists sorted; rows in the server's order. Dates/times/timestamps are ISO strings (the JVM
// time zone is set to UTC), decimals plain strings, binary hex strings. Output is ASCII-only JSON
// (non-ASCII escaped as \\uXXXX). Exit 0 on success; any failure: a message on stderr, exit 1.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZonedDateTime;
import java.time.temporal.TemporalAccessor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TimeZone;
import java.util.TreeMap;
import java.util.TreeSet;

public class JdbcBi {
    static final String USAGE = String.join("\n",
        "usage: java --add-opens=java.base/java.nio=ALL-UNNAMED -cp flight-sql-jdbc-driver.jar JdbcBi.java",
        "           --url URL --table [CATALOG.]SCHEMA.TABLE --query SQL --prepared SQL --param VALUE",
        "           [--param-type str|int|float] [--catalog CATALOG] [--user U --password P] [--verbose]",
        "",
        "  --url       jdbc:arrow-flight-sql://HOST:PORT/?useEncryption=false&user=U&password=P",
        "  --table     table whose columns are read with getColumns (e.g. police.residents)",
        "  --catalog   catalog for getColumns when --table has two parts (default bund; '' = any)",
        "  --query     SQL run with Statement.executeQuery",
        "  --prepared  SQL with one ? placeholder, run as a PreparedStatement",
        "  --param     value bound with setString(1, VALUE)",
        "  --param-type str|int|float  bind with setString (default), setLong or setDouble; the driver",
        "              refuses a setter that does not fit the server's declared parameter type",
        "  --user/--password  credentials passed as connection properties instead of in the URL",
        "  --verbose   keep the driver's java.util.logging output on stderr",
        "",
        "Prints one JSON object on stdout; exit 0 on success, 1 on any failure.");

    public static void main(String[] argv) {
        Map<String, String> a;
        try {
            a = parseArgs(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("JdbcBi: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(1);
            return;
        }
        if (a == null) { // --help
            System.out.println(USAGE);
            System.exit(0);
            return;
        }
        TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
        if (!a.containsKey("verbose")) {
            // the driver logs every failed call (with stack traces) through java.util.logging;
            // our one-line error on stderr says the same. --verbose keeps the driver's logs.
            java.util.logging.LogManager.getLogManager().reset();
        }
        String step = "load driver";
        try {
            Class.forName("org.apache.arrow.driver.jdbc.ArrowFlightJdbcDriver");
            String[] t = a.get("table").split("\\.");
            String catalog, schema, table;
            if (t.length == 2) {
                catalog = a.getOrDefault("catalog", "bund");
                schema = t[0];
                table = t[1];
            } else if (t.length == 3) {
                catalog = t[0];
                schema = t[1];
                table = t[2];
            } else {
                throw new IllegalArgumentException("--table must be schema.table or catalog.schema.table");
            }
            if (catalog.isEmpty()) catalog = null;

            java.util.Properties props = new java.util.Properties();
            if (a.containsKey("user")) props.setProperty("user", a.get("user"));
            if (a.containsKey("password")) props.setProperty("password", a.get("password"));

            StringBuilder out = new StringBuilder("{");
            step = "connect";
            try (Connection conn = DriverManager.getConnection(a.get("url"), props)) {
                DatabaseMetaData md = conn.getMetaData();

                step = "getCatalogs";
                TreeSet<String> catalogs = new TreeSet<>();
                try (ResultSet rs = md.getCatalogs()) {
                    while (rs.next()) {
                        String c = rs.getString("TABLE_CAT");
                        if (c != null) catalogs.add(c);
                    }
                }

                step = "getSchemas";
                TreeMap<String, TreeSet<String>> schemas = new TreeMap<>();
                for (String c : catalogs) schemas.put(c, new TreeSet<>());
                try (ResultSet rs = md.getSchemas()) {
                    while (rs.next()) {
                        String c = rs.getString("TABLE_CATALOG");
                        String s = rs.getString("TABLE_SCHEM");
                        schemas.computeIfAbsent(c == null ? "" : c, k -> new TreeSet<>()).add(s);
                    }
                }

                step = "getTables(null, null, \"%\", null)";
                TreeMap<String, TreeSet<String>> tables = new TreeMap<>();
                for (TreeSet<String> ss : schemas.values())
                    for (String s : ss) tables.put(s, new TreeSet<>());
                try (ResultSet rs = md.getTables(null, null, "%", null)) {
                    while (rs.next()) {
                        String s = rs.getString("TABLE_SCHEM");
                        tables.computeIfAbsent(s == null ? "" : s, k -> new TreeSet<>())
                            .add(rs.getString("TABLE_NAME"));
                    }
                }

                step = "getColumns(" + catalog + ", " + schema + ", " + table + ", \"%\")";
                List<Object> cols = new ArrayList<>();
                try (ResultSet rs = md.getColumns(catalog, schema, table, "%")) {
                    while (rs.next()) {
                        List<Object> col = new ArrayList<>();
                        col.add(rs.getString("COLUMN_NAME"));
                        col.add(rs.getString("TYPE_NAME"));
                        String isNullable = rs.getString("IS_NULLABLE");
                        boolean nullable;
                        if (isNullable != null && !isNullable.isEmpty()) {
                            nullable = isNullable.equalsIgnoreCase("YES");
                        } else {
                            nullable = rs.getInt("NULLABLE") != DatabaseMetaData.columnNoNulls;
                        }
                        col.add(nullable);
                        cols.add(col);
                    }
                }

                if (cols.isEmpty()) {
                    // the same outcome as ADBC's GetTableSchema (NOT_FOUND): the table is not visible
                    throw new SQLException("no such table: " + (catalog == null ? "" : catalog + ".")
                        + schema + "." + table + " (getColumns returned no columns)");
                }
                out.append("\"catalogs\":");
                writeJson(out, new ArrayList<>(catalogs));
                out.append(",\"schemas\":");
                writeJson(out, schemas);
                out.append(",\"tables\":");
                writeJson(out, tables);
                out.append(",\"table_schema\":");
                writeJson(out, cols);

                step = "Statement.executeQuery";
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(a.get("query"))) {
                    step = "read query results";
                    out.append(",\"query_rows\":");
                    writeJson(out, rows(rs));
                }

                step = "prepareStatement";
                try (PreparedStatement ps = conn.prepareStatement(a.get("prepared"))) {
                    String pv = a.get("param");
                    switch (a.getOrDefault("param-type", "str")) {
                        case "int":
                            step = "setLong(1, " + pv + ")";
                            ps.setLong(1, Long.parseLong(pv));
                            break;
                        case "float":
                            step = "setDouble(1, " + pv + ")";
                            ps.setDouble(1, Double.parseDouble(pv));
                            break;
                        default:
                            step = "setString(1, " + pv + ")";
                            ps.setString(1, pv);
                    }
                    step = "PreparedStatement.executeQuery";
                    try (ResultSet rs = ps.executeQuery()) {
                        step = "read prepared results";
                        out.append(",\"prepared_rows\":");
                        writeJson(out, rows(rs));
                    }
                }
                step = "close";
            }
            out.append("}");
            System.out.println(out);
            System.out.flush();
            System.exit(0); // the driver's gRPC threads would keep the JVM alive
        } catch (Throwable e) {
            StringBuilder msg = new StringBuilder("JdbcBi: " + step + " failed: " + e);
            for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
                msg.append("\n  caused by: ").append(c);
            }
            System.err.println(msg);
            if (a.containsKey("verbose")) e.printStackTrace();
            System.exit(1);
        }
    }

    static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String k = argv[i];
            if (k.equals("--help") || k.equals("-h")) return null;
            if (k.equals("--verbose")) {
                a.put("verbose", "true");
                continue;
            }
            if (!k.startsWith("--")) throw new IllegalArgumentException("unexpected argument: " + k);
            String name = k.substring(2);
            String v;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                v = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else {
                if (i + 1 >= argv.length) throw new IllegalArgumentException(k + " needs a value");
                v = argv[++i];
            }
            switch (name) {
                case "url": case "table": case "query": case "prepared": case "param":
                case "catalog": case "user": case "password": case "param-type":
                    a.put(name, v);
                    break;
                default:
                    throw new IllegalArgumentException("unknown option: --" + name);
            }
        }
        String pt = a.getOrDefault("param-type", "str");
        if (!pt.equals("str") && !pt.equals("int") && !pt.equals("float"))
            throw new IllegalArgumentException("--param-type must be str, int or float");
        for (String req : new String[] {"url", "table", "query", "prepared", "param"}) {
            if (!a.containsKey(req)) throw new IllegalArgumentException("missing --" + req);
        }
        return a;
    }

    static List<Object> rows(ResultSet rs) throws SQLException {
        ResultSetMetaData m = rs.getMetaData();
        int n = m.getColumnCount();
        int[] types = new int[n + 1];
        for (int i = 1; i <= n; i++) types[i] = m.getColumnType(i);
        java.util.Calendar utc = java.util.Calendar.getInstance(TimeZone.getTimeZone("UTC"));
        List<Object> rows = new ArrayList<>();
        while (rs.next()) {
            List<Object> row = new ArrayList<>(n);
            for (int i = 1; i <= n; i++) {
                Object v;
                if (types[i] == java.sql.Types.TIMESTAMP_WITH_TIMEZONE) {
                    // Avatica's getObject throws "not implemented" for TIMESTAMP_WITH_TIMEZONE;
                    // read the instant and render it in UTC (adbc_bi.py does the same)
                    java.sql.Timestamp ts = rs.getTimestamp(i, utc);
                    v = ts == null ? null : ts.toInstant().atOffset(java.time.ZoneOffset.UTC);
                } else {
                    v = rs.getObject(i);
                }
                // values such as java.sql.Array read the current batch lazily: copy them now,
                // before next() loads the next batch into the same vectors
                row.add(materialize(v));
            }
            rows.add(row);
        }
        return rows;
    }

    static Object materialize(Object v) throws SQLException {
        if (v instanceof java.sql.Array) {
            v = ((java.sql.Array) v).getArray();
        }
        if (v != null && v.getClass().isArray() && !(v instanceof byte[])) {
            List<Object> l = new ArrayList<>();
            for (int i = 0; i < java.lang.reflect.Array.getLength(v); i++) l.add(materialize(java.lang.reflect.Array.get(v, i)));
            return l;
        }
        if (v instanceof List) {
            List<Object> l = new ArrayList<>();
            for (Object x : (List<?>) v) l.add(materialize(x));
            return l;
        }
        if (v instanceof Map) {
            Map<String, Object> mm = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) mm.put(String.valueOf(e.getKey()), materialize(e.getValue()));
            return mm;
        }
        if (v instanceof java.sql.Time) {
            // java.sql.Time.toLocalTime() drops the milliseconds; keep them
            long ms = Math.floorMod(((java.sql.Time) v).getTime(), 86_400_000L);
            return LocalTime.ofNanoOfDay(ms * 1_000_000L);
        }
        return v;
    }

    // ------------------------------------------------------------------ JSON by hand
    static void writeJson(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            writeString(sb, (String) v);
        } else if (v instanceof Boolean) {
            sb.append(v.toString());
        } else if (v instanceof BigDecimal) {
            writeString(sb, ((BigDecimal) v).toPlainString());
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) writeString(sb, Double.isNaN(d) ? "nan" : d > 0 ? "inf" : "-inf");
            else sb.append(v.toString());
        } else if (v instanceof Number) { // Byte, Short, Integer, Long, BigInteger
            sb.append(v.toString());
        } else if (v instanceof java.sql.Timestamp) {
            writeString(sb, isoDateTime(((java.sql.Timestamp) v).toLocalDateTime()));
        } else if (v instanceof java.sql.Date) {
            writeString(sb, ((java.sql.Date) v).toLocalDate().toString());
        } else if (v instanceof java.sql.Time) {
            writeString(sb, isoTime(((java.sql.Time) v).toLocalTime()));
        } else if (v instanceof LocalDateTime) {
            writeString(sb, isoDateTime((LocalDateTime) v));
        } else if (v instanceof LocalTime) {
            writeString(sb, isoTime((LocalTime) v));
        } else if (v instanceof OffsetDateTime) {
            OffsetDateTime o = (OffsetDateTime) v;
            writeString(sb, isoDateTime(o.toLocalDateTime()) + isoOffset(o.getOffset().getTotalSeconds()));
        } else if (v instanceof ZonedDateTime) {
            ZonedDateTime z = (ZonedDateTime) v;
            writeString(sb, isoDateTime(z.toLocalDateTime()) + isoOffset(z.getOffset().getTotalSeconds()));
        } else if (v instanceof TemporalAccessor) { // LocalDate, Instant, ...
            writeString(sb, v.toString());
        } else if (v instanceof byte[]) {
            StringBuilder hex = new StringBuilder();
            for (byte b : (byte[]) v) hex.append(String.format("%02x", b & 0xff));
            writeString(sb, hex.toString());
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                writeString(sb, String.valueOf(e.getKey()));
                sb.append(':');
                writeJson(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof Iterable) {
            sb.append('[');
            Iterator<?> it = ((Iterable<?>) v).iterator();
            while (it.hasNext()) {
                writeJson(sb, it.next());
                if (it.hasNext()) sb.append(',');
            }
            sb.append(']');
        } else if (v instanceof java.sql.Array) {
            try {
                Object arr = ((java.sql.Array) v).getArray();
                List<Object> l = new ArrayList<>();
                for (int i = 0; i < java.lang.reflect.Array.getLength(arr); i++) l.add(java.lang.reflect.Array.get(arr, i));
                writeJson(sb, l);
            } catch (SQLException e) {
                throw new RuntimeException(e);
            }
        } else if (v.getClass().isArray()) {
            List<Object> l = new ArrayList<>();
            for (int i = 0; i < java.lang.reflect.Array.getLength(v); i++) l.add(java.lang.reflect.Array.get(v, i));
            writeJson(sb, l);
        } else {
            writeString(sb, v.toString()); // e.g. org.apache.arrow Text, Period, Duration
        }
    }

    // Same shapes as Python's isoformat(): seconds always, fraction only when non-zero
    // (6 digits when it is whole microseconds, else 9).
    static String isoTime(LocalTime t) {
        String s = String.format("%02d:%02d:%02d", t.getHour(), t.getMinute(), t.getSecond());
        int nanos = t.getNano();
        if (nanos == 0) return s;
        if (nanos % 1000 == 0) return s + String.format(".%06d", nanos / 1000);
        return s + String.format(".%09d", nanos);
    }

    static String isoDateTime(LocalDateTime t) {
        return t.toLocalDate().toString() + "T" + isoTime(t.toLocalTime());
    }

    static String isoOffset(int totalSeconds) {
        int abs = Math.abs(totalSeconds);
        return String.format("%s%02d:%02d", totalSeconds < 0 ? "-" : "+", abs / 3600, (abs / 60) % 60);
    }

    static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
            }
        }
        sb.append('"');
    }
}
