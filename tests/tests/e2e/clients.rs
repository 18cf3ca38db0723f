//! The BI flow through drivers Bund did not write: the ADBC Flight SQL driver (Python) and
//! the Flight SQL JDBC driver (Java). `scripts/test-deps.sh` installs both; without them
//! these tests fail and say so.

use std::process::Command;

use datafusion::arrow::array::RecordBatch;
use serde_json::Value;

use crate::harness::{Raw, Server, column_strings, repo_root};

const QUERY: &str =
    "SELECT id_card, name, birth_date FROM police.residents ORDER BY id_card LIMIT 3";
const PREPARED: &str = "SELECT name, sex FROM police.residents WHERE id_card = ?";

fn env_or_install_hint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `bash scripts/test-deps.sh` and `source .cache/env.sh` (or use `bash scripts/test.sh`, which does both)")
    })
}

/// What the Rust client sees, to compare the drivers against.
async fn expected(server: &Server) -> (Vec<Vec<String>>, String, Vec<String>) {
    let mut c = server.login("pudong_police").await;
    let b = c.query(QUERY).await.unwrap();
    let rows: Vec<Vec<String>> = (0..3)
        .map(|i| {
            (0..3)
                .map(|col| column_strings(&b, col)[i].clone())
                .collect()
        })
        .collect();
    let id = rows[0][0].clone();
    let b = c
        .query(&format!(
            "SELECT name, sex FROM police.residents WHERE id_card = '{id}'"
        ))
        .await
        .unwrap();
    (
        rows,
        id,
        vec![
            column_strings(&b, 0)[0].clone(),
            column_strings(&b, 1)[0].clone(),
        ],
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            Value::Null => "NULL".to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn assert_bi_flow(driver: &str, out: &Value, rows: &[Vec<String>], prepared: &[String]) {
    assert_eq!(
        strings(&out["catalogs"]),
        vec!["bund"],
        "{driver}: catalogs"
    );
    // The Pudong police officer's catalog: the one table it was granted.
    let schemas = strings(&out["schemas"]["bund"]);
    assert_eq!(schemas, vec!["police"], "{driver}: schemas");
    let police = strings(&out["tables"]["police"]);
    assert_eq!(police, vec!["residents"], "{driver}: tables");
    assert!(
        out["tables"].get("topic").is_none(),
        "{driver}: {}",
        out["tables"]
    );
    let cols: Vec<String> = out["table_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cols,
        vec![
            "id_card",
            "name",
            "sex",
            "birth_date",
            "phone",
            "district_code",
            "address",
            "household_id"
        ],
        "{driver}"
    );
    let got: Vec<Vec<String>> = out["query_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(strings)
        .collect();
    assert_eq!(got, rows, "{driver}: query rows");
    // ID numbers arrive masked 6+4 through the driver too.
    for r in &got {
        assert_eq!(&r[0][6..14], "********", "{driver}: {r:?}");
    }
    let got: Vec<Vec<String>> = out["prepared_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(strings)
        .collect();
    assert_eq!(
        got,
        vec![prepared.to_vec()],
        "{driver}: prepared statement rows"
    );
}

fn run_json(mut cmd: Command, driver: &str) -> Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{driver}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{driver} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{driver}: bad JSON ({e}):\n{stdout}"))
}

#[tokio::test]
async fn adbc_python_driver_runs_the_bi_flow() {
    let python = env_or_install_hint("BUND_TEST_PYTHON");
    let server = Server::start();
    let (rows, id, prepared) = expected(&server).await;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/clients/adbc_bi.py"))
        .args([
            "--uri",
            &server.uri(),
            "--user",
            "pudong_police",
            "--password",
            "pudong_police-demo",
        ])
        .args([
            "--table",
            "police.residents",
            "--query",
            QUERY,
            "--prepared",
            PREPARED,
            "--param",
            &id,
        ]);
    let out = run_json(cmd, "ADBC");
    assert_bi_flow("ADBC", &out, &rows, &prepared);
}

#[tokio::test]
async fn jdbc_driver_runs_the_bi_flow() {
    let jar = env_or_install_hint("BUND_TEST_JDBC_JAR");
    let server = Server::start();
    let (rows, id, prepared) = expected(&server).await;
    let url = format!(
        "jdbc:arrow-flight-sql://{}/?useEncryption=false&user=pudong_police&password=pudong_police-demo",
        server.addr
    );
    let mut cmd = Command::new("java");
    cmd.arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
        .arg("-cp")
        .arg(jar)
        .arg(repo_root().join("tests/clients/JdbcBi.java"))
        .args([
            "--url",
            &url,
            "--table",
            "police.residents",
            "--query",
            QUERY,
            "--prepared",
            PREPARED,
            "--param",
            &id,
        ]);
    let out = run_json(cmd, "JDBC");
    assert_bi_flow("JDBC", &out, &rows, &prepared);
}

/// The city analyst through both drivers: the catalog of its grants only (topics and open
/// data), ID numbers as the same 32-hex tokens the Rust client gets, and a prepared
/// statement over a topic library.
#[tokio::test]
async fn drivers_see_the_city_analysts_catalog_and_tokens() {
    let server = Server::start();
    let flow = Flow {
        user: Some("city_analyst"),
        table: "topic.population",
        query: "SELECT id_card, name, district_code FROM topic.population ORDER BY id_card, month LIMIT 3",
        prepared: "SELECT count(*) AS n FROM topic.population WHERE district_code = ?",
        param: "310115",
    };
    let want = flow.expected(&server.addr).await;
    for (driver, out) in flow.run(&server.addr) {
        want.check(driver, &out, &["open", "topic"]);
        assert!(
            out["tables"].get("police").is_none(),
            "{driver}: {}",
            out["tables"]
        );
        for r in rows_of(&out["query_rows"]) {
            assert!(
                r[0].len() == 32 && r[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "{driver}: {r:?}"
            );
            assert!(r[1].contains('*'), "{driver}: {r:?}");
        }
    }
}

/// The other principals of the example, each through both drivers, as the security
/// catalog describes them: the market analyst (enterprises with representatives' ID
/// numbers masked 6+4, licences of enterprises only, no residents), the auditor (the audit
/// log and nothing else), the admin (everything, unmasked, but not the audit log) and a
/// client without any credentials (open data and the points of interest).
#[tokio::test]
async fn drivers_see_every_example_principal_as_described() {
    let server = Server::start();

    // market_analyst
    let mut admin = server.login("admin").await;
    let b = admin
        .query("SELECT licence_type FROM licence.licences WHERE uscc_valid(holder_id) ORDER BY licence_id LIMIT 1")
        .await
        .unwrap();
    let licence_type = column_strings(&b, 0)[0].clone();
    let flow = Flow {
        user: Some("market_analyst"),
        table: "market.enterprises",
        query: "SELECT uscc, legal_rep_id_card, status FROM market.enterprises ORDER BY uscc LIMIT 3",
        prepared: "SELECT count(*) AS n FROM licence.licences WHERE licence_type = ?",
        param: &licence_type,
    };
    let want = flow.expected(&server.addr).await;
    // Licences held by residents are not the market analyst's: fewer than the admin sees.
    let all = admin
        .query(&format!(
            "SELECT count(*) FROM licence.licences WHERE licence_type = '{licence_type}'"
        ))
        .await
        .unwrap();
    let all: i64 = column_strings(&all, 0)[0].parse().unwrap();
    let enterprises_only: i64 = want.prepared[0][0].parse().unwrap();
    assert!(
        0 < enterprises_only && enterprises_only < all,
        "{enterprises_only} of {all}"
    );
    for (driver, out) in flow.run(&server.addr) {
        want.check(driver, &out, &["licence", "market", "open", "topic"]);
        assert_eq!(strings(&out["tables"]["topic"]), vec!["legal_entity"]);
        assert_eq!(
            strings(&out["tables"]["open"]),
            vec!["enterprises_by_district"]
        );
        for r in rows_of(&out["query_rows"]) {
            let id = r[1].as_str();
            assert!(
                id.chars().count() == 18 && &id[6..14] == "********",
                "{driver}: {r:?}"
            );
        }
    }

    // auditor: a statement another principal ran is in the log, once as planned and once as
    // run, with its outcome.
    let marker = format!("SELECT 'drivers-{}' AS marker", server.addr);
    let mut police = server.login("pudong_police").await;
    police.query(&marker).await.unwrap();
    let mut auditor = server.login("auditor").await;
    let lookup = format!(
        "SELECT principal, rpc, outcome FROM system.audit_log WHERE statement = '{}' AND rpc = 'DoGet(Statement)'",
        marker.replace('\'', "''")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::harness::row_count(&auditor.query(&lookup).await.unwrap()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the query is not in the audit log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let flow = Flow {
        user: Some("auditor"),
        table: "system.audit_log",
        query: &lookup,
        // planned by GetFlightInfo, run by DoGet: one record each
        prepared: "SELECT count(*) AS n FROM system.audit_log WHERE statement = ? AND rpc = 'GetFlightInfo(Statement)'",
        param: &marker,
    };
    let want = flow.expected(&server.addr).await;
    assert_eq!(want.prepared, vec![vec!["1".to_string()]]);
    assert_eq!(want.query[0][0], "pudong_police");
    for (driver, out) in flow.run(&server.addr) {
        want.check(driver, &out, &["system"]);
    }

    // admin: every bureau, topic and open dataset, values unmasked; not the audit log.
    let flow = Flow {
        user: Some("admin"),
        table: "police.residents",
        query: "SELECT id_card, phone, name FROM police.residents ORDER BY id_card LIMIT 3",
        prepared: "SELECT count(*) AS n FROM police.residents WHERE district_code = ?",
        param: "310115",
    };
    let want = flow.expected(&server.addr).await;
    let bureaus = [
        "hrss", "licence", "market", "open", "planning", "police", "topic",
    ];
    for (driver, out) in flow.run(&server.addr) {
        want.check(driver, &out, &bureaus);
        for r in rows_of(&out["query_rows"]) {
            assert!(r.iter().all(|v| !v.contains('*')), "{driver}: {r:?}");
        }
    }

    // No credentials: the open schema and the points of interest, nothing else.
    let flow = Flow {
        user: None,
        table: "open.residents_by_district",
        query: "SELECT * FROM open.residents_by_district ORDER BY district_code, sex LIMIT 4",
        prepared: "SELECT count(*) AS n FROM planning.poi WHERE district_code = ?",
        param: "310115",
    };
    let want = flow.expected(&server.addr).await;
    for (driver, out) in flow.run(&server.addr) {
        want.check(driver, &out, &["open", "planning"]);
        assert_eq!(strings(&out["tables"]["planning"]), vec!["poi"]);
    }
}

/// One BI flow (see `tests/clients/adbc_bi.py`) as one principal; `None` connects without
/// credentials.
pub(crate) struct Flow<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) table: &'a str,
    pub(crate) query: &'a str,
    pub(crate) prepared: &'a str,
    pub(crate) param: &'a str,
}

/// What the Rust client sees for a [`Flow`], to compare the drivers against.
pub(crate) struct Expected {
    columns: Vec<String>,
    query: Vec<Vec<String>>,
    prepared: Vec<Vec<String>>,
}

impl Flow<'_> {
    /// What the Rust client sees, through a new connection to `addr`.
    pub(crate) async fn expected(&self, addr: &str) -> Expected {
        let mut c = match self.user {
            Some(user) => Raw::login(addr, user).await.expect("login"),
            None => Raw::connect(addr).await,
        };
        let (schema, table) = self.table.split_once('.').expect("schema.table");
        let columns = c
            .query(&format!("SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position"))
            .await
            .unwrap();
        let literal = format!("'{}'", self.param.replace('\'', "''"));
        let prepared = self.prepared.replace('?', &literal);
        Expected {
            columns: column_strings(&columns, 0),
            query: batch_rows(&c.query(self.query).await.unwrap()),
            prepared: batch_rows(&c.query(&prepared).await.unwrap()),
        }
    }

    /// The flow through the ADBC driver, then the JDBC driver, each connecting to `addr`.
    pub(crate) fn run(&self, addr: &str) -> Vec<(&'static str, Value)> {
        let python = env_or_install_hint("BUND_TEST_PYTHON");
        let jar = env_or_install_hint("BUND_TEST_JDBC_JAR");
        let args = [
            "--table",
            self.table,
            "--query",
            self.query,
            "--prepared",
            self.prepared,
            "--param",
            self.param,
        ];
        let mut adbc = Command::new(python);
        adbc.arg(repo_root().join("tests/clients/adbc_bi.py"))
            .args(["--uri", &format!("grpc://{addr}")]);
        let mut url = format!("jdbc:arrow-flight-sql://{addr}/?useEncryption=false");
        if let Some(user) = self.user {
            let password = format!("{user}-demo");
            adbc.args(["--user", user, "--password", &password]);
            url.push_str(&format!("&user={user}&password={password}"));
        }
        adbc.args(args);
        let mut jdbc = Command::new("java");
        jdbc.arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
            .arg("-cp")
            .arg(jar)
            .arg(repo_root().join("tests/clients/JdbcBi.java"))
            .args(["--url", &url])
            .args(args);
        vec![
            ("ADBC", run_json(adbc, "ADBC")),
            ("JDBC", run_json(jdbc, "JDBC")),
        ]
    }
}

impl Expected {
    /// The driver saw exactly `schemas` of catalog `bund`, the table's columns, and the
    /// Rust client's rows for both statements.
    pub(crate) fn check(&self, driver: &str, out: &Value, schemas: &[&str]) {
        let mut got = strings(&out["schemas"]["bund"]);
        got.sort();
        assert_eq!(got, schemas, "{driver}: schemas");
        let mut listed: Vec<&str> = out["tables"]
            .as_object()
            .expect("tables")
            .iter()
            .filter(|(_, t)| !t.as_array().is_some_and(Vec::is_empty))
            .map(|(s, _)| s.as_str())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, schemas, "{driver}: schemas with tables");
        let columns: Vec<String> = out["table_schema"]
            .as_array()
            .expect("table_schema")
            .iter()
            .map(|c| strings(c)[0].clone())
            .collect();
        assert_eq!(columns, self.columns, "{driver}: columns");
        assert_eq!(
            rows_of(&out["query_rows"]),
            self.query,
            "{driver}: query rows"
        );
        assert_eq!(
            rows_of(&out["prepared_rows"]),
            self.prepared,
            "{driver}: prepared rows"
        );
    }
}

fn rows_of(v: &Value) -> Vec<Vec<String>> {
    v.as_array().expect("rows").iter().map(strings).collect()
}

fn batch_rows(b: &[RecordBatch]) -> Vec<Vec<String>> {
    let Some(first) = b.first() else {
        return Vec::new();
    };
    let columns: Vec<Vec<String>> = (0..first.num_columns())
        .map(|c| column_strings(b, c))
        .collect();
    (0..columns[0].len())
        .map(|i| columns.iter().map(|c| c[i].clone()).collect())
        .collect()
}
