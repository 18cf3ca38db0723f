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

/// The server of every test here that leaves the configuration as it is: started by the
/// first of them, stopped when the test process ends. Each test is one attempt at getting
/// around a policy, so that a report lists every one that got through.
fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    // In-process: it ends with the test process.
    SERVER
        .get_or_init(|| Server::start_with_env(config(), &[("BUND_SECRET_CITY_TOKEN", TOKEN_KEY)]))
}

/// The ground truth, read once by the admin of the shared server.
async fn truth() -> &'static Truth {
    static TRUTH: tokio::sync::OnceCell<Truth> = tokio::sync::OnceCell::const_new();
    TRUTH.get_or_init(|| read_truth(shared())).await
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

async fn read_truth(server: &Server) -> Truth {
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

/// The plain view: only Pudong's residents.
#[tokio::test]
async fn the_police_officer_counts_only_pudongs_residents() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(&mut p, "SELECT count(*) FROM police.residents").await,
        t.pudong
    );
}

/// Division oracle on hidden rows: a plain Filter would raise "Divide by zero".
#[tokio::test]
async fn a_division_that_fails_on_hidden_rows_raises_no_error() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(&mut p, "SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN district_code <> '310115' THEN 0 ELSE 1 END) = 1").await,
        t.pudong
    );
}

/// Division oracle aimed at one hidden person's raw ID number.
#[tokio::test]
async fn a_division_aimed_at_a_hidden_id_number_raises_no_error() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(&mut p, &format!("SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN id_card = '{}' THEN 0 ELSE 1 END) = 1", t.hidden_id)).await,
        t.pudong
    );
}

/// CAST oracle that would echo a hidden name in its error.
#[tokio::test]
async fn a_cast_that_would_echo_a_hidden_name_raises_no_error() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        strings(&mut p, "SELECT DISTINCT CAST(CASE WHEN district_code <> '310115' THEN name ELSE '1' END AS INT) FROM police.residents").await,
        vec!["1"]
    );
}

/// The same oracles inside EXPLAIN ANALYZE run without error.
#[tokio::test]
async fn the_oracles_run_inside_explain_analyze_without_error() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    let b = p
        .query("EXPLAIN ANALYZE SELECT count(*) FROM police.residents WHERE 1/(CASE WHEN district_code <> '310115' THEN 0 ELSE 1 END) = 1")
        .await
        .unwrap();
    assert!(
        column_strings(&b, 1)
            .iter()
            .any(|s| s.contains("BarrierExec"))
    );
}

/// Hidden districts are simply absent.
#[tokio::test]
async fn hidden_districts_are_absent() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(
            &mut p,
            "SELECT count(*) FROM police.residents WHERE district_code = '310101'"
        )
        .await,
        0
    );
}

/// An aggregate FILTER over hidden rows.
#[tokio::test]
async fn an_aggregate_filter_over_hidden_rows_counts_none() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(
            &mut p,
            "SELECT count(*) FILTER (WHERE district_code <> '310115') FROM police.residents"
        )
        .await,
        0
    );
}

/// ORDER BY … DESC LIMIT 1 cannot reach past the filter.
#[tokio::test]
async fn order_by_desc_limit_cannot_reach_past_the_row_filter() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        strings(
            &mut p,
            "SELECT district_code FROM police.residents ORDER BY district_code DESC LIMIT 1"
        )
        .await,
        vec!["310115"]
    );
}

/// COUNT/MIN/MAX are computed over the visible rows, never from file statistics.
#[tokio::test]
async fn count_min_and_max_come_from_visible_rows_not_file_statistics() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
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
}

/// Subqueries: IN, EXISTS, scalar.
#[tokio::test]
async fn subqueries_see_only_visible_rows() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents WHERE district_code IN (SELECT district_code FROM police.residents WHERE district_code <> '310115')").await, 0);
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents r WHERE EXISTS (SELECT 1 FROM police.residents h WHERE h.district_code = '310101')").await, 0);
    assert_eq!(
        count(&mut p, "SELECT (SELECT count(*) FROM police.residents)").await,
        t.pudong
    );
}

/// CTEs, also one that shadows the table's own name.
#[tokio::test]
async fn ctes_see_only_visible_rows_even_one_named_like_the_table() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(count(&mut p, "WITH r AS (SELECT * FROM police.residents) SELECT count(*) FROM r WHERE district_code <> '310115'").await, 0);
    assert_eq!(
        count(
            &mut p,
            "WITH residents AS (SELECT * FROM police.residents) SELECT count(*) FROM residents"
        )
        .await,
        t.pudong
    );
}

/// A recursive CTE joined with the table.
#[tokio::test]
async fn a_recursive_cte_joined_with_the_table_sees_only_visible_rows() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(&mut p, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT count(*) FROM n, police.residents").await,
        3 * t.pudong
    );
}

/// UNION of two scans: both filtered.
#[tokio::test]
async fn both_scans_of_a_union_are_filtered() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(count(&mut p, "SELECT count(*) FROM (SELECT district_code FROM police.residents UNION ALL SELECT district_code FROM police.residents) u").await, 2 * t.pudong);
}

/// A self-join looking for households across districts.
#[tokio::test]
async fn a_self_join_finds_no_household_across_districts() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(count(&mut p, "SELECT count(*) FROM police.residents a JOIN police.residents b ON a.household_id = b.household_id WHERE b.district_code <> '310115'").await, 0);
}

/// Quoting, case and qualification variants reach the same protected table.
#[tokio::test]
async fn every_spelling_of_the_table_reaches_the_same_protected_table() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
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

/// Every ID number, phone and name as the police officer sees them.
#[tokio::test]
async fn id_numbers_phones_and_names_are_masked_for_the_police_officer() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
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
}

/// WHERE on a raw value of a visible row finds nothing: the column holds masks.
#[tokio::test]
async fn where_on_a_raw_id_number_finds_nothing() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
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
}

/// LIKE on the hidden digits.
#[tokio::test]
async fn like_on_the_hidden_digits_finds_nothing() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
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
}

/// substr of the hidden part.
#[tokio::test]
async fn substr_of_the_hidden_part_is_stars() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        strings(
            &mut p,
            "SELECT DISTINCT substr(id_card, 7, 8) FROM police.residents"
        )
        .await,
        vec!["********"]
    );
}

/// length tells nothing but the format's.
#[tokio::test]
async fn length_of_a_masked_id_number_is_its_formats() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        strings(
            &mut p,
            "SELECT DISTINCT length(id_card) FROM police.residents"
        )
        .await,
        vec!["18"]
    );
}

/// JOIN with a list of raw ID numbers.
#[tokio::test]
async fn a_join_with_raw_id_numbers_finds_nothing() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        count(&mut p, &format!("SELECT count(*) FROM (VALUES ('{}'), ('{}')) v(x) JOIN police.residents r ON r.id_card = v.x", t.pudong_id, t.hidden_id)).await,
        0
    );
}

/// GROUP BY the masked column: groups of masks.
#[tokio::test]
async fn group_by_a_masked_column_groups_masks() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    for id in strings(
        &mut p,
        "SELECT id_card FROM police.residents GROUP BY id_card",
    )
    .await
    {
        assert_masked_id(&id);
    }
}

/// ORDER BY the masked column and a window over it.
#[tokio::test]
async fn order_by_and_windows_over_a_masked_column_see_masks() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
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
}

/// A CAST error shows the masked value it failed on, never the raw one.
#[tokio::test]
async fn a_failed_cast_shows_the_masked_value_never_the_raw_one() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    let (c, message) = code(
        &mut p,
        "SELECT CAST(id_card AS BIGINT) FROM police.residents",
    )
    .await;
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("********"), "{message}");
    assert!(!message.contains(&t.pudong_id), "{message}");
}

/// The policy-only token function cannot be called, in any spelling.
#[tokio::test]
async fn the_policy_only_token_function_cannot_be_called_in_any_spelling() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    for sql in [
        "SELECT mask_token(id_card, 'city_token') FROM police.residents",
        "SELECT MASK_TOKEN('310101199003071236', 'city_token')",
        "SELECT \"mask_token\"('310101199003071236', 'city_token')",
        "SELECT count(*) FROM police.residents WHERE mask_token(id_card, 'city_token') = 'x'",
    ] {
        assert_eq!(code(&mut p, sql).await.0, Code::PermissionDenied, "{sql}");
    }
}

/// Attribute values that look like SQL are literals: no resident matches them.
#[tokio::test]
async fn attribute_values_that_look_like_sql_match_no_resident() {
    let server = shared();
    let mut inj = login(server, "injector").await;
    assert_eq!(
        count(&mut inj, "SELECT count(*) FROM police.residents").await,
        0
    );
}

/// A missing attribute, and an empty list, mean no rows (and no error).
#[tokio::test]
async fn a_missing_or_empty_attribute_means_no_rows_and_no_error() {
    let server = shared();
    for user in ["no_districts", "empty_districts"] {
        let mut c = login(server, user).await;
        assert_eq!(
            count(&mut c, "SELECT count(*) FROM police.residents").await,
            0,
            "{user}"
        );
    }
}

/// Two roles: the grants add up; each dataset keeps its own policy.
#[tokio::test]
async fn grants_of_two_roles_add_up_and_each_dataset_keeps_its_policy() {
    let server = shared();
    let t = truth().await;
    let mut pm = login(server, "police_and_market").await;
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
}

/// Two rules at once: row filters are ORed (admin's has none), the most restrictive mask
/// wins (police's 6+4 over admin's raw).
#[tokio::test]
async fn two_rules_or_their_row_filters_and_the_stricter_mask_wins() {
    let server = shared();
    let mut pa = login(server, "police_and_admin").await;
    assert_eq!(
        count(&mut pa, "SELECT count(*) FROM police.residents").await,
        RESIDENTS as i64
    );
    for id in strings(&mut pa, "SELECT id_card FROM police.residents LIMIT 50").await {
        assert_masked_id(&id);
    }
}

/// A denied column does not exist for the principal: not in SELECT *, not by name, not in
/// information_schema, not in DESCRIBE, not in the Flight table schema.
#[tokio::test]
async fn a_denied_column_does_not_exist_anywhere_for_the_principal() {
    let server = shared();
    let mut a2 = login(server, "analyst2").await;
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
}

/// Under the default rule ID numbers are 32-hex tokens and names keep the surname.
#[tokio::test]
async fn under_the_default_rule_id_numbers_are_tokens() {
    let server = shared();
    let mut a2 = login(server, "analyst2").await;
    for id in strings(&mut a2, "SELECT id_card FROM police.residents LIMIT 20").await {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
}

/// A service account's API key in `x-api-key` acts as that account; a wrong key is refused
/// and does not fall back to anonymous access.
#[tokio::test]
async fn an_api_key_acts_as_its_service_account_and_a_wrong_one_is_refused() {
    let server = shared();
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

/// A grant on the topic is enough; the bureau tables stay invisible.
#[tokio::test]
async fn a_topic_grant_is_enough_and_the_bureau_tables_stay_invisible() {
    let server = shared();
    let mut ca = login(server, "city_analyst").await;
    assert_eq!(
        code(&mut ca, "SELECT * FROM police.residents").await.0,
        Code::NotFound
    );
    assert_eq!(
        code(&mut ca, "SELECT * FROM hrss.contributions").await.0,
        Code::NotFound
    );
}

/// Inside the topic, residents' and contributions' ID numbers are tokens of the same key:
/// the join on them finds exactly the rows the raw join finds.
#[tokio::test]
async fn topic_id_numbers_are_tokens_of_one_key_so_the_join_holds() {
    let server = shared();
    let t = truth().await;
    let mut ca = login(server, "city_analyst").await;
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
}

/// The token of a raw ID number cannot be computed to find a person.
#[tokio::test]
async fn the_token_of_a_raw_id_number_cannot_be_computed() {
    let server = shared();
    let t = truth().await;
    let mut ca = login(server, "city_analyst").await;
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
}

/// EXPLAIN shows the key's name, never the key.
#[tokio::test]
async fn explain_shows_the_keys_name_never_the_key() {
    let server = shared();
    let mut ca = login(server, "city_analyst").await;
    let b = ca
        .query("EXPLAIN VERBOSE SELECT * FROM topic.population")
        .await
        .unwrap();
    let plan = column_strings(&b, 1).join("\n");
    assert!(plan.contains("city_token"), "{plan}");
    assert!(!plan.contains(TOKEN_KEY), "the key leaked into EXPLAIN");
}

/// The police officer's EXPLAIN shows its own district, no other principal's.
#[tokio::test]
async fn the_officers_explain_shows_its_own_district_only() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
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
}

/// market_analyst: enterprises masked 6+4, licences of enterprises only, no residents.
#[tokio::test]
async fn the_market_analyst_sees_masked_enterprises_and_no_residents() {
    let server = shared();
    let mut m = login(server, "market_analyst").await;
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

/// Not granted looks exactly like not existing.
#[tokio::test]
async fn not_granted_looks_exactly_like_not_existing() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    let (c1, m1) = code(&mut p, "SELECT * FROM market.enterprises").await;
    let (c2, m2) = code(&mut p, "SELECT * FROM market.nothing").await;
    assert_eq!((c1, c2), (Code::NotFound, Code::NotFound));
    assert_eq!(m1.replace("enterprises", "X"), m2.replace("nothing", "X"));
}

/// information_schema and every Flight metadata RPC list the grant only.
#[tokio::test]
async fn information_schema_and_flight_metadata_list_the_grant_only() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
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
}

/// No credentials at all: the open schema and unconditionally open tables only.
#[tokio::test]
async fn without_credentials_only_open_data_is_visible_and_adds_up() {
    let server = shared();
    let t = truth().await;
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
}

/// The audit log is the auditor's alone.
#[tokio::test]
async fn the_audit_log_is_the_auditors_alone() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    assert_eq!(
        code(&mut p, "SELECT * FROM system.audit_log").await.0,
        Code::NotFound
    );
    let mut admin = login(server, "admin").await;
    assert_eq!(
        code(&mut admin, "SELECT * FROM system.audit_log").await.0,
        Code::NotFound
    );
}

#[tokio::test]
async fn every_refused_statement_type_is_permission_denied() {
    let mut p = login(shared(), "admin").await;
    // Writes, DDL, session changes, file access and PREPARE in SQL.
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

/// A ticket issued under one policy version is refused under the next.
#[tokio::test]
async fn a_ticket_dies_with_the_policy_version_it_was_issued_under() {
    let config = example_config("adversarial-reload-ticket", None);
    let server = Server::start_with(&config);
    let mut p = server.login("pudong_police").await;
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
    let before = server.running().reloads();
    server
        .write_and_load(&path, &format!("{text}\n# policy change\n"))
        .await;
    assert_ne!(server.running().reloads().version, before.version);
    let err = p.get(ticket).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("security catalog changed"),
        "{}",
        err.message()
    );
}

/// An invalid new version keeps the old one serving: once the server's reloader has refused
/// the new version, the old one still answers.
#[tokio::test]
async fn an_invalid_new_configuration_keeps_the_old_one_serving() {
    let config = example_config("adversarial-reload-invalid", None);
    let server = Server::start_with(&config);
    let mut p = server.login("pudong_police").await;
    let path = config.join("security.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let before = server.running().reloads();
    std::fs::write(
        &path,
        format!("{text}\n[[grant]]\nroles = [\"no_such_role\"]\nschemas = [\"police\"]\n"),
    )
    .unwrap();
    assert!(
        server
            .running()
            .reloaded(Duration::from_secs(20), |r| r.refused > before.refused)
            .await,
        "the reloader did not refuse the invalid configuration within 20 s"
    );
    assert_eq!(server.running().reloads().version, before.version);
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
}

/// Refusals and queries are in the audit log, with datasets and policies.
#[tokio::test]
async fn refusals_and_queries_are_audited_with_datasets_and_policies() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
    let _ = count(&mut p, "SELECT count(*) FROM police.residents").await;
    let _ = p
        .query("SELECT * FROM market.enterprises")
        .await
        .unwrap_err();
    let mut auditor = login(server, "auditor").await;
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

/// Under a row filter the Parquet scan skips data by the row filter alone: a comparison of an
/// unmasked column runs on the rows the row filter kept, and never decides which row groups
/// or pages are read (that would make the time of an answer depend on hidden rows).
#[tokio::test]
async fn under_a_row_filter_the_parquet_scan_skips_data_by_the_policy_alone() {
    let server = shared();
    let mut a = login(server, "admin").await;
    let mut p = login(server, "pudong_police").await;
    let sql =
        "SELECT count(*) FROM police.residents WHERE household_id >= 'H3101155' AND sex = 'F'";
    let (plan, scan) = scan_line(&mut p, sql, "residents").await;
    assert!(
        scan.contains("310115") && !scan.contains("household_id") && !scan.contains("sex"),
        "{plan}"
    );
    assert_eq!(
        count(&mut p, sql).await,
        count(&mut a, &format!("{sql} AND district_code = '310115'")).await
    );
}

/// A predicate on a masked column compares the masked value: it stays above the barrier,
/// and a raw ID number matches nothing.
#[tokio::test]
async fn a_predicate_on_a_masked_column_stays_above_the_barrier() {
    let server = shared();
    let t = truth().await;
    let mut p = login(server, "pudong_police").await;
    let sql = format!(
        "SELECT count(*) FROM police.residents WHERE id_card = '{}'",
        t.pudong_id
    );
    let (plan, scan) = scan_line(&mut p, &sql, "residents").await;
    assert!(!scan.contains("id_card"), "{plan}");
    assert_eq!(count(&mut p, &sql).await, 0);
}

/// Predicates that can fail stay above it: arithmetic, CASE, a cast that can fail, a
/// function call.
#[tokio::test]
async fn predicates_that_can_fail_stay_above_the_barrier() {
    let server = shared();
    let mut p = login(server, "pudong_police").await;
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
}

/// Through a topic library: the analyst's district reaches the residents' scan, the
/// tokenised ID number does not.
#[tokio::test]
async fn through_a_topic_the_analysts_district_reaches_the_scan_not_the_token() {
    let server = shared();
    let t = truth().await;
    let mut ca = login(server, "city_analyst").await;
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

/// A login remembered after its password check (`login_cache_secs`) lasts only as long as
/// the configuration it was checked under: once a principal's password hash changes, its
/// old password is refused at once, and a wrong password is never let in by the memory of
/// a right one.
#[tokio::test]
async fn a_remembered_login_does_not_outlive_its_password() {
    let config = example_config("adversarial-login-cache", None);
    let server = Server::start_with(&config);
    let mut c = server.client().await;
    for _ in 0..2 {
        c.handshake_basic("pudong_police:pudong_police-demo", true)
            .await
            .expect("the right password");
    }
    for wrong in [
        "pudong_police:pudong_police-demO",
        "pudong_police:",
        "market_analyst:pudong_police-demo",
    ] {
        assert_eq!(
            c.handshake_basic(wrong, true).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{wrong}"
        );
    }
    // pudong_police gets market_analyst's password
    let path = config.join("security.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let hash_of = |id: &str| {
        let entry = &text[text.find(&format!("[[principal]]\nid = \"{id}\"")).unwrap()..];
        let line = entry
            .lines()
            .find(|l| l.starts_with("password_hash"))
            .unwrap();
        line.to_string()
    };
    let changed = text.replacen(&hash_of("pudong_police"), &hash_of("market_analyst"), 1);
    assert_ne!(changed, text);
    server.write_and_load(&path, &changed).await;
    assert_eq!(
        c.handshake_basic("pudong_police:pudong_police-demo", true)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    c.handshake_basic("pudong_police:market_analyst-demo", true)
        .await
        .expect("the new password");
}
