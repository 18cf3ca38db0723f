//! The BI flow through drivers Bund did not write: the ADBC Flight SQL driver (Python) and
//! the Flight SQL JDBC driver (Java). `scripts/test-deps.sh` installs both; without them
//! these tests fail and say so.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Server, column_strings, repo_root};

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
    let python = env_or_install_hint("BUND_TEST_PYTHON");
    let jar = env_or_install_hint("BUND_TEST_JDBC_JAR");
    let server = Server::start();
    let query =
        "SELECT id_card, name, district_code FROM topic.population ORDER BY id_card, month LIMIT 3";
    let prepared = "SELECT count(*) AS n FROM topic.population WHERE district_code = ?";
    let mut c = server.login("city_analyst").await;
    let b = c.query(query).await.unwrap();
    let rows: Vec<Vec<String>> = (0..3)
        .map(|i| {
            (0..3)
                .map(|col| column_strings(&b, col)[i].clone())
                .collect()
        })
        .collect();
    let b = c
        .query("SELECT count(*) AS n FROM topic.population WHERE district_code = '310115'")
        .await
        .unwrap();
    let count = column_strings(&b, 0)[0].clone();
    let args = [
        "--table",
        "topic.population",
        "--query",
        query,
        "--prepared",
        prepared,
        "--param",
        "310115",
    ];
    let mut adbc = Command::new(python);
    adbc.arg(repo_root().join("tests/clients/adbc_bi.py"))
        .args(["--uri", &server.uri()])
        .args(["--user", "city_analyst", "--password", "city_analyst-demo"])
        .args(args);
    let url = format!(
        "jdbc:arrow-flight-sql://{}/?useEncryption=false&user=city_analyst&password=city_analyst-demo",
        server.addr
    );
    let mut jdbc = Command::new("java");
    jdbc.arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
        .arg("-cp")
        .arg(jar)
        .arg(repo_root().join("tests/clients/JdbcBi.java"))
        .args(["--url", &url])
        .args(args);
    for (driver, cmd) in [("ADBC", adbc), ("JDBC", jdbc)] {
        let out = run_json(cmd, driver);
        let mut schemas = strings(&out["schemas"]["bund"]);
        schemas.sort();
        assert_eq!(schemas, vec!["open", "topic"], "{driver}: schemas");
        assert!(
            out["tables"].get("police").is_none(),
            "{driver}: {}",
            out["tables"]
        );
        let got: Vec<Vec<String>> = out["query_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        assert_eq!(got, rows, "{driver}: query rows");
        for r in &got {
            assert!(
                r[0].len() == 32 && r[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "{driver}: {r:?}"
            );
            assert!(r[1].contains('*'), "{driver}: {r:?}");
        }
        let got: Vec<Vec<String>> = out["prepared_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        assert_eq!(got, vec![vec![count.clone()]], "{driver}: prepared rows");
    }
}
