//! PostgreSQL and SQLite bureaus against real databases made here: their types, the SQL
//! Bund sends in their dialect (golden), evidence from the database that filters ran there
//! and masks never reached it, errors and statement timeouts, collations. What every kind
//! must do alike is in `conformance.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tonic::Code;

use crate::dbservers::{PASSWORD, Postgres};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::harness::{
    Raw, Server, append_config, bund_bin, bureau_entries, column_strings, example_config,
    example_data,
};

const URL_ENV: &str = "BUND_TEST_HRSS_PG_URL";

/// Rows of the people table: (id_card, district_code, amount).
const PEOPLE: &[(&str, &str, &str)] = &[
    ("310115199001011234", "310115", "100.50"),
    ("310115198502023456", "310115", "2500.00"),
    ("310101197003035678", "310101", "42.42"),
    ("310104200004047890", "310104", "0.01"),
];

/// A PostgreSQL server with the bureau's tables: `people` (for filters, masks and row
/// filters) and `types` (one row of every mapped type, one of NULLs).
fn postgres(name: &str) -> Postgres {
    let pg = Postgres::start(name);
    let mut sql = String::from(
        "CREATE SCHEMA hrss; CREATE TABLE hrss.people (id_card text NOT NULL, district_code varchar(6) NOT NULL, amount numeric(12,2));",
    );
    for (id, d, a) in PEOPLE {
        sql.push_str(&format!(
            "INSERT INTO hrss.people VALUES ('{id}', '{d}', {a});"
        ));
    }
    sql.push_str(
        "CREATE TABLE hrss.districts (district_code varchar(6) PRIMARY KEY, name text NOT NULL);
         INSERT INTO hrss.districts VALUES ('310115', '浦东新区'), ('310101', '黄浦区');",
    );
    sql.push_str(
        "CREATE TABLE hrss.types (
            i2 int2, i4 int4, i8 int8, small numeric(12,2), big numeric(50,10),
            f4 float4, f8 float8, b bool, t text, v varchar(20), d date, tm time,
            ts timestamp, tstz timestamptz, j json, jb jsonb, ia int4[], ta text[],
            by bytea, u uuid, iv interval, k int4);
         INSERT INTO hrss.types VALUES (
            -32768, 2147483647, -9223372036854775808, -1234567890.12,
            12345678901234567890123456789012345678.0123456789,
            1.5, -2.25, true, '上海 ''quoted'' \\ back', 'varchar', '2024-02-29', '13:14:15.123456',
            '2024-02-29 13:14:15.5', '2024-02-29 13:14:15+08', '{\"a\": [1, 2]}', '{\"b\": null}',
            '{1,NULL,3}', '{x,\"y z\"}', '\\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
            '1 day 02:00:00', 1);
         INSERT INTO hrss.types (k) VALUES (2);",
    );
    pg.sql_in("bund", &sql);
    pg
}

/// The example's configuration plus a PostgreSQL bureau `pgsrc` with `people` (declared
/// columns), `types` (columns read from the database) and `big_amounts` (a query), granted
/// to admin and, with the residents' policy style, to the police officer.
fn config(name: &str) -> PathBuf {
    let dir = example_config(&format!("config-{name}"), None);
    let url = format!("kind = \"postgres\"\nurl_env = \"{URL_ENV}\"");
    let catalog = bureau_entries(
        "pgsrc",
        &[(
            "hrss_pg",
            &format!("{url}\nconnect_timeout_s = 2\nunsupported_types = \"text\""),
        )],
        &[
            (
                "people",
                r#"kind = "database", database = "hrss_pg", table = "hrss.people""#,
                PEOPLE_COLUMNS,
            ),
            (
                "types",
                r#"kind = "database", database = "hrss_pg", table = "hrss.types""#,
                "",
            ),
            (
                "big_amounts",
                r#"kind = "database", database = "hrss_pg", query = "SELECT district_code, amount FROM hrss.people WHERE amount > 50""#,
                "",
            ),
            (
                "districts",
                r#"kind = "database", database = "hrss_pg", table = "hrss.districts""#,
                "",
            ),
        ],
    );
    append_config(&dir, &catalog, &people_policy("pgsrc", "pg_people"));
    dir
}

/// The declared columns of a database bureau's `people`.
pub(crate) const PEOPLE_COLUMNS: &str = r#"columns = [
  { name = "id_card", type = "varchar", nullable = false },
  { name = "district_code", type = "varchar", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
]"#;

/// Grants and the policy of a database bureau's `people` table: admin reads all of
/// `schema`; a police officer reads `people` of their districts with ID numbers masked;
/// others may not read `id_card`.
pub(crate) fn people_policy(schema: &str, id: &str) -> String {
    format!(
        r#"
[[grant]]
roles = ["admin"]
schemas = ["{schema}"]

[[grant]]
roles = ["police_officer"]
datasets = ["{schema}.people"]

[[policy]]
id = "{id}"
dataset = "{schema}.people"
sensitive = ["id_card"]

  [[policy.rule]]
  roles = ["admin"]

  [[policy.rule]]
  roles = ["police_officer"]
  row_filter = "district_code IN ${{principal.districts}}"
  masks = {{ id_card = "mask_id_card" }}

  [[policy.rule]]
  default = true
  deny = ["id_card"]
"#
    )
}

fn start(config: &Path, pg: &Postgres) -> Server {
    Server::start_with_env(config, &[(URL_ENV, &pg.url())])
}

/// Rows as Arrow's display formats them (lists as `[1, , 3]`), NULL as `NULL`.
pub(crate) async fn rows(c: &mut Raw, sql: &str) -> Vec<Vec<String>> {
    let batches = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in &batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    out
}

/// `bund check` on `dir` with the database's URL set: exits 1; returns what it printed.
fn check_fails(dir: &Path, pg: &Postgres) -> String {
    check_fails_with(dir, &[(URL_ENV, &pg.url())])
}

/// `bund check` on `dir` with these environment variables: exits 1; returns what it printed.
pub(crate) fn check_fails_with(dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(bund_bin())
        .args(["check", "--config"])
        .arg(dir)
        .arg("--data-dir")
        .arg(example_data())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    text
}

/// The SQL of the PostgreSQL scan in the plan of `sql`.
async fn remote_sql(c: &mut Raw, sql: &str) -> Vec<String> {
    scans_sql(c, sql, "PostgresScanExec: source=hrss_pg sql=").await
}

/// The SQL of each scan in the plan of `sql` whose line starts with `marker`.
pub(crate) async fn scans_sql(c: &mut Raw, sql: &str, marker: &str) -> Vec<String> {
    let b = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    column_strings(&b, 1)
        .join("\n")
        .lines()
        .filter_map(|l| l.split_once(marker))
        .map(|(_, s)| s.trim().to_string())
        .collect()
}

#[tokio::test]
async fn postgres_tables_are_served_with_their_types_and_filters_run_in_the_database() {
    let pg = postgres("types");
    let server = start(&config("pg-types"), &pg);
    let mut admin = server.login("admin").await;

    // Every mapped type, read back as text by Bund.
    let got = rows(&mut admin, "SELECT i2, i4, i8, small, big, f4, f8, b, t, v, d, tm, ts, tstz, j, jb, ia, ta, encode(by, 'hex'), u, iv FROM pgsrc.types ORDER BY k").await;
    assert_eq!(
        got[0],
        vec![
            "-32768",
            "2147483647",
            "-9223372036854775808",
            "-1234567890.12",
            "12345678901234567890123456789012345678.0123456789",
            "1.5",
            "-2.25",
            "true",
            "上海 'quoted' \\ back",
            "varchar",
            "2024-02-29",
            "13:14:15.123456",
            "2024-02-29T13:14:15.500",
            "2024-02-29T05:14:15Z",
            "{\"a\": [1, 2]}",
            "{\"b\": null}",
            "[1, NULL, 3]",
            "[x, y z]",
            "deadbeef",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "1 day 02:00:00",
        ]
    );
    assert!(got[1].iter().all(|v| v == "NULL"), "{:?}", got[1]);

    // A query as the source.
    assert_eq!(
        rows(
            &mut admin,
            "SELECT district_code, amount FROM pgsrc.big_amounts ORDER BY amount"
        )
        .await,
        vec![vec!["310115", "100.50"], vec!["310115", "2500.00"]]
    );

    // Golden SQL: what each query sends.
    for (query, want) in [
        (
            "SELECT * FROM pgsrc.people",
            r#"SELECT "id_card"::text AS "id_card", "district_code"::text AS "district_code", "amount"::numeric(12,2) AS "amount" FROM "hrss"."people""#,
        ),
        (
            "SELECT amount FROM pgsrc.people WHERE district_code = '310115' AND amount >= 100",
            r#"SELECT "district_code"::text AS "district_code", "amount"::numeric(12,2) AS "amount" FROM "hrss"."people" WHERE (("district_code" = '310115')) AND (("amount" >= 100.00))"#,
        ),
        // Not sent: a range on text (collations differ), a function call, arithmetic.
        (
            "SELECT district_code FROM pgsrc.people WHERE district_code < '310110' OR upper(id_card) = 'X' OR amount * 2 > 5",
            r#"SELECT "id_card"::text AS "id_card", "district_code"::text AS "district_code", "amount"::numeric(12,2) AS "amount" FROM "hrss"."people""#,
        ),
        // Sent (as DataFusion simplified them): IN, BETWEEN on a number, NOT … IS NULL.
        (
            "SELECT district_code FROM pgsrc.people WHERE district_code IN ('310115', '310101') AND amount BETWEEN 1 AND 200 AND NOT (amount IS NULL)",
            r#"SELECT "district_code"::text AS "district_code", "amount"::numeric(12,2) AS "amount" FROM "hrss"."people" WHERE ((("district_code" = '310115') OR ("district_code" = '310101'))) AND (("amount" >= 1.00)) AND (("amount" <= 200.00)) AND (("amount" IS NOT NULL))"#,
        ),
        (
            "SELECT district_code FROM pgsrc.people LIMIT 2",
            r#"SELECT "district_code"::text AS "district_code" FROM "hrss"."people" LIMIT 2"#,
        ),
    ] {
        assert_eq!(
            remote_sql(&mut admin, query).await,
            vec![want.to_string()],
            "{query}"
        );
    }

    // Aggregates run in PostgreSQL as one GROUP BY, the answer read back exactly.
    let query = "SELECT district_code, count(*), sum(amount), min(amount) FROM pgsrc.people WHERE amount > 1 GROUP BY district_code ORDER BY district_code";
    assert_eq!(
        remote_sql(&mut admin, query).await,
        vec![r#"SELECT ("district_code")::text AS "c0", (COUNT(*))::int8 AS "c1", (SUM("amount"))::numeric(22,2) AS "c2", (MIN("amount"))::numeric(12,2) AS "c3" FROM "hrss"."people" WHERE (("amount" > 1.00)) GROUP BY "district_code""#.to_string()]
    );
    assert_eq!(
        rows(&mut admin, query).await,
        vec![
            vec!["310101", "1", "42.42", "42.42"],
            vec!["310115", "2", "2600.50", "100.50"]
        ]
    );
    // A join of two tables of the database runs there as one SELECT.
    let join = "SELECT p.amount, d.name FROM pgsrc.people p JOIN pgsrc.districts d ON p.district_code = d.district_code WHERE p.amount > 50 ORDER BY p.amount";
    assert_eq!(
        remote_sql(&mut admin, join).await,
        vec![r#"SELECT t0."amount"::numeric(12,2) AS "c1", t1."name"::text AS "c3" FROM "hrss"."people" AS t0 JOIN "hrss"."districts" AS t1 ON t0."district_code" = t1."district_code" WHERE ((t0."amount" > 50.00))"#.to_string()]
    );
    assert_eq!(
        rows(&mut admin, join).await,
        vec![vec!["100.50", "浦东新区"], vec!["2500.00", "浦东新区"]]
    );

    // A top-n: the database sends its first rows in the order asked, NULLs placed as Bund
    // places them.
    let top = "SELECT district_code, amount FROM pgsrc.people ORDER BY amount DESC LIMIT 2";
    assert_eq!(
        remote_sql(&mut admin, top).await,
        vec![r#"SELECT "district_code"::text AS "c0", "amount"::numeric(12,2) AS "c1" FROM "hrss"."people" ORDER BY "amount" DESC NULLS FIRST LIMIT 2"#.to_string()]
    );
    assert_eq!(
        rows(&mut admin, top).await,
        vec![vec!["310115", "2500.00"], vec!["310115", "100.50"]]
    );

    // Not sent: an average (rounding), a sum of a computed value.
    assert_eq!(
        remote_sql(
            &mut admin,
            "SELECT avg(amount), sum(amount * 2) FROM pgsrc.people"
        )
        .await,
        vec![r#"SELECT "amount"::numeric(12,2) AS "amount" FROM "hrss"."people""#.to_string()]
    );

    // A value that would end its string early if it were spliced into the SQL as written
    // (backslash-quote, then SQL of its own): sent with its quotes doubled, it matches
    // nothing and runs nothing.
    for evil in [
        r"\') OR (1=1) OR ('",
        r"x\'' OR 1=1 --",
        "310115' OR '1'='1",
    ] {
        let q = format!(
            "SELECT count(*) FROM pgsrc.people WHERE district_code = '{}'",
            evil.replace('\'', "''")
        );
        assert_eq!(rows(&mut admin, &q).await, vec![vec!["0"]], "{q}");
        let sent = remote_sql(&mut admin, &q).await;
        assert!(
            sent[0].ends_with(&format!(
                "WHERE ((\"district_code\" = '{}'))",
                evil.replace('\'', "''")
            )),
            "{sent:?}"
        );
    }

    // The database itself says the filter ran there: one matching row sent, not four.
    pg.sql_in("bund", "SELECT pg_stat_statements_reset()");
    assert_eq!(
        rows(
            &mut admin,
            "SELECT amount FROM pgsrc.people WHERE district_code = '310101'"
        )
        .await,
        vec![vec!["42.42"]]
    );
    let stats = pg.sql_in(
        "bund",
        "SELECT rows, query FROM pg_stat_statements WHERE query LIKE 'COPY%people%'",
    );
    assert!(stats.starts_with("1|"), "{stats}");
}

/// The SQL PostgreSQL receives under a police officer's policy: the row filter as plain
/// SQL, aggregates over unmasked columns with it, nothing of the masks (its own statistics
/// as evidence).
#[tokio::test]
async fn masks_and_row_filters_on_a_postgres_table_stay_in_bund_or_run_as_plain_sql() {
    let pg = postgres("masks");
    let server = start(&config("pg-masks"), &pg);
    let mut police = server.login("pudong_police").await;
    let query =
        "SELECT id_card, amount FROM pgsrc.people WHERE id_card LIKE '310115%' ORDER BY amount";
    // The row filter is plain SQL and runs in the database; the mask runs in Bund.
    assert_eq!(
        remote_sql(&mut police, query).await,
        vec![
            r#"SELECT "id_card"::text AS "id_card", "district_code"::text AS "district_code", "amount"::numeric(12,2) AS "amount" FROM "hrss"."people" WHERE (("district_code" = '310115'))"#
                .to_string()
        ]
    );
    // Counting rows the row filter keeps runs in PostgreSQL, the row filter with it; an
    // aggregate that reads the masked column does not (it groups masked values, in Bund).
    assert_eq!(
        remote_sql(&mut police, "SELECT count(*), max(amount) FROM pgsrc.people").await,
        vec![r#"SELECT (COUNT(*))::int8 AS "c0", (MAX("amount"))::numeric(12,2) AS "c1" FROM "hrss"."people" WHERE (("district_code" = '310115'))"#.to_string()]
    );
    assert_eq!(
        rows(
            &mut police,
            "SELECT count(*), max(amount) FROM pgsrc.people"
        )
        .await,
        vec![vec!["2", "2500.00"]]
    );
    let masked = "SELECT id_card, count(*) FROM pgsrc.people GROUP BY id_card ORDER BY id_card";
    assert_eq!(
        remote_sql(&mut police, masked).await,
        vec![r#"SELECT "id_card"::text AS "id_card", "district_code"::text AS "district_code" FROM "hrss"."people" WHERE (("district_code" = '310115'))"#.to_string()]
    );
    assert_eq!(
        rows(&mut police, masked).await,
        vec![
            vec!["310115********1234", "1"],
            vec!["310115********3456", "1"]
        ]
    );

    // A top-n over unmasked columns runs in PostgreSQL with the row filter. (What must
    // stay in Bund for every kind, masked joins, orderings and predicates, is in the
    // conformance suite.)
    assert_eq!(
        remote_sql(&mut police, "SELECT amount FROM pgsrc.people ORDER BY amount LIMIT 1").await,
        vec![r#"SELECT "amount"::numeric(12,2) AS "c0" FROM "hrss"."people" WHERE (("district_code" = '310115')) ORDER BY "amount" ASC NULLS LAST LIMIT 1"#.to_string()]
    );

    // Nothing Bund sent named a masking or other Bund function.
    let sent = pg.sql_in(
        "bund",
        "SELECT string_agg(query, ' ') FROM pg_stat_statements",
    );
    assert!(sent.contains("COPY"), "{sent}");
    assert!(!sent.contains("mask_"), "{sent}");
    assert!(!pg.log().contains("mask_"));
}

/// The database's own message can name a bureau's internal schema, columns or hosts: the
/// client reads the class, the source's name and the request id; the log has the rest.
#[tokio::test]
async fn a_database_error_reaches_the_client_as_its_class_and_source_without_its_text() {
    let pg = postgres("own-text");
    let server = start(&config("pg-own-text"), &pg);
    let mut admin = server.login("admin").await;
    let names = "SELECT name FROM pgsrc.districts";
    assert_eq!(rows(&mut admin, names).await.len(), 2);
    pg.sql_in(
        "bund",
        "ALTER TABLE hrss.districts RENAME COLUMN name TO name_of_internal_archive",
    );
    let err = admin.query(names).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    let message = err.message();
    assert!(message.contains("hrss_pg"), "{message}");
    assert!(message.contains("request id"), "{message}");
    for hidden in ["name_of_internal_archive", "does not exist", "column"] {
        assert!(!message.contains(hidden), "{hidden} in {message}");
    }
}

#[tokio::test]
async fn a_source_down_at_start_is_reported_by_check_and_served_around_by_serve() {
    let mut pg = postgres("start-down");
    let dir = config("pg-start-down");
    pg.stop();
    let text = check_fails(&dir, &pg);
    assert!(
        text.contains("bureau \"pgsrc\" table \"types\"") && text.contains("hrss_pg"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // serve starts anyway: the declared table is listed and fails clearly, the others
    // answer; after the source is back, the declared table answers without a restart.
    let server = start(&dir, &pg);
    let mut admin = server.login("admin").await;
    assert_eq!(
        admin
            .query("SELECT count(*) FROM pgsrc.people")
            .await
            .unwrap_err()
            .code(),
        Code::Unavailable
    );
    assert_eq!(
        admin
            .query("SELECT * FROM pgsrc.types")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        rows(&mut admin, "SELECT count(*) > 0 FROM market.enterprises").await,
        vec![vec!["true"]]
    );
    pg.start_again();
    assert_eq!(
        rows(&mut admin, "SELECT count(*) FROM pgsrc.people").await,
        vec![vec!["4"]]
    );
}

#[test]
fn columns_of_types_bund_cannot_map_are_refused_at_load_unless_read_as_text() {
    let pg = postgres("refuse");
    let dir = config("pg-refuse");
    let catalog = std::fs::read_to_string(dir.join("catalog.toml"))
        .unwrap()
        .replace("unsupported_types = \"text\"\n", "");
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let text = check_fails(&dir, &pg);
    assert!(
        text.contains("table \"types\"")
            && text.contains("column `iv` has type interval")
            && text.contains("unsupported_types = \"text\""),
        "{text}"
    );
}

/// The example keeps the e-licence library in a SQLite file: served like any bureau, the
/// filter sent as SQL, the file opened read-only.
#[tokio::test]
async fn the_example_serves_its_licence_library_from_sqlite() {
    let file = example_data().join("licence/licences/licences.sqlite");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let server = Server::start();
    let mut admin = server.login("admin").await;
    let b = admin
        .query("SELECT licence_type FROM licence.licences ORDER BY licence_id LIMIT 1")
        .await
        .unwrap();
    let licence_type = column_strings(&b, 0)[0].clone();
    let query = format!(
        "SELECT licence_id, issued_on FROM licence.licences WHERE licence_type = '{licence_type}'"
    );
    let b = admin.query(&format!("EXPLAIN {query}")).await.unwrap();
    let plan = column_strings(&b, 1).join("\n");
    assert!(
        plan.contains(&format!(
            r#"SqliteScanExec: source=licence_db sql=SELECT "licence_id" AS "licence_id", "licence_type" AS "licence_type", "issued_on" AS "issued_on" FROM "licences" WHERE (("licence_type" = '{licence_type}'))"#
        )),
        "{plan}"
    );
    let b = admin.query(&query).await.unwrap();
    assert!(!b.is_empty() && b[0].num_rows() > 0);
    // A count by type runs in SQLite (text groups by bytes there, as in Bund).
    let by_type = "SELECT licence_type, count(*) FROM licence.licences GROUP BY licence_type";
    let explained = admin.query(&format!("EXPLAIN {by_type}")).await.unwrap();
    let plan = column_strings(&explained, 1).join("\n");
    assert!(
        plan.contains(r#"SqliteScanExec: source=licence_db sql=SELECT "licence_type" AS "c0", COUNT(*) AS "c1" FROM "licences" GROUP BY "licence_type""#),
        "{plan}"
    );
    let first = "SELECT licence_id FROM licence.licences ORDER BY licence_id LIMIT 3";
    let explained = admin.query(&format!("EXPLAIN {first}")).await.unwrap();
    let plan = column_strings(&explained, 1).join("\n");
    assert!(
        plan.contains(r#"SqliteScanExec: source=licence_db sql=SELECT "licence_id" AS "c0" FROM "licences" ORDER BY "licence_id" ASC NULLS LAST LIMIT 3"#),
        "{plan}"
    );
    assert_eq!(rows(&mut admin, first).await.len(), 3);
    let counts = rows(&mut admin, by_type).await;
    let total: u64 = counts.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(total, crate::harness::RESIDENTS / 10);
    assert_eq!(
        b[0].schema().field(1).data_type(),
        &datafusion::arrow::datatypes::DataType::Date32
    );
    // NOT NULL in the SQLite table is non-nullable in Arrow; expires_on may be NULL.
    assert!(!b[0].schema().field(0).is_nullable());
    let b = admin
        .query("SELECT expires_on FROM licence.licences LIMIT 1")
        .await
        .unwrap();
    assert!(b[0].schema().field(0).is_nullable());
    assert_eq!(
        rows(&mut admin, "SELECT count(*) FROM licence.licences").await,
        vec![vec![(crate::harness::RESIDENTS / 10).to_string()]]
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
}

/// A SQLite bureau made here (with Python's sqlite3): a join of its two tables, an
/// aggregate under a police officer's row filter, and masks, as the SQL sent shows.
#[tokio::test]
async fn sqlite_joins_aggregates_and_row_filters_are_sent_as_sql() {
    let dir = crate::harness::scratch_dir("sqlite-bureau");
    let file = dir.join("bureau.sqlite");
    let mut script = String::from(
        "db.execute('CREATE TABLE people (id_card TEXT NOT NULL, district_code TEXT NOT NULL, amount INTEGER)')\n\
         db.execute('CREATE TABLE districts (district_code TEXT PRIMARY KEY, name TEXT NOT NULL)')\n\
         db.execute(\"INSERT INTO districts VALUES ('310115', '浦东新区'), ('310101', '黄浦区')\")\n",
    );
    for (id, d, a) in PEOPLE {
        let cents = a.replace('.', "");
        script.push_str(&format!(
            "db.execute(\"INSERT INTO people VALUES ('{id}', '{d}', {cents})\")\n"
        ));
    }
    write_sqlite(&file, &script);

    let config = example_config("config-sqlite-bureau", None);
    let catalog = bureau_entries(
        "sqsrc",
        &[(
            "hrss_sqlite",
            &format!("kind = \"sqlite\"\npath = \"{}\"", file.display()),
        )],
        &[
            (
                "people",
                r#"kind = "database", database = "hrss_sqlite", table = "people""#,
                "",
            ),
            (
                "districts",
                r#"kind = "database", database = "hrss_sqlite", table = "districts""#,
                "",
            ),
        ],
    );
    append_config(&config, &catalog, &people_policy("sqsrc", "sq_people"));
    let server = Server::start_with(&config);
    let marker = "SqliteScanExec: source=hrss_sqlite sql=";

    let mut admin = server.login("admin").await;
    let join = "SELECT p.amount, d.name FROM sqsrc.people p JOIN sqsrc.districts d ON p.district_code = d.district_code WHERE p.amount > 5000 ORDER BY p.amount";
    assert_eq!(
        scans_sql(&mut admin, join, marker).await,
        vec![r#"SELECT t0."amount" AS "c1", t1."name" AS "c3" FROM "people" AS t0 JOIN "districts" AS t1 ON t0."district_code" = t1."district_code" WHERE ((t0."amount" > 5000))"#.to_string()]
    );
    assert_eq!(
        rows(&mut admin, join).await,
        vec![vec!["10050", "浦东新区"], vec!["250000", "浦东新区"]]
    );

    let mut police = server.login("pudong_police").await;
    let count = "SELECT count(*), sum(amount) FROM sqsrc.people";
    assert_eq!(
        scans_sql(&mut police, count, marker).await,
        vec![r#"SELECT COUNT(*) AS "c0", SUM("amount") AS "c1" FROM "people" WHERE (("district_code" = '310115'))"#.to_string()]
    );
    assert_eq!(rows(&mut police, count).await, vec![vec!["2", "260050"]]);
    let masked = "SELECT id_card, amount FROM sqsrc.people ORDER BY amount";
    assert_eq!(
        scans_sql(&mut police, masked, marker).await,
        vec![r#"SELECT "id_card" AS "id_card", "district_code" AS "district_code", "amount" AS "amount" FROM "people" WHERE (("district_code" = '310115'))"#.to_string()]
    );
    assert_eq!(
        rows(&mut police, masked).await,
        vec![
            vec!["310115********1234", "10050"],
            vec!["310115********3456", "250000"]
        ]
    );
}

/// Runs a Python script that writes the SQLite database `file` (Python's own sqlite3).
pub(crate) fn write_sqlite(file: &Path, script: &str) {
    let python = std::env::var("BUND_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        format!("import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n{script}db.commit()\n");
    let out = Command::new(python)
        .args(["-c", &script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rows of the `owned` table: owners that a case-insensitive collation confuses.
pub(crate) const OWNED: &[(&str, i64)] = &[("alice", 1), ("ALICE", 100), ("bob", 10)];

/// A bureau `schema` whose `owned` table lives in `database`: admin reads it all, the police
/// officer only alice's rows.
pub(crate) fn owned_catalog(schema: &str, database: &str, table: &str) -> (String, String) {
    let catalog = bureau_entries(
        schema,
        &[],
        &[(
            "owned",
            &format!("kind = \"database\", database = \"{database}\", table = \"{table}\""),
            "",
        )],
    );
    let security = format!(
        r#"
[[grant]]
roles = ["admin"]
schemas = ["{schema}"]

[[grant]]
roles = ["police_officer"]
datasets = ["{schema}.owned"]

[[policy]]
id = "{schema}_owned"
dataset = "{schema}.owned"

  [[policy.rule]]
  roles = ["admin"]

  [[policy.rule]]
  roles = ["police_officer"]
  row_filter = "owner = 'alice'"
"#
    );
    (catalog, security)
}

/// What a row filter and the user's work on a column under a collation that ignores case
/// must give: Bund's answers, whatever the database's collation would have made of them.
pub(crate) async fn owned_answers_ignore_the_collation(
    server: &Server,
    schema: &str,
    marker: &str,
) {
    let mut police = server.login("pudong_police").await;
    let count = format!("SELECT count(*), sum(amount) FROM {schema}.owned");
    let sent = scans_sql(&mut police, &count, marker).await.join("\n");
    assert!(
        !sent.contains("COUNT(") && !sent.contains("SUM("),
        "aggregated in the database under a row filter it does not evaluate exactly: {sent}"
    );
    assert_eq!(rows(&mut police, &count).await, vec![vec!["1", "1"]]);
    let top = format!("SELECT owner, amount FROM {schema}.owned ORDER BY amount DESC LIMIT 1");
    assert_eq!(rows(&mut police, &top).await, vec![vec!["alice", "1"]]);

    let mut admin = server.login("admin").await;
    let grouped =
        format!("SELECT owner, count(*) FROM {schema}.owned GROUP BY owner ORDER BY owner");
    let sent = scans_sql(&mut admin, &grouped, marker).await.join("\n");
    assert!(
        !sent.contains("GROUP BY"),
        "grouped in the database: {sent}"
    );
    assert_eq!(
        rows(&mut admin, &grouped).await,
        vec![vec!["ALICE", "1"], vec!["alice", "1"], vec!["bob", "1"]]
    );
    let other = format!("SELECT count(*) FROM {schema}.owned WHERE owner <> 'alice'");
    let sent = scans_sql(&mut admin, &other, marker).await.join("\n");
    assert!(
        !sent.contains("<>"),
        "<> sent under a collation that ignores case: {sent}"
    );
    assert_eq!(rows(&mut admin, &other).await, vec![vec!["2"]]);
    let highest = format!("SELECT max(owner), min(owner) FROM {schema}.owned");
    assert_eq!(
        rows(&mut admin, &highest).await,
        vec![vec!["bob", "ALICE"]],
        "byte order, as Bund orders text"
    );
}

#[tokio::test]
async fn a_sqlite_nocase_column_is_never_compared_grouped_or_ordered_in_sqlite() {
    let dir = crate::harness::scratch_dir("sqlite-nocase");
    let file = dir.join("owned.sqlite");
    let mut script = String::from(
        "db.execute('CREATE TABLE owned (owner TEXT COLLATE NOCASE NOT NULL, amount INTEGER NOT NULL)')\n",
    );
    for (owner, amount) in OWNED {
        script.push_str(&format!(
            "db.execute(\"INSERT INTO owned VALUES ('{owner}', {amount})\")\n"
        ));
    }
    write_sqlite(&file, &script);
    let config = example_config("config-sqlite-nocase", None);
    let (bureau, security) = owned_catalog("sqo", "owned_sqlite", "owned");
    append_config(
        &config,
        &format!(
            "[[database]]\nname = \"owned_sqlite\"\nkind = \"sqlite\"\npath = \"{}\"\n{bureau}",
            file.display()
        ),
        &security,
    );
    let server = Server::start_with(&config);
    owned_answers_ignore_the_collation(&server, "sqo", "SqliteScanExec: source=owned_sqlite sql=")
        .await;
}

#[tokio::test]
async fn a_postgres_non_deterministic_collation_is_never_compared_or_grouped_in_postgres() {
    let pg = Postgres::start("nondeterministic");
    let mut sql = String::from(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         CREATE SCHEMA own; CREATE TABLE own.owned (owner text COLLATE ci NOT NULL, amount int4 NOT NULL);",
    );
    for (owner, amount) in OWNED {
        sql.push_str(&format!(
            "INSERT INTO own.owned VALUES ('{owner}', {amount});"
        ));
    }
    pg.sql_in("bund", &sql);
    // PostgreSQL itself confuses them
    assert_eq!(
        pg.sql_in(
            "bund",
            "SELECT count(*) FROM own.owned WHERE owner = 'alice'"
        )
        .trim(),
        "2"
    );
    let config = example_config("config-pg-nondeterministic", None);
    let (bureau, security) = owned_catalog("pgo", "owned_pg", "own.owned");
    append_config(
        &config,
        &format!(
            "[[database]]\nname = \"owned_pg\"\nkind = \"postgres\"\nurl_env = \"{URL_ENV}\"\n{bureau}"
        ),
        &security,
    );
    let server = start(&config, &pg);
    owned_answers_ignore_the_collation(&server, "pgo", "PostgresScanExec: source=owned_pg sql=")
        .await;
}
