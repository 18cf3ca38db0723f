//! MySQL/MariaDB sources against a real MariaDB server started here: types, the SQL Bund
//! sends (golden), the server's own log as evidence of what it sent back, text filters
//! under case-insensitive collations, masks that never reach it and a wrong password.
//! What every kind must do alike is in `conformance.rs`.

use std::path::{Path, PathBuf};

use tonic::Code;

use crate::databases::{check_fails_with, people_policy, rows, scans_sql};
use crate::dbservers::{Mariadb, PASSWORD};
use crate::harness::{Raw, Server, append_config, bureau_entries, example_config};

const URL_ENV: &str = "BUND_TEST_MARKET_MY_URL";
const BAD_URL_ENV: &str = "BUND_TEST_MARKET_MY_BAD_URL";
/// Read GEOMETRY columns as text (the refusal test leaves this out).
const TEXT: &str = "unsupported_types = \"text\"";

/// A MariaDB server with the bureau's tables: `people` (filters, masks, row filters; a
/// `status` whose values differ only in case and trailing spaces) and `types`.
fn mariadb(name: &str) -> Mariadb {
    let db = Mariadb::start(name);
    db.sql(
        "CREATE TABLE people (id_card VARCHAR(18) NOT NULL, district_code VARCHAR(6) NOT NULL,
            amount DECIMAL(12,2), status VARCHAR(10));
         INSERT INTO people VALUES
            ('310115199001011234', '310115', 100.50, 'active'),
            ('310115198502023456', '310115', 2500.00, 'Active '),
            ('310101197003035678', '310101', 42.42, 'ACTIVE'),
            ('310104200004047890', '310104', 0.01, 'closed');
         CREATE TABLE types (
            ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
            ui INT UNSIGNED, small DECIMAL(12,2), big DECIMAL(50,10), f FLOAT, d DOUBLE,
            b BOOL, c CHAR(4), v VARCHAR(20), t TEXT, dt DATE, tm TIME(6), ts DATETIME(6),
            tstz TIMESTAMP(6) NULL, j JSON, bl BLOB, vb VARBINARY(8), e ENUM('a','b'),
            y YEAR, g POINT, k INT);
         SET time_zone = '+08:00';
         INSERT INTO types VALUES (-128, -32768, -8388608, 2147483647, -9223372036854775808,
            18446744073709551615, 4294967295, -1234567890.12,
            12345678901234567890123456789012345678.0123456789, 1.5, -2.25, TRUE, 'ab',
            'varchar', '上海 ''quoted'' \\\\ back', '2024-02-29', '13:14:15.123456',
            '2024-02-29 13:14:15.5', '2024-02-29 13:14:15', '{\"a\": [1, 2]}',
            X'DEADBEEF', X'0102', 'b', 2024, POINT(1, 2), 1);
         INSERT INTO types (k) VALUES (2);",
    );
    db
}

/// The example plus a MariaDB bureau `mysrc`: `people` (declared columns), `types` (read
/// from the server), `big_amounts` (a query) and
/// `elsewhere` (a database entry with a wrong password).
fn config(name: &str, unsupported: &str) -> PathBuf {
    let dir = example_config(&format!("config-{name}"), None);
    let catalog = bureau_entries(
        "mysrc",
        &[(
            "market_my",
            &format!(
                "kind = \"mysql\"\nurl_env = \"{URL_ENV}\"\nconnect_timeout_s = 2\n{unsupported}"
            ),
        )],
        &[
            (
                "people",
                r#"kind = "database", database = "market_my", table = "people""#,
                r#"columns = [
  { name = "id_card", type = "varchar", nullable = false },
  { name = "district_code", type = "varchar", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "status", type = "varchar" },
]"#,
            ),
            (
                "types",
                r#"kind = "database", database = "market_my", table = "bund.types""#,
                "",
            ),
            (
                "big_amounts",
                r#"kind = "database", database = "market_my", query = "SELECT district_code, amount FROM people WHERE amount > 50""#,
                "",
            ),
        ],
    );
    append_config(&dir, &catalog, &people_policy("mysrc", "my_people"));
    dir
}

fn start(config: &Path, db: &Mariadb) -> Server {
    Server::start_with_env(config, &[(URL_ENV, &db.url())])
}

/// The SQL of the MySQL scan in the plan of `sql`.
async fn remote_sql(c: &mut Raw, sql: &str) -> Vec<String> {
    scans_sql(c, sql, "MysqlScanExec: source=market_my sql=").await
}

/// `Rows_sent` of the last logged statement that contains `needle`.
fn rows_sent(db: &Mariadb, needle: &str) -> Option<u64> {
    let log = db.statement_log();
    let mut sent = None;
    let mut found = None;
    for line in log.lines() {
        if let Some(rest) = line.split_once("Rows_sent: ").map(|(_, r)| r) {
            sent = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if line.contains(needle) {
            found = sent;
        }
    }
    found
}

#[tokio::test]
async fn mariadb_tables_are_served_with_their_types_and_filters_run_in_the_database() {
    let db = mariadb("types");
    let server = start(&config("my-types", TEXT), &db);
    let mut admin = server.login("admin").await;

    let got = rows(
        &mut admin,
        "SELECT ti, si, mi, i, bi, ubi, ui, small, big, f, d, b, c, v, t, dt, tm, ts, tstz, j, \
         encode(bl, 'hex'), encode(vb, 'hex'), e, y, g FROM mysrc.types ORDER BY k",
    )
    .await;
    assert_eq!(
        got[0],
        vec![
            "-128",
            "-32768",
            "-8388608",
            "2147483647",
            "-9223372036854775808",
            "18446744073709551615",
            "4294967295",
            "-1234567890.12",
            "12345678901234567890123456789012345678.0123456789",
            "1.5",
            "-2.25",
            "true",
            "ab",
            "varchar",
            "上海 'quoted' \\ back",
            "2024-02-29",
            "13:14:15.123456",
            "2024-02-29T13:14:15.500",
            "2024-02-29T05:14:15Z",
            "{\"a\": [1, 2]}",
            "deadbeef",
            "0102",
            "b",
            "2024",
            "POINT(1 2)",
        ]
    );
    assert!(got[1].iter().all(|v| v == "NULL"), "{:?}", got[1]);

    assert_eq!(
        rows(
            &mut admin,
            "SELECT district_code, amount FROM mysrc.big_amounts ORDER BY amount"
        )
        .await,
        vec![vec!["310115", "100.50"], vec!["310115", "2500.00"]]
    );

    // Golden SQL: what each query sends.
    let all = "SELECT `id_card` AS `id_card`, `district_code` AS `district_code`, `amount` AS `amount`, `status` AS `status` FROM `people`";
    for (query, want) in [
        ("SELECT * FROM mysrc.people", all.to_string()),
        (
            "SELECT amount FROM mysrc.people WHERE district_code = '310115' AND amount >= 100",
            "SELECT `district_code` AS `district_code`, `amount` AS `amount` FROM `people` WHERE ((`district_code` = '310115')) AND ((`amount` >= 100.00))".to_string(),
        ),
        // Not sent: text inequality, NOT IN and ranges on text (the collation ignores case
        // and trailing spaces, so the database would drop rows Bund keeps), a function call.
        (
            "SELECT * FROM mysrc.people WHERE status <> 'active' OR district_code NOT IN ('1') OR district_code < '310110' OR upper(id_card) = 'X'",
            all.to_string(),
        ),
        (
            "SELECT district_code FROM mysrc.people WHERE district_code IN ('310115', '310101') AND amount BETWEEN 1 AND 200 AND NOT (amount IS NULL)",
            "SELECT `district_code` AS `district_code`, `amount` AS `amount` FROM `people` WHERE (((`district_code` = '310115') OR (`district_code` = '310101'))) AND ((`amount` >= 1.00)) AND ((`amount` <= 200.00)) AND ((`amount` IS NOT NULL))".to_string(),
        ),
        (
            "SELECT district_code FROM mysrc.people LIMIT 2",
            "SELECT `district_code` AS `district_code` FROM `people` LIMIT 2".to_string(),
        ),
        (
            "SELECT dt FROM mysrc.types WHERE dt = DATE '2024-02-29' AND i > 5",
            "SELECT `i` AS `i`, `dt` AS `dt` FROM `bund`.`types` WHERE ((`dt` = DATE '2024-02-29')) AND ((`i` > 5))".to_string(),
        ),
    ] {
        assert_eq!(remote_sql(&mut admin, query).await, vec![want], "{query}");
    }

    // Aggregates over exact filters run in MariaDB; grouping by text (case-insensitive
    // there) or filtering on text (a superset there) keeps them in Bund.
    let query = "SELECT count(*), sum(amount), max(amount) FROM mysrc.people WHERE amount > 1";
    assert_eq!(
        remote_sql(&mut admin, query).await,
        vec!["SELECT COUNT(*) AS `c0`, SUM(`amount`) AS `c1`, MAX(`amount`) AS `c2` FROM `people` WHERE ((`amount` > 1.00))".to_string()]
    );
    assert_eq!(
        rows(&mut admin, query).await,
        vec![vec!["3", "2642.92", "2500.00"]]
    );
    assert_eq!(
        rows(
            &mut admin,
            "SELECT sum(i), min(dt), count(t) FROM mysrc.types"
        )
        .await,
        vec![vec!["2147483647", "2024-02-29", "1"]]
    );
    assert_eq!(
        remote_sql(&mut admin, "SELECT sum(i), min(dt), count(t) FROM mysrc.types").await,
        vec!["SELECT CAST(SUM(`i`) AS SIGNED) AS `c0`, MIN(`dt`) AS `c1`, COUNT(`t`) AS `c2` FROM `bund`.`types`".to_string()]
    );
    // A join on an integer key runs in MariaDB; on a text key (case-insensitive there) not.
    let join = "SELECT a.k, b.i FROM mysrc.types a JOIN mysrc.types b ON a.k = b.k ORDER BY a.k";
    assert_eq!(
        remote_sql(&mut admin, join).await,
        vec!["SELECT t0.`k` AS `c0`, t1.`i` AS `c1` FROM `bund`.`types` AS t0 JOIN `bund`.`types` AS t1 ON t0.`k` = t1.`k`".to_string()]
    );
    assert_eq!(
        rows(&mut admin, join).await,
        vec![vec!["1", "2147483647"], vec!["2", "NULL"]]
    );
    let top = "SELECT k, i FROM mysrc.types ORDER BY i LIMIT 1";
    assert_eq!(
        remote_sql(&mut admin, top).await,
        vec!["SELECT `k` AS `c0`, `i` AS `c1` FROM `bund`.`types` ORDER BY (`i` IS NULL) ASC, `i` ASC LIMIT 1".to_string()]
    );
    assert_eq!(rows(&mut admin, top).await, vec![vec!["1", "2147483647"]]);
    let text_join =
        "SELECT a.status FROM mysrc.people a JOIN mysrc.people b ON a.status = b.status";
    assert_eq!(remote_sql(&mut admin, text_join).await.len(), 2);
    assert_eq!(rows(&mut admin, text_join).await.len(), 4);

    let grouped =
        "SELECT status, count(*) FROM mysrc.people WHERE status = 'active' GROUP BY status";
    assert_eq!(
        remote_sql(&mut admin, grouped).await,
        vec!["SELECT `status` AS `status` FROM `people` WHERE ((`status` = 'active'))".to_string()]
    );
    assert_eq!(rows(&mut admin, grouped).await, vec![vec!["active", "1"]]);

    // Case and trailing spaces: MariaDB matches three rows for `= 'active'`, Bund keeps
    // the one that is equal; `<>` is not sent, so no row is lost.
    assert_eq!(
        rows(
            &mut admin,
            "SELECT status FROM mysrc.people WHERE status = 'active'"
        )
        .await,
        vec![vec!["active"]]
    );
    assert_eq!(
        rows_sent(&db, "WHERE ((`status` = 'active'))"),
        Some(3),
        "{}",
        db.statement_log()
    );
    assert_eq!(
        rows(
            &mut admin,
            "SELECT status FROM mysrc.people WHERE status <> 'active' ORDER BY status"
        )
        .await,
        vec![vec!["ACTIVE"], vec!["Active "], vec!["closed"]]
    );

    // Values that would end their string early if backslash escaped the quote: sent with
    // quotes doubled under NO_BACKSLASH_ESCAPES, they match nothing and run nothing.
    for evil in [
        r"\') OR (1=1) OR ('",
        r"x\'' OR 1=1 --",
        "310115' OR '1'='1",
        r"\",
    ] {
        let q = format!(
            "SELECT count(*) FROM mysrc.people WHERE district_code = '{}'",
            evil.replace('\'', "''")
        );
        assert_eq!(rows(&mut admin, &q).await, vec![vec!["0"]], "{q}");
        let sent = remote_sql(&mut admin, &q).await;
        assert!(
            sent[0].ends_with(&format!(
                "WHERE ((`district_code` = '{}'))",
                evil.replace('\'', "''")
            )),
            "{sent:?}"
        );
    }

    // The server's log: the selective query sent one row, not four.
    assert_eq!(
        rows(
            &mut admin,
            "SELECT amount FROM mysrc.people WHERE district_code = '310101'"
        )
        .await,
        vec![vec!["42.42"]]
    );
    assert_eq!(
        rows_sent(&db, "WHERE ((`district_code` = '310101'))"),
        Some(1),
        "{}",
        db.statement_log()
    );
}

#[tokio::test]
async fn masks_and_row_filters_on_a_mariadb_table_stay_in_bund_or_run_as_plain_sql() {
    let db = mariadb("masks");
    let server = start(&config("my-masks", TEXT), &db);
    let mut police = server.login("pudong_police").await;
    let query =
        "SELECT id_card, amount FROM mysrc.people WHERE id_card LIKE '310115%' ORDER BY amount";
    assert_eq!(
        remote_sql(&mut police, query).await,
        vec![
            "SELECT `id_card` AS `id_card`, `district_code` AS `district_code`, `amount` AS `amount` FROM `people` WHERE ((`district_code` = '310115'))"
                .to_string()
        ]
    );
    assert_eq!(
        rows(&mut police, query).await,
        vec![
            vec!["310115********1234", "100.50"],
            vec!["310115********3456", "2500.00"]
        ]
    );
    // The row filter names a text column, which MariaDB compares ignoring case: it may
    // send a superset, so a count cannot run there (it would count rows Bund drops).
    assert_eq!(
        remote_sql(&mut police, "SELECT count(*) FROM mysrc.people").await,
        vec!["SELECT `district_code` AS `district_code` FROM `people` WHERE ((`district_code` = '310115'))".to_string()]
    );
    assert_eq!(
        rows(&mut police, "SELECT count(*) FROM mysrc.people").await,
        vec![vec!["2"]]
    );
    let log = db.statement_log();
    assert!(log.contains("FROM `people` WHERE"), "{log}");
    assert!(!log.contains("mask_"), "{log}");
}

#[tokio::test]
async fn a_wrong_password_is_reported_by_check_and_served_around_by_serve() {
    let db = mariadb("password");
    let dir = config("my-password", TEXT);
    let catalog = bureau_entries(
        "mywrong",
        &[(
            "market_my_wrong",
            &format!("kind = \"mysql\"\nurl_env = \"{BAD_URL_ENV}\""),
        )],
        &[(
            "people",
            r#"kind = "database", database = "market_my_wrong", table = "people""#,
            "",
        )],
    );
    append_config(&dir, &catalog, "");
    let bad_url = db.url().replace(PASSWORD, "not-the-password");
    let text = check_fails_with(&dir, &[(URL_ENV, &db.url()), (BAD_URL_ENV, &bad_url)]);
    assert!(
        text.contains("bureau \"mywrong\" table \"people\"")
            && text.contains("market_my_wrong")
            && text.contains("Access denied"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");

    let server = Server::start_with_env(&dir, &[(URL_ENV, &db.url()), (BAD_URL_ENV, &bad_url)]);
    let mut admin = server.login("admin").await;
    assert_eq!(
        rows(&mut admin, "SELECT count(*) FROM mysrc.people").await,
        vec![vec!["4"]]
    );
    assert_eq!(
        admin
            .query("SELECT * FROM mywrong.people")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

#[test]
fn mariadb_columns_bund_cannot_map_are_refused_at_load_unless_read_as_text() {
    let db = mariadb("refuse");
    let dir = config("my-refuse", "");
    let text = check_fails_with(&dir, &[(URL_ENV, &db.url())]);
    assert!(
        text.contains("table \"types\"")
            && text.contains("column `g` has type geometry")
            && text.contains("unsupported_types = \"text\""),
        "{text}"
    );
}

#[tokio::test]
async fn mariadb_text_under_its_usual_collation_stays_in_bund_and_under_nopad_bin_runs_there() {
    let db = Mariadb::start("collations");
    let mut sql = String::from(
        "CREATE TABLE owned (owner VARCHAR(20) NOT NULL, amount INT NOT NULL);
         CREATE TABLE owned_bin (owner VARCHAR(20) COLLATE utf8mb4_nopad_bin NOT NULL, amount INT NOT NULL);",
    );
    for (owner, amount) in crate::databases::OWNED {
        sql.push_str(&format!(
            "INSERT INTO owned VALUES ('{owner}', {amount}); INSERT INTO owned_bin VALUES ('{owner}', {amount});"
        ));
    }
    db.sql(&sql);
    let config = example_config("config-mariadb-collations", None);
    let (loose, loose_security) = crate::databases::owned_catalog("myo", "owned_my", "owned");
    let (exact, exact_security) = crate::databases::owned_catalog("myb", "owned_my", "owned_bin");
    append_config(
        &config,
        &format!(
            "[[database]]\nname = \"owned_my\"\nkind = \"mysql\"\nurl_env = \"{URL_ENV}\"\n{loose}{exact}"
        ),
        &format!("{loose_security}{exact_security}"),
    );
    let server = start(&config, &db);
    let marker = "MysqlScanExec: source=owned_my sql=";
    // the server's default collation ignores case: as SQLite's NOCASE
    crate::databases::owned_answers_ignore_the_collation(&server, "myo", marker).await;

    // a binary collation that does not pad compares bytes: the work may run there
    let mut admin = server.login("admin").await;
    let grouped = "SELECT owner, count(*) FROM myb.owned GROUP BY owner ORDER BY owner";
    let sent = scans_sql(&mut admin, grouped, marker).await.join("\n");
    assert!(sent.contains("GROUP BY"), "{sent}");
    assert_eq!(
        rows(&mut admin, grouped).await,
        vec![vec!["ALICE", "1"], vec!["alice", "1"], vec!["bob", "1"]]
    );
    let other = "SELECT count(*) FROM myb.owned WHERE owner <> 'alice'";
    let sent = scans_sql(&mut admin, other, marker).await.join("\n");
    assert!(sent.contains("<>"), "{sent}");
    assert_eq!(rows(&mut admin, other).await, vec![vec!["2"]]);
    let mut police = server.login("pudong_police").await;
    let count = "SELECT count(*), sum(amount) FROM myb.owned";
    let sent = scans_sql(&mut police, count, marker).await.join("\n");
    assert!(
        sent.contains("COUNT("),
        "the row filter is exact here: {sent}"
    );
    assert_eq!(rows(&mut police, count).await, vec![vec!["1", "1"]]);
}
