//! One conformance suite for database sources: the same bureau tables (`people`, under the
//! residents' policy style, and `districts`) in PostgreSQL, MariaDB, SQLite and behind a
//! second Bund's Flight SQL service, and the same properties checked against every kind:
//! answers, which work is sent to the database, masks that never reach it, a source that
//! goes down failing alone and coming back. Each check runs against each kind and a report
//! lists every (check, kind) that failed, not only the first.
//!
//! What differs between kinds (their types, the exact SQL of their dialect, collations,
//! statement timeouts, a wrong password) is tested in each kind's own module:
//! `databases.rs` (PostgreSQL, SQLite), `mariadb.rs`, `flightsql.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tonic::Code;

use crate::databases::{people_policy, rows, scans_sql, write_sqlite};
use crate::dbservers::{Mariadb, PASSWORD, Postgres};
use crate::harness::{Raw, Server, append_config, bureau_entries, example_config, scratch_dir};

/// Rows of `people`: (id_card, district_code, amount in cents).
const PEOPLE: &[(&str, &str, i64)] = &[
    ("310115199001011234", "310115", 10050),
    ("310115198502023456", "310115", 250000),
    ("310101197003035678", "310101", 4242),
    ("310104200004047890", "310104", 1),
];
/// Rows of `districts`: 310104 has none, so a join drops its person.
const DISTRICTS: &[(&str, &str)] = &[("310115", "浦东新区"), ("310101", "黄浦区")];

/// The tables in portable SQL: `types` are the column types of (id_card, district_code,
/// amount, name) in the kind's own words.
fn load_sql(schema: &str, types: [&str; 4]) -> String {
    let [id, code, amount, name] = types;
    let mut sql = format!(
        "CREATE TABLE {schema}people (id_card {id} NOT NULL, district_code {code} NOT NULL, amount {amount});\n\
         CREATE TABLE {schema}districts (district_code {code} NOT NULL, name {name} NOT NULL);\n"
    );
    for (id, d, a) in PEOPLE {
        sql.push_str(&format!(
            "INSERT INTO {schema}people VALUES ('{id}', '{d}', {a});\n"
        ));
    }
    for (d, n) in DISTRICTS {
        sql.push_str(&format!(
            "INSERT INTO {schema}districts VALUES ('{d}', '{n}');\n"
        ));
    }
    sql
}

/// What serves a kind's tables.
enum Backend {
    Postgres(Postgres),
    Mariadb(Mariadb),
    Sqlite,
    /// A second Bund serving the tables from CSV files: its configuration and address.
    Bund(Option<Server>, PathBuf, String),
}

/// One kind of database source, with its tables loaded.
struct Kind {
    /// The bureau (schema) and database entry name, `conf_<kind>`.
    bureau: &'static str,
    /// How the kind's scan starts its line in EXPLAIN.
    scan: &'static str,
    /// The `[[database]]` entry, without its name.
    entry: String,
    /// Where its tables are, as `table = "…"` wants them (`{}` is the table).
    table: &'static str,
    /// The environment its entry reads.
    env: Vec<(String, String)>,
    /// A query on `people` that runs for 3 s, for a statement timeout of 1 s (`None`: the
    /// kind has no statement timeout).
    slow: Option<&'static str>,
    backend: Backend,
}

impl Kind {
    fn postgres(test: &str) -> Self {
        let pg = Postgres::start(&format!("{test}-pg"));
        pg.sql_in(
            "bund",
            &format!(
                "CREATE SCHEMA conf;\n{}",
                load_sql("conf.", ["text", "varchar(6)", "int8", "text"])
            ),
        );
        Self {
            bureau: "conf_pg",
            scan: "PostgresScanExec: source=conf_pg sql=",
            entry:
                "kind = \"postgres\"\nurl_env = \"BUND_TEST_CONF_PG_URL\"\nconnect_timeout_s = 2"
                    .into(),
            table: "conf.{}",
            env: vec![("BUND_TEST_CONF_PG_URL".into(), pg.url())],
            slow: Some("SELECT district_code FROM conf.people, pg_sleep(3)"),
            backend: Backend::Postgres(pg),
        }
    }

    fn mariadb(test: &str) -> Self {
        let db = Mariadb::start(&format!("{test}-my"));
        db.sql(&load_sql(
            "",
            ["VARCHAR(18)", "VARCHAR(6)", "BIGINT", "VARCHAR(20)"],
        ));
        Self {
            bureau: "conf_my",
            scan: "MysqlScanExec: source=conf_my sql=",
            entry: "kind = \"mariadb\"\nurl_env = \"BUND_TEST_CONF_MY_URL\"\nconnect_timeout_s = 2"
                .into(),
            table: "{}",
            env: vec![("BUND_TEST_CONF_MY_URL".into(), db.url())],
            slow: Some("SELECT district_code FROM people WHERE SLEEP(3) = 0"),
            backend: Backend::Mariadb(db),
        }
    }

    fn sqlite(test: &str) -> Self {
        let file = scratch_dir(&format!("{test}-sqlite")).join("bureau.sqlite");
        let sql = load_sql("", ["TEXT", "TEXT", "INTEGER", "TEXT"]);
        write_sqlite(&file, &format!("db.executescript({sql:?})\n"));
        Self {
            bureau: "conf_sq",
            scan: "SqliteScanExec: source=conf_sq sql=",
            entry: format!("kind = \"sqlite\"\npath = \"{}\"", file.display()),
            table: "{}",
            env: Vec::new(),
            slow: None,
            backend: Backend::Sqlite,
        }
    }

    /// A second Bund (the district platform) serving the tables from CSV files as its
    /// bureau `conf`; the city reads them as its admin.
    fn flight_sql(test: &str) -> Self {
        let config = example_config(&format!("{test}-district"), None);
        let data = scratch_dir(&format!("{test}-district-files"));
        let mut people = String::from("id_card,district_code,amount\n");
        for (id, d, a) in PEOPLE {
            people.push_str(&format!("{id},{d},{a}\n"));
        }
        let mut districts = String::from("district_code,name\n");
        for (d, n) in DISTRICTS {
            districts.push_str(&format!("{d},{n}\n"));
        }
        for (table, csv) in [("people", people), ("districts", districts)] {
            std::fs::create_dir_all(data.join(table)).unwrap();
            std::fs::write(data.join(table).join("part.csv"), csv).unwrap();
        }
        let location =
            |t: &str| format!("kind = \"csv\", location = \"{}/\"", data.join(t).display());
        let catalog = bureau_entries(
            "conf",
            &[],
            &[
                (
                    "people",
                    &location("people"),
                    r#"columns = [
  { name = "id_card", type = "varchar", nullable = false },
  { name = "district_code", type = "varchar", nullable = false },
  { name = "amount", type = "bigint" },
]"#,
                ),
                (
                    "districts",
                    &location("districts"),
                    r#"columns = [{ name = "district_code", type = "varchar" }, { name = "name", type = "varchar" }]"#,
                ),
            ],
        );
        append_config(&config, &catalog, &people_policy("conf", "conf_people"));
        let district = Server::start_with(&config);
        let addr = district.addr.clone();
        Self {
            bureau: "conf_fl",
            scan: "FlightSqlScanExec: source=conf_fl sql=",
            entry:
                "kind = \"flightsql\"\nurl_env = \"BUND_TEST_CONF_FL_URL\"\nconnect_timeout_s = 2"
                    .into(),
            table: "conf.{}",
            env: vec![(
                "BUND_TEST_CONF_FL_URL".into(),
                format!("grpc://admin:admin-demo@{addr}"),
            )],
            slow: None,
            backend: Backend::Bund(Some(district), config, addr),
        }
    }

    /// Catalog and security entries of this kind's bureau.
    fn entries(&self) -> (String, String) {
        let b = self.bureau;
        let source = |t: &str| {
            format!(
                "kind = \"database\", database = \"{b}\", table = \"{}\"",
                self.table.replace("{}", t)
            )
        };
        let slow_entry = format!("{}\nstatement_timeout_s = 1", self.entry);
        let slow_db = format!("{b}_slow");
        let slow_source = self
            .slow
            .map(|q| format!("kind = \"database\", database = \"{slow_db}\", query = \"{q}\""));
        let mut databases = vec![(b, self.entry.as_str())];
        let mut tables = vec![
            ("people", source("people"), ""),
            ("districts", source("districts"), ""),
        ];
        if let Some(slow) = slow_source {
            databases.push((&slow_db, &slow_entry));
            tables.push((
                "slow",
                slow,
                r#"columns = [{ name = "district_code", type = "varchar" }]"#,
            ));
        }
        let tables: Vec<(&str, &str, &str)> = tables
            .iter()
            .map(|(n, s, m)| (*n, s.as_str(), *m))
            .collect();
        let catalog = bureau_entries(b, &databases, &tables);
        let security = format!(
            "{}\n[[grant]]\nroles = [\"police_officer\"]\ndatasets = [\"{b}.districts\"]\n",
            people_policy(b, &format!("{b}_people"))
        );
        (catalog, security)
    }

    /// Stops the database (false: a file cannot go down).
    fn stop(&mut self) -> bool {
        match &mut self.backend {
            Backend::Postgres(pg) => pg.stop(),
            Backend::Mariadb(db) => db.stop(),
            Backend::Sqlite => return false,
            Backend::Bund(server, _, _) => {
                server.take().expect("running").stop();
            }
        }
        true
    }

    fn start_again(&mut self) {
        match &mut self.backend {
            Backend::Postgres(pg) => pg.start_again(),
            Backend::Mariadb(db) => db.start_again(),
            Backend::Sqlite => {}
            Backend::Bund(server, config, addr) => {
                *server = Some(Server::start_at(config, addr));
            }
        }
    }
}

/// The city's Bund with a bureau of each kind in `kinds`.
fn city(name: &str, kinds: &[Kind]) -> Server {
    let config = example_config(name, None);
    let mut env = Vec::new();
    for kind in kinds {
        let (catalog, security) = kind.entries();
        append_config(&config, &catalog, &security);
        env.extend(kind.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    Server::start_with_env(&config, &env)
}

/// Runs `check` against every kind and panics listing every kind it failed for.
async fn every_kind<'a, F>(
    what: &str,
    kinds: impl IntoIterator<Item = &'a Kind>,
    server: &'a Server,
    check: F,
) where
    F: Fn(&'a Server, &'a Kind) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
{
    let mut failed = Vec::new();
    for kind in kinds {
        if let Err(panic) = std::panic::AssertUnwindSafe(check(server, kind))
            .catch_unwind()
            .await
        {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            failed.push(format!("  {}: {message}", kind.bureau));
        }
    }
    assert!(
        failed.is_empty(),
        "{what} failed for {} kind(s):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The SQL sent for `sql` by the kind's scans.
async fn sent(c: &mut Raw, kind: &Kind, sql: &str) -> Vec<String> {
    scans_sql(c, sql, kind.scan).await
}

/// An admin's filters, aggregates and joins answer the same from every kind, and the
/// filters are in the SQL each database receives.
async fn admin_reads(server: &Server, kind: &Kind) {
    let b = kind.bureau;
    let mut admin = server.login("admin").await;
    let filtered = format!("SELECT count(*) FROM {b}.people WHERE district_code = '310115'");
    assert_eq!(rows(&mut admin, &filtered).await, vec![vec!["2"]]);
    let sql = sent(&mut admin, kind, &filtered).await;
    assert!(
        !sql.is_empty() && sql.iter().all(|s| s.contains("'310115'")),
        "{sql:?}"
    );

    let big = format!("SELECT sum(amount) FROM {b}.people WHERE amount > 5000");
    assert_eq!(rows(&mut admin, &big).await, vec![vec!["260050"]]);
    let sql = sent(&mut admin, kind, &big).await;
    assert!(sql.iter().all(|s| s.contains("5000")), "{sql:?}");

    let joined = format!(
        "SELECT d.name, sum(p.amount) FROM {b}.people p JOIN {b}.districts d \
         ON p.district_code = d.district_code GROUP BY d.name ORDER BY d.name"
    );
    assert_eq!(
        rows(&mut admin, &joined).await,
        vec![vec!["浦东新区", "260050"], vec!["黄浦区", "4242"]]
    );
    let top = format!("SELECT id_card FROM {b}.people ORDER BY amount DESC LIMIT 2");
    assert_eq!(
        rows(&mut admin, &top).await,
        vec![vec!["310115198502023456"], vec!["310115199001011234"]]
    );
}

/// A police officer's row filter is plain SQL in the database; the mask is applied by Bund
/// and no work that would see raw values (a predicate, a join or an ordering over the
/// masked column's output) is sent.
async fn police_reads(server: &Server, kind: &Kind) {
    let b = kind.bureau;
    let mut police = server.login("pudong_police").await;
    let all = format!("SELECT id_card, amount FROM {b}.people ORDER BY amount");
    assert_eq!(
        rows(&mut police, &all).await,
        vec![
            vec!["310115********1234", "10050"],
            vec!["310115********3456", "250000"]
        ]
    );
    let sql = sent(&mut police, kind, &all).await;
    assert!(
        !sql.is_empty()
            && sql
                .iter()
                .all(|s| s.contains("'310115'") && !s.contains("mask_")),
        "{sql:?}"
    );
    let count = format!("SELECT count(*) FROM {b}.people");
    assert_eq!(rows(&mut police, &count).await, vec![vec!["2"]]);

    // The user's predicates never sit beside the row filter: with `… AND amount > 100000`
    // in one WHERE, an index on `amount` would fetch the hidden rows above it before the
    // row filter dropped them, and the time of an empty answer would tell whether any
    // exist. They are sent behind the fence, outside a subquery that applies the row filter
    // on its own, where the database evaluates the row filter exactly. Elsewhere it gets
    // the row filter alone: MariaDB compares `district_code` under its usual collation
    // (case and trailing spaces ignored), so its subquery would also let through rows the
    // row filter hides; a Flight SQL service has no known fence.
    let over = format!("SELECT id_card FROM {b}.people WHERE amount > 100000");
    assert_eq!(
        rows(&mut police, &over).await,
        vec![vec!["310115********3456"]]
    );
    let sql = sent(&mut police, kind, &over).await;
    let fenced = |s: &str| match (s.find(") AS bund_rows WHERE"), s.find("100000")) {
        (Some(fence), Some(user)) => fence < user && s[..fence].contains("'310115'"),
        _ => false,
    };
    let fences = ["PostgresScanExec", "SqliteScanExec"]
        .iter()
        .any(|k| kind.scan.starts_with(k));
    assert!(
        !sql.is_empty()
            && sql.iter().all(|s| {
                s.contains("'310115'")
                    && if fences {
                        fenced(s)
                    } else {
                        !s.contains("100000")
                    }
            }),
        "{sql:?}"
    );

    // A raw ID number matches no masked value, and is never sent.
    let probe = format!("SELECT count(*) FROM {b}.people WHERE id_card = '310115199001011234'");
    assert_eq!(rows(&mut police, &probe).await, vec![vec!["0"]]);
    let sql = sent(&mut police, kind, &probe).await;
    assert!(
        sql.iter().all(|s| !s.contains("310115199001011234")),
        "{sql:?}"
    );

    // Masked output is joined and ordered in Bund.
    let join = format!(
        "SELECT p.id_card, d.name FROM {b}.people p JOIN {b}.districts d \
         ON p.district_code = d.district_code ORDER BY p.id_card"
    );
    assert_eq!(
        rows(&mut police, &join).await,
        vec![
            vec!["310115********1234", "浦东新区"],
            vec!["310115********3456", "浦东新区"]
        ]
    );
    let sql = sent(&mut police, kind, &join).await;
    assert!(sql.iter().all(|s| !s.contains("JOIN")), "{sql:?}");
    let top = format!("SELECT id_card FROM {b}.people ORDER BY amount DESC LIMIT 1");
    assert_eq!(
        rows(&mut police, &top).await,
        vec![vec!["310115********3456"]]
    );
    let sql = sent(&mut police, kind, &top).await;
    assert!(sql.iter().all(|s| !s.contains("ORDER BY")), "{sql:?}");
}

/// A statement past its database's statement timeout is cancelled there and reported as
/// DeadlineExceeded naming the source, at once.
async fn timeout_reported(server: &Server, kind: &Kind) {
    let b = kind.bureau;
    let mut admin = server.login("admin").await;
    let started = Instant::now();
    let err = admin
        .query(&format!("SELECT * FROM {b}.slow"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    let m = err.message();
    assert!(
        m.contains(&format!("{b}_slow")) && m.contains("statement timeout"),
        "{m}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Every kind answers the same and sends what it may, for an admin and a police officer;
/// those with a statement timeout enforce it.
#[tokio::test]
async fn every_database_kind_answers_alike_and_keeps_masks_in_bund() {
    let test = "conformance-reads";
    let kinds = [
        Kind::postgres(test),
        Kind::mariadb(test),
        Kind::sqlite(test),
        Kind::flight_sql(test),
    ];
    let server = city(test, &kinds);
    every_kind("an admin's reads", &kinds, &server, |s, k| {
        Box::pin(admin_reads(s, k))
    })
    .await;
    every_kind("a police officer's reads", &kinds, &server, |s, k| {
        Box::pin(police_reads(s, k))
    })
    .await;
    let timed = kinds.iter().filter(|k| k.slow.is_some());
    every_kind("a statement timeout", timed, &server, |s, k| {
        Box::pin(timeout_reported(s, k))
    })
    .await;
}

/// A database server that goes down fails only the queries that read it, fast, as
/// Unavailable naming the source and not its credentials; when it is back, the same server
/// answers again without a restart. (SQLite is a file: it has no server to go down.)
#[tokio::test]
async fn every_database_server_that_goes_down_fails_alone_and_recovers() {
    let test = "conformance-down";
    let mut kinds = [
        Kind::postgres(test),
        Kind::mariadb(test),
        Kind::flight_sql(test),
    ];
    let server = city(test, &kinds);
    let mut failed = Vec::new();
    for kind in &mut kinds {
        let b = kind.bureau;
        let count = format!("SELECT count(*) FROM {b}.people");
        let mut admin = server.login("admin").await;
        assert_eq!(rows(&mut admin, &count).await, vec![vec!["4"]], "{b}");
        assert!(kind.stop(), "{b} has a server");
        let started = Instant::now();
        let outcome = admin.query(&count).await;
        let took = started.elapsed();
        match outcome {
            Ok(_) => failed.push(format!("  {b}: answered while down")),
            Err(e) => {
                let m = e.message();
                if e.code() != Code::Unavailable
                    || !m.contains(b)
                    || m.contains(PASSWORD)
                    || m.contains("admin-demo")
                {
                    failed.push(format!("  {b}: {e}"));
                }
            }
        }
        if took > Duration::from_secs(5) {
            failed.push(format!("  {b}: the failure took {took:?}"));
        }
        if rows(&mut admin, "SELECT count(*) > 0 FROM police.residents").await != vec![vec!["true"]]
        {
            failed.push(format!("  {b}: other bureaus stopped answering"));
        }
        kind.start_again();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match admin.query(&count).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline && e.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    failed.push(format!("  {b}: no recovery: {e}"));
                    break;
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
