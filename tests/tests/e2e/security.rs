//! The adversarial suite: principals of the Shanghai example (plus a few added here for the
//! edge cases) try to get around the security catalog through a real Flight SQL client.
//! Every attempt asserts the exact safe outcome: the rows, the masked values or the status.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use arrow_flight::Ticket;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, CommandStatementQuery};
use datafusion::arrow::array::{Array, BinaryArray};
use datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer;
use tonic::Code;

use crate::harness::{RESIDENTS, Raw, Server, column_strings, example_config, row_count};

/// The key of the city's tokens in these tests: it must never reach a client.
const TOKEN_KEY: &str = "e2e-city-token-key-0123456789abcdef";

/// Principals added to the example for the edge cases; all log in with `extra-demo`.
const EXTRA: &str = r#"
# --- added by the adversarial suite ---
[[role]]
id = "resident_reader"
description = "Reads residents under the default rule (tests deny-columns)."

[[grant]]
roles = ["resident_reader"]
datasets = ["police.residents"]

[[principal]]
id = "analyst2"
roles = ["resident_reader"]
password_hash = "HASH"

[[principal]]
id = "injector"
roles = ["police_officer"]
password_hash = "HASH"
attributes = { districts = ["310115') OR (1=1", "310115' OR '1'='1"] }

[[principal]]
id = "no_districts"
roles = ["police_officer"]
password_hash = "HASH"

[[principal]]
id = "empty_districts"
roles = ["police_officer"]
password_hash = "HASH"
attributes = { districts = [] }

[[principal]]
id = "police_and_market"
roles = ["police_officer", "market_analyst"]
password_hash = "HASH"
attributes = { districts = ["310115"] }

[[principal]]
id = "police_and_admin"
roles = ["police_officer", "admin"]
password_hash = "HASH"
attributes = { districts = ["310115"] }
"#;

/// An API key made by `bund new-api-key` for the service account `etl_service`.
fn api_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let out = std::process::Command::new(crate::harness::bund_bin())
            .args(["new-api-key", "--id", "etl"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let key = text
            .lines()
            .find_map(|l| l.split_once("): ").map(|(_, k)| k.to_string()))
            .unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("api_keys = "))
            .unwrap()
            .to_string();
        (key, line)
    })
}

/// The example's config plus [`EXTRA`], with the password hash of `city_analyst-demo`.
fn config() -> &'static PathBuf {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = example_config("adversarial", None);
        let path = dir.join("security.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let at = text.find("[[principal]]\nid = \"city_analyst\"").unwrap();
        let hash_line = text[at..]
            .lines()
            .find(|l| l.starts_with("password_hash"))
            .unwrap();
        let hash = hash_line
            .trim_start_matches("password_hash = \"")
            .trim_end_matches('"');
        let service = format!(
            "\n[[principal]]\nid = \"etl_service\"\nkind = \"service\"\nroles = [\"resident_reader\"]\n{}\n",
            api_key().1
        );
        std::fs::write(
            &path,
            format!("{text}{}{service}", EXTRA.replace("HASH", hash)),
        )
        .unwrap();
        dir
    })
}

fn start() -> Server {
    Server::start_with_env(config(), &[("BUND_SECRET_CITY_TOKEN", TOKEN_KEY)])
}

async fn login(server: &Server, user: &str) -> Raw {
    let mut c = server.client().await;
    let password = if server_has_extra(user) {
        "city_analyst-demo".to_string()
    } else {
        format!("{user}-demo")
    };
    c.handshake_basic(&format!("{user}:{password}"), true)
        .await
        .unwrap_or_else(|e| panic!("login {user}: {e}"));
    c
}

fn server_has_extra(user: &str) -> bool {
    EXTRA.contains(&format!("id = \"{user}\""))
}

async fn strings(c: &mut Raw, sql: &str) -> Vec<String> {
    let b = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    column_strings(&b, 0)
}

async fn count(c: &mut Raw, sql: &str) -> i64 {
    let v = strings(c, sql).await;
    assert_eq!(v.len(), 1, "{sql}: {v:?}");
    v[0].parse().unwrap()
}

async fn code(c: &mut Raw, sql: &str) -> (Code, String) {
    match c.query(sql).await {
        Ok(b) => panic!("{sql} was answered with {} rows", row_count(&b)),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

/// Ground truth, read by the admin (every row, unmasked).
struct Truth {
    pudong: i64,
    /// A raw ID number of a Pudong resident and one of a resident elsewhere.
    pudong_id: String,
    hidden_id: String,
    pudong_birth_min: String,
    pudong_birth_max: String,
    population_rows: i64,
}

async fn truth(server: &Server) -> Truth {
    let mut a = login(server, "admin").await;
    let pudong = count(
        &mut a,
        "SELECT count(*) FROM police.residents WHERE district_code = '310115'",
    )
    .await;
    let pudong_id = strings(
        &mut a,
        "SELECT id_card FROM police.residents WHERE district_code = '310115' ORDER BY id_card LIMIT 1",
    )
    .await[0]
        .clone();
    let hidden_id = strings(
        &mut a,
        "SELECT id_card FROM police.residents WHERE district_code <> '310115' ORDER BY id_card LIMIT 1",
    )
    .await[0]
        .clone();
    let b = a
        .query("SELECT CAST(CAST(min(date_trunc('year', birth_date)) AS DATE) AS VARCHAR), CAST(CAST(max(date_trunc('year', birth_date)) AS DATE) AS VARCHAR) FROM police.residents WHERE district_code = '310115'")
        .await
        .unwrap();
    let population_rows = count(&mut a, "SELECT count(*) FROM topic.population").await;
    assert!(pudong > 0 && pudong < RESIDENTS as i64, "{pudong}");
    Truth {
        pudong,
        pudong_id,
        hidden_id,
        pudong_birth_min: column_strings(&b, 0)[0].clone(),
        pudong_birth_max: column_strings(&b, 1)[0].clone(),
        population_rows,
    }
}

fn assert_masked_id(v: &str) {
    assert!(
        v.len() == 18 && &v[6..14] == "********",
        "not masked 6+4: {v}"
    );
}

#[tokio::test]
async fn row_filter_is_a_barrier_no_oracle_reaches_hidden_rows() {
    let server = start();
    let t = truth(&server).await;
    let mut p = login(&server, "pudong_police").await;

    // 1. The plain view: only Pudong's residents.
    assert_eq!(
        count(&mut p, "SELECT count(*) FROM police.residents").await,
        t.pudong
    );
    // 2. Division oracle on hidden rows: a plain Filter would raise "Divide by zero".
    assert_eq!(
        count(&mut p, "SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN district_code <> '310115' THEN 0 ELSE 1 END) = 1").await,
        t.pudong
    );
    // 3. Division oracle aimed at one hidden person's raw ID number.
    assert_eq!(
        count(&mut p, &format!("SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN id_card = '{}' THEN 0 ELSE 1 END) = 1", t.hidden_id)).await,
        t.pudong
    );
    // 4. CAST oracle that would echo a hidden name in its error.
    assert_eq!(
        strings(&mut p, "SELECT DISTINCT CAST(CASE WHEN district_code <> '310115' THEN name ELSE '1' END AS INT) FROM police.residents").await,
        vec!["1"]
    );
    // 5. The same oracles inside EXPLAIN ANALYZE run without error.
    let b = p
        .query("EXPLAIN ANALYZE SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN district_code <> '310115' THEN 0 ELSE 1 END) = 1")
        .await
        .unwrap();
    assert!(
        column_strings(&b, 1)
            .iter()
            .any(|s| s.contains("BarrierExec"))
    );
    // 6. Hidden districts are simply absent.
    assert_eq!(
        count(
            &mut p,
            "SELECT count(*) FROM police.residents WHERE district_code = '310101'"
        )
        .await,
        0
    );
    // 7. An aggregate FILTER over hidden rows.
    assert_eq!(
        count(
            &mut p,
            "SELECT count(*) FILTER (WHERE district_code <> '310115') FROM police.residents"
        )
        .await,
        0
    );
    // 8. ORDER BY … DESC LIMIT 1 cannot reach past the filter.
    assert_eq!(
        strings(
            &mut p,
            "SELECT district_code FROM police.residents ORDER BY district_code DESC LIMIT 1"
        )
        .await,
        vec!["310115"]
    );
    // 9. COUNT/MIN/MAX are computed over the visible rows, never from file statistics.
    let b = p
        .query("SELECT count(*), CAST(min(birth_date) AS VARCHAR), CAST(max(birth_date) AS VARCHAR) FROM police.residents")
        .await
        .unwrap();
    assert_eq!(column_strings(&b, 0), vec![t.pudong.to_string()]);
    assert_eq!(column_strings(&b, 1), vec![t.pudong_birth_min.clone()]);
    assert_eq!(column_strings(&b, 2), vec![t.pudong_birth_max.clone()]);
    let b = p
        .query("EXPLAIN SELECT count(*) FROM police.residents")
        .await
        .unwrap();
    let plan = column_strings(&b, 1).join("\n");
    assert!(
        plan.contains("BarrierExec") && plan.contains("DataSourceExec"),
        "{plan}"
    );
    // 10. Subqueries: IN, EXISTS, scalar.
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents WHERE district_code IN (SELECT district_code FROM police.residents WHERE district_code <> '310115')").await, 0);
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents r WHERE EXISTS (SELECT 1 FROM police.residents h WHERE h.district_code = '310101')").await, 0);
    assert_eq!(
        count(&mut p, "SELECT (SELECT count(*) FROM police.residents)").await,
        t.pudong
    );
    // 11. CTEs, also one that shadows the table's own name.
    assert_eq!(count(&mut p, "WITH r AS (SELECT * FROM police.residents) SELECT count(*) FROM r WHERE district_code <> '310115'").await, 0);
    assert_eq!(
        count(
            &mut p,
            "WITH residents AS (SELECT * FROM police.residents) SELECT count(*) FROM residents"
        )
        .await,
        t.pudong
    );
    // 12. A recursive CTE joined with the table.
    assert_eq!(
        count(&mut p, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT count(*) FROM n, police.residents").await,
        3 * t.pudong
    );
    // 13. UNION of two scans: both filtered.
    assert_eq!(count(&mut p, "SELECT count(*) FROM (SELECT district_code FROM police.residents UNION ALL SELECT district_code FROM police.residents) u").await, 2 * t.pudong);
    // 14. A self-join looking for households across districts.
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents a JOIN police.residents b ON a.household_id = b.household_id WHERE b.district_code <> '310115'").await, 0);
    // 15. Quoting, case and qualification variants reach the same protected table.
    for name in [
        "\"police\".\"residents\"",
        "POLICE.RESIDENTS",
        "bund.police.residents",
        "Police.Residents",
    ] {
        assert_eq!(
            count(&mut p, &format!("SELECT count(*) FROM {name}")).await,
            t.pudong,
            "{name}"
        );
    }
    assert_eq!(
        code(&mut p, "SELECT count(*) FROM \"POLICE\".\"RESIDENTS\"")
            .await
            .0,
        Code::NotFound
    );
}

#[tokio::test]
async fn masked_columns_stay_masked_wherever_they_are_used() {
    let server = start();
    let t = truth(&server).await;
    let mut p = login(&server, "pudong_police").await;

    // 16. Every ID number, phone and name as the police officer sees them.
    let b = p
        .query("SELECT id_card, phone, name FROM police.residents")
        .await
        .unwrap();
    for id in column_strings(&b, 0) {
        assert_masked_id(&id);
    }
    for phone in column_strings(&b, 1)
        .iter()
        .filter(|s| !s.is_empty() && *s != "NULL")
    {
        assert_eq!(&phone[3..7], "****", "{phone}");
    }
    for name in column_strings(&b, 2) {
        assert!(name.contains('*'), "{name}");
    }
    // 17. WHERE on a raw value of a visible row finds nothing: the column holds masks.
    assert_eq!(
        count(
            &mut p,
            &format!(
                "SELECT count(*) FROM police.residents WHERE id_card = '{}'",
                t.pudong_id
            )
        )
        .await,
        0
    );
    // 18. LIKE on the hidden digits.
    assert_eq!(
        count(
            &mut p,
            &format!(
                "SELECT count(*) FROM police.residents WHERE id_card LIKE '%{}%'",
                &t.pudong_id[6..14]
            )
        )
        .await,
        0
    );
    // 19. substr of the hidden part.
    assert_eq!(
        strings(
            &mut p,
            "SELECT DISTINCT substr(id_card, 7, 8) FROM police.residents"
        )
        .await,
        vec!["********"]
    );
    // 20. length tells nothing but the format's.
    assert_eq!(
        strings(
            &mut p,
            "SELECT DISTINCT length(id_card) FROM police.residents"
        )
        .await,
        vec!["18"]
    );
    // 21. JOIN with a list of raw ID numbers.
    assert_eq!(
        count(&mut p, &format!("SELECT count(*) FROM (VALUES ('{}'), ('{}')) v(x) JOIN police.residents r ON r.id_card = v.x", t.pudong_id, t.hidden_id)).await,
        0
    );
    // 22. GROUP BY the masked column: groups of masks.
    for id in strings(
        &mut p,
        "SELECT id_card FROM police.residents GROUP BY id_card",
    )
    .await
    {
        assert_masked_id(&id);
    }
    // 23. ORDER BY the masked column and a window over it.
    for id in strings(
        &mut p,
        "SELECT id_card FROM police.residents ORDER BY id_card DESC LIMIT 5",
    )
    .await
    {
        assert_masked_id(&id);
    }
    let b = p
        .query("SELECT id_card, row_number() OVER (ORDER BY id_card) FROM police.residents LIMIT 5")
        .await
        .unwrap();
    for id in column_strings(&b, 0) {
        assert_masked_id(&id);
    }
    // 24. A CAST error shows the masked value it failed on, never the raw one.
    let (c, message) = code(
        &mut p,
        "SELECT CAST(id_card AS BIGINT) FROM police.residents",
    )
    .await;
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("********"), "{message}");
    assert!(!message.contains(&t.pudong_id), "{message}");
    // 25. The policy-only token function cannot be called, in any spelling.
    for sql in [
        "SELECT mask_token(id_card, 'city_token') FROM police.residents",
        "SELECT MASK_TOKEN('310101199003071236', 'city_token')",
        "SELECT \"mask_token\"('310101199003071236', 'city_token')",
        "SELECT count(*) FROM police.residents WHERE mask_token(id_card, 'city_token') = 'x'",
    ] {
        assert_eq!(code(&mut p, sql).await.0, Code::PermissionDenied, "{sql}");
    }
}

#[tokio::test]
async fn attributes_roles_and_deny_columns_resolve_as_declared() {
    let server = start();
    let t = truth(&server).await;

    // 26. Attribute values that look like SQL are literals: no resident matches them.
    let mut inj = login(&server, "injector").await;
    assert_eq!(
        count(&mut inj, "SELECT count(*) FROM police.residents").await,
        0
    );
    // 27. A missing attribute, and an empty list, mean no rows (and no error).
    for user in ["no_districts", "empty_districts"] {
        let mut c = login(&server, user).await;
        assert_eq!(
            count(&mut c, "SELECT count(*) FROM police.residents").await,
            0,
            "{user}"
        );
    }
    // 28. Two roles: the grants add up; each dataset keeps its own policy.
    let mut pm = login(&server, "police_and_market").await;
    assert_eq!(
        count(&mut pm, "SELECT count(*) FROM police.residents").await,
        t.pudong
    );
    for id in strings(
        &mut pm,
        "SELECT legal_rep_id_card FROM market.enterprises LIMIT 20",
    )
    .await
    {
        assert_masked_id(&id);
    }
    assert_eq!(
        code(&mut pm, "SELECT * FROM topic.population").await.0,
        Code::NotFound
    );
    // 29. Two rules at once: row filters are ORed (admin's has none), the most
    // restrictive mask wins (police's 6+4 over admin's raw).
    let mut pa = login(&server, "police_and_admin").await;
    assert_eq!(
        count(&mut pa, "SELECT count(*) FROM police.residents").await,
        RESIDENTS as i64
    );
    for id in strings(&mut pa, "SELECT id_card FROM police.residents LIMIT 50").await {
        assert_masked_id(&id);
    }
    // 30. A denied column does not exist for the principal: not in SELECT *, not by name,
    // not in information_schema, not in DESCRIBE, not in the Flight table schema.
    let mut a2 = login(&server, "analyst2").await;
    let b = a2
        .query("SELECT * FROM police.residents LIMIT 1")
        .await
        .unwrap();
    let cols: Vec<String> = b[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert!(
        !cols.contains(&"phone".to_string()) && cols.contains(&"id_card".to_string()),
        "{cols:?}"
    );
    assert_eq!(
        code(&mut a2, "SELECT phone FROM police.residents").await.0,
        Code::InvalidArgument
    );
    assert!(
        !strings(
            &mut a2,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'residents'"
        )
        .await
        .contains(&"phone".to_string())
    );
    assert!(
        !strings(&mut a2, "DESCRIBE police.residents")
            .await
            .contains(&"phone".to_string())
    );
    let (_, _, b) = a2
        .fetch(CommandGetTables {
            include_schema: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let schemas = b[0]
        .column(4)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap();
    let schema = try_schema_from_ipc_buffer(schemas.value(0)).unwrap();
    assert!(schema.field_with_name("phone").is_err(), "{schema:?}");
    // 31. Under the default rule ID numbers are 32-hex tokens and names keep the surname.
    for id in strings(&mut a2, "SELECT id_card FROM police.residents LIMIT 20").await {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // 32. A service account's API key in `x-api-key` acts as that account; a wrong key is
    // refused and does not fall back to anonymous access.
    let mut svc = server.client().await;
    svc.api_key = Some(api_key().0.clone());
    assert_eq!(
        count(&mut svc, "SELECT count(*) FROM police.residents").await,
        RESIDENTS as i64
    );
    svc.api_key = Some(format!("{}x", api_key().0));
    assert_eq!(
        code(&mut svc, "SELECT count(*) FROM open.residents_by_district")
            .await
            .0,
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn topic_libraries_apply_the_bureau_policies_of_the_invoking_principal() {
    let server = start();
    let t = truth(&server).await;
    let mut ca = login(&server, "city_analyst").await;

    // 33. A grant on the topic is enough; the bureau tables stay invisible.
    assert_eq!(
        code(&mut ca, "SELECT * FROM police.residents").await.0,
        Code::NotFound
    );
    assert_eq!(
        code(&mut ca, "SELECT * FROM hrss.contributions").await.0,
        Code::NotFound
    );
    // 34. Inside the topic, residents' and contributions' ID numbers are tokens of the same
    // key: the join on them finds exactly the rows the raw join finds.
    assert_eq!(
        count(&mut ca, "SELECT count(*) FROM topic.population").await,
        t.population_rows
    );
    for id in strings(&mut ca, "SELECT id_card FROM topic.population LIMIT 20").await {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // 35. The token of a raw ID number cannot be computed to find a person.
    assert_eq!(
        code(
            &mut ca,
            &format!(
                "SELECT * FROM topic.population WHERE id_card = mask_token('{}', 'city_token')",
                t.pudong_id
            )
        )
        .await
        .0,
        Code::PermissionDenied
    );
    // 36. EXPLAIN shows the key's name, never the key.
    let b = ca
        .query("EXPLAIN VERBOSE SELECT * FROM topic.population")
        .await
        .unwrap();
    let plan = column_strings(&b, 1).join("\n");
    assert!(plan.contains("city_token"), "{plan}");
    assert!(!plan.contains(TOKEN_KEY), "the key leaked into EXPLAIN");
    // 37. The police officer's EXPLAIN shows its own district, no other principal's.
    let mut p = login(&server, "pudong_police").await;
    let b = p
        .query("EXPLAIN SELECT * FROM police.residents")
        .await
        .unwrap();
    let plan = column_strings(&b, 1).join("\n");
    assert!(
        plan.contains("310115") && plan.contains("SecurityBarrier"),
        "{plan}"
    );
    assert!(!plan.contains("OR (1=1"), "{plan}");
    // 38. market_analyst: enterprises masked 6+4, licences of enterprises only, no residents.
    let mut m = login(&server, "market_analyst").await;
    for id in strings(
        &mut m,
        "SELECT legal_rep_id_card FROM market.enterprises LIMIT 20",
    )
    .await
    {
        assert_masked_id(&id);
    }
    assert_eq!(
        count(
            &mut m,
            "SELECT count(*) FROM licence.licences WHERE NOT uscc_valid(holder_id)"
        )
        .await,
        0
    );
    for sql in [
        "SELECT * FROM police.residents",
        "SELECT * FROM topic.population",
    ] {
        assert_eq!(code(&mut m, sql).await.0, Code::NotFound, "{sql}");
    }
}

#[tokio::test]
async fn catalogs_metadata_and_anonymous_access_show_only_what_is_granted() {
    let server = start();
    let t = truth(&server).await;

    // 39. Not granted looks exactly like not existing.
    let mut p = login(&server, "pudong_police").await;
    let (c1, m1) = code(&mut p, "SELECT * FROM market.enterprises").await;
    let (c2, m2) = code(&mut p, "SELECT * FROM market.nothing").await;
    assert_eq!((c1, c2), (Code::NotFound, Code::NotFound));
    assert_eq!(m1.replace("enterprises", "X"), m2.replace("nothing", "X"));
    // 40. information_schema and every Flight metadata RPC list the grant only.
    assert_eq!(
        strings(&mut p, "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema <> 'information_schema'").await,
        vec!["police.residents"]
    );
    let (_, _, b) = p.fetch(CommandGetDbSchemas::default()).await.unwrap();
    assert_eq!(column_strings(&b, 1), vec!["police"]);
    let (_, _, b) = p.fetch(CommandGetTables::default()).await.unwrap();
    assert_eq!(column_strings(&b, 2), vec!["residents"]);
    let b = p.query("SHOW TABLES").await.unwrap();
    assert!(
        !column_strings(&b, 1)
            .iter()
            .any(|s| s == "market" || s == "topic")
    );

    // 41. No credentials at all: the open schema and unconditionally open tables only.
    let mut anon = server.client().await;
    let (_, _, b) = anon.fetch(CommandGetTables::default()).await.unwrap();
    let mut names: Vec<String> = column_strings(&b, 1)
        .into_iter()
        .zip(column_strings(&b, 2))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "open.enterprises_by_district",
            "open.residents_by_district",
            "planning.poi"
        ]
    );
    assert_eq!(
        code(&mut anon, "SELECT * FROM police.residents").await.0,
        Code::NotFound
    );
    assert_eq!(
        code(&mut anon, "SELECT * FROM topic.population").await.0,
        Code::NotFound
    );
    // Open data built from residents is counts, and they add up to every resident.
    assert_eq!(
        count(
            &mut anon,
            "SELECT CAST(sum(residents) AS BIGINT) FROM open.residents_by_district"
        )
        .await,
        RESIDENTS as i64
    );
    assert!(
        count(&mut anon, "SELECT CAST(sum(residents) AS BIGINT) FROM open.residents_by_district WHERE district_code = '310115'").await
            == t.pudong
    );
    // 42. The audit log is the auditor's alone.
    assert_eq!(
        code(&mut p, "SELECT * FROM system.audit_log").await.0,
        Code::NotFound
    );
    let mut admin = login(&server, "admin").await;
    assert_eq!(
        code(&mut admin, "SELECT * FROM system.audit_log").await.0,
        Code::NotFound
    );
}

#[tokio::test]
async fn every_refused_statement_type_is_permission_denied() {
    let server = start();
    let mut p = login(&server, "admin").await;
    // 43. Writes, DDL, session changes, file access and PREPARE in SQL.
    for sql in [
        "INSERT INTO police.residents VALUES ('x')",
        "UPDATE police.residents SET name = 'x'",
        "DELETE FROM police.residents",
        "CREATE TABLE t AS SELECT * FROM police.residents",
        "CREATE VIEW v AS SELECT * FROM police.residents",
        "DROP TABLE police.residents",
        "COPY police.residents TO '/tmp/out.parquet'",
        "SET datafusion.execution.collect_statistics = true",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'",
        "CREATE FUNCTION f(DOUBLE) RETURNS DOUBLE RETURN $1 + 1",
        "PREPARE p AS SELECT * FROM police.residents",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        let (c, m) = code(&mut p, sql).await;
        assert_eq!(c, Code::PermissionDenied, "{sql}: {m}");
    }
    // Table functions that read nothing still work.
    assert_eq!(
        row_count(
            &p.query("SELECT * FROM generate_series(1, 3)")
                .await
                .unwrap()
        ),
        3
    );
}

#[tokio::test]
async fn tickets_and_handles_die_with_the_policy_version_and_refusals_are_audited() {
    let config = example_config("adversarial-reload", None);
    let server = Server::start_with(&config);
    let mut p = server.login("pudong_police").await;
    // 44. A ticket issued under one policy version is refused under the next.
    let info = p
        .info(CommandStatementQuery {
            query: "SELECT count(*) FROM police.residents".into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket: Ticket = info.endpoint[0].ticket.clone().unwrap();
    assert!(p.get(ticket.clone()).await.is_ok());
    let path = config.join("security.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n# policy change\n")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let err = loop {
        match p.get(ticket.clone()).await {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(_) => panic!("the old ticket still works 20 s after the policy changed"),
        }
    };
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("security catalog changed"),
        "{}",
        err.message()
    );
    // 45. An invalid new version keeps the old one serving: once the server has logged
    // that it refused the new version, the old one still answers.
    const REFUSED: &str = "the new configuration is invalid; still serving the previous one";
    let refused_before = server.log_count(REFUSED);
    std::fs::write(
        &path,
        format!("{text}\n[[grant]]\nroles = [\"no_such_role\"]\nschemas = [\"police\"]\n"),
    )
    .unwrap();
    server
        .wait_for_log(REFUSED, refused_before, Duration::from_secs(20))
        .await;
    assert_eq!(
        column_strings(
            &p.query("SELECT count(*) FROM police.residents")
                .await
                .unwrap(),
            0
        )
        .len(),
        1
    );
    // 46. Refusals and queries are in the audit log, with datasets and policies.
    let _ = p
        .query("SELECT * FROM market.enterprises")
        .await
        .unwrap_err();
    let mut auditor = server.login("auditor").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let b = auditor
            .query("SELECT outcome, code, statement, policies FROM system.audit_log WHERE principal = 'pudong_police' ORDER BY time")
            .await
            .unwrap();
        let outcomes = column_strings(&b, 0);
        let codes = column_strings(&b, 1);
        let policies = column_strings(&b, 3);
        let refused = outcomes
            .iter()
            .zip(&codes)
            .any(|(o, c)| o == "refused" && c == "NotFound");
        let ok_with_policy = outcomes
            .iter()
            .zip(&policies)
            .any(|(o, p)| o == "ok" && p.contains("residents/police_officer"));
        if refused && ok_with_policy {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit log: {outcomes:?} {codes:?} {policies:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The plan of `sql` as one string, and the predicate of the Parquet scan of `file`
/// (empty when the scan has none).
async fn scan_line(c: &mut Raw, sql: &str, file: &str) -> (String, String) {
    let b = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = column_strings(&b, 1).join("\n");
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec") && l.contains(file))
        .unwrap_or_else(|| panic!("no scan of {file}:\n{plan}"));
    let predicate = scan
        .split_once(" predicate=")
        .map_or("", |(_, p)| {
            p.split_once(", pruning_predicate=").map_or(p, |(p, _)| p)
        })
        .to_string();
    (plan, predicate)
}

#[tokio::test]
async fn only_predicates_that_cannot_fail_move_below_the_barrier() {
    let server = start();
    let t = truth(&server).await;
    let mut a = login(&server, "admin").await;
    let mut p = login(&server, "pudong_police").await;

    // 47. A comparison of an unmasked column with a literal reaches the Parquet scan (for
    //     pruning) next to the row filter, and the answer is the same.
    let sql =
        "SELECT count(*) FROM police.residents WHERE household_id >= 'H3101155' AND sex = 'F'";
    let (plan, scan) = scan_line(&mut p, sql, "residents").await;
    assert!(
        scan.contains("household_id") && scan.contains("sex") && scan.contains("310115"),
        "{plan}"
    );
    assert_eq!(
        count(&mut p, sql).await,
        count(&mut a, &format!("{sql} AND district_code = '310115'")).await
    );
    // 48. A predicate on a masked column compares the masked value: it stays above the
    //     barrier, and a raw ID number matches nothing.
    let sql = format!(
        "SELECT count(*) FROM police.residents WHERE id_card = '{}'",
        t.pudong_id
    );
    let (plan, scan) = scan_line(&mut p, &sql, "residents").await;
    assert!(!scan.contains("id_card"), "{plan}");
    assert_eq!(count(&mut p, &sql).await, 0);
    // 49. Predicates that can fail stay above it: arithmetic, CASE, a cast that can fail,
    //     a function call.
    for (sql, column) in [
        (
            "SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN district_code <> '310115' THEN 0 ELSE 1 END) = 1",
            "CASE",
        ),
        (
            "SELECT count(*) FROM police.residents WHERE CAST(household_id AS BIGINT) > 0",
            "household_id",
        ),
        (
            "SELECT count(*) FROM police.residents WHERE length(address) > 1000",
            "address",
        ),
    ] {
        let (plan, scan) = scan_line(&mut p, sql, "residents").await;
        assert!(!scan.contains(column), "{sql}:\n{plan}");
    }
    // 50. Through a topic library: the analyst's district reaches the residents' scan, the
    //     tokenised ID number does not.
    let mut ca = login(&server, "city_analyst").await;
    let sql = format!(
        "SELECT count(*) FROM topic.population WHERE district_code = '310115' AND id_card <> '{}'",
        t.pudong_id
    );
    let (plan, scan) = scan_line(&mut ca, &sql, "residents").await;
    assert!(
        scan.contains("310115") && !scan.contains("id_card"),
        "{plan}"
    );
    assert!(count(&mut ca, &sql).await > 0);
}
