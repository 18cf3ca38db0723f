//! Hostile input: the classes of attack found against Bund, one attempt per test, each named
//! for what it tries, through a real Flight SQL client against the real server — errors that
//! tell of hidden rows, EXPLAIN ANALYZE, masks undone by another column, the audit, and
//! short statements that crashed, wedged or exhausted the server. (Database collations are
//! tried in `databases.rs`; the planner's own plan tests sit beside the rules.)

use std::process::Command;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use tonic::Code;

use crate::harness::{Raw, Server, bund_bin, column_strings, example_config, example_data};

/// 20,000 `_`: a LIKE pattern too large to compile into a regular expression.
fn huge_pattern() -> String {
    "_".repeat(20_000)
}

async fn outcome(c: &mut Raw, sql: &str) -> Result<Vec<String>, (Code, String)> {
    match c.query(sql).await {
        Ok(b) => Ok(column_strings(&b, 0)),
        Err(s) => Err((s.code(), s.message().to_string())),
    }
}

async fn refused(c: &mut Raw, sql: &str) -> (Code, String) {
    match outcome(c, sql).await {
        Ok(rows) => panic!("{} was answered: {rows:?}", &sql[..sql.len().min(200)]),
        Err(e) => e,
    }
}

/// The server still answers a login and a query.
async fn still_serving(server: &Server) {
    let mut admin = server.login("admin").await;
    let n = admin
        .query("SELECT 1")
        .await
        .expect("the server still answers");
    assert_eq!(column_strings(&n, 0), vec!["1"]);
}

/// Writes a line of figures to standard error directly, past the test harness's capture, so
/// that CI's log shows it.
pub(crate) fn report(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A raw value the admin sees, by SQL.
async fn admin_value(server: &Server, sql: &str) -> String {
    let mut a = server.login("admin").await;
    column_strings(&a.query(sql).await.expect(sql), 0)[0].clone()
}

/// Peak and current resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name
    (ticks(11) + ticks(12)) / 100.0
}

/// Waits until the server has spent `secs` more seconds of CPU than at the call: the work
/// the test started is under way. Panics after `within`.
async fn wait_until_busy(pid: u32, secs: f64, within: Duration) {
    let start = cpu_secs(pid);
    let deadline = Instant::now() + within;
    while cpu_secs(pid) - start < secs {
        assert!(
            Instant::now() < deadline,
            "the server did not start working within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the server spends less than a tenth of a second of CPU in half a second:
/// the work it had is stopped. Panics after `within`, naming the last half-second's use.
async fn wait_until_idle(pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let before = cpu_secs(pid);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let used = cpu_secs(pid) - before;
        if used < 0.1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server still works: {used} s of CPU in the last 0.5 s, {within:?} on"
        );
    }
}

// ------------------------------------------------------------ 1. errors below the barrier

#[tokio::test]
async fn a_like_too_large_to_compile_tells_nothing_of_a_hidden_household() {
    let server = Server::start();
    let hidden = admin_value(
        &server,
        "SELECT household_id FROM police.residents WHERE district_code <> '310115' LIMIT 1",
    )
    .await;
    let mut p = server.login("pudong_police").await;
    let sql = |h: &str| {
        format!(
            "SELECT count(*) FROM police.residents WHERE (household_id = '{h}' AND household_id LIKE '{}') OR sex = 'zz'",
            huge_pattern()
        )
    };
    let exists = outcome(&mut p, &sql(&hidden)).await;
    let absent = outcome(&mut p, &sql("H-no-such-household")).await;
    assert_eq!(
        exists, absent,
        "the outcome must not depend on a hidden row"
    );
    let (code, message) = exists.expect_err("the pattern is refused while planning");
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("LIKE pattern cannot be used"), "{message}");
}

#[tokio::test]
async fn a_like_too_large_to_compile_tells_nothing_of_a_licence_holder_the_row_filter_hides() {
    let server = Server::start();
    // a licence held by a resident: market analysts only see enterprises' licences
    let hidden = admin_value(
        &server,
        "SELECT holder_id FROM licence.licences WHERE NOT uscc_valid(holder_id) LIMIT 1",
    )
    .await;
    let mut m = server.login("market_analyst").await;
    let sql = |h: &str| {
        format!(
            "SELECT count(*) FROM licence.licences WHERE (holder_id = '{h}' AND holder_id LIKE '{}') OR licence_type = 'zz'",
            huge_pattern()
        )
    };
    let exists = outcome(&mut m, &sql(&hidden)).await;
    let absent = outcome(&mut m, &sql("no-such-holder")).await;
    assert_eq!(exists, absent);
    assert!(exists.is_err());
}

#[tokio::test]
async fn an_ilike_or_similar_to_pattern_that_cannot_compile_is_refused_before_running() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    for sql in [
        format!(
            "SELECT count(*) FROM police.residents WHERE household_id ILIKE '{}'",
            huge_pattern()
        ),
        "SELECT count(*) FROM police.residents WHERE household_id SIMILAR TO '(unclosed'"
            .to_string(),
        "SELECT count(*) FROM police.residents WHERE household_id ~ '(unclosed'".to_string(),
    ] {
        let (code, message) = refused(&mut p, &sql).await;
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(message.contains("pattern cannot be used"), "{message}");
    }
}

#[tokio::test]
async fn a_moved_predicate_runs_above_the_row_filter_in_the_plan() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    let b = p
        .query(
            "EXPLAIN SELECT count(*) FROM police.residents WHERE household_id = 'H1' OR sex = 'F'",
        )
        .await
        .unwrap();
    let plan = column_strings(&b, 1).join("\n");
    let physical: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.contains("BarrierExec: police.residents"))
        .collect();
    let moved = physical
        .iter()
        .position(|l| l.contains("FilterExec") && l.contains("household_id"))
        .unwrap_or_else(|| panic!("{plan}"));
    let fence = physical
        .iter()
        .position(|l| l.contains("RowFilterBarrierExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(moved < fence, "{plan}");
    // Below the row filter's barrier only the row filter is evaluated: by the Parquet reader
    // (the scan's predicate), or by a filter of its own.
    let below: Vec<&str> = physical[fence + 1..]
        .iter()
        .filter_map(|l| {
            if l.contains("FilterExec") {
                Some(l.split(", projection=").next().unwrap_or(l))
            } else if l.contains("DataSourceExec") {
                l.split(", predicate=")
                    .nth(1)
                    .and_then(|p| p.split(", pruning_predicate=").next())
            } else {
                None
            }
        })
        .collect();
    assert!(below.iter().any(|e| e.contains("310115")), "{plan}");
    assert!(
        below
            .iter()
            .all(|e| !e.contains("household_id") && !e.contains("sex")),
        "{plan}"
    );
}

// ------------------------------------------------------------ 2. EXPLAIN ANALYZE

async fn analyze(c: &mut Raw, sql: &str) -> String {
    let b = c.query(&format!("EXPLAIN ANALYZE {sql}")).await.unwrap();
    column_strings(&b, 1).join("\n")
}

#[tokio::test]
async fn explain_analyze_as_pudong_police_counts_no_hidden_rows() {
    let server = Server::start();
    let total = admin_value(
        &server,
        "SELECT CAST(count(*) AS VARCHAR) FROM police.residents",
    )
    .await;
    let mut p = server.login("pudong_police").await;
    let plan = analyze(
        &mut p,
        "SELECT count(*) FROM police.residents WHERE sex = 'F'",
    )
    .await;
    let below: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.contains("BarrierExec: police.residents"))
        .collect();
    assert!(below.len() > 2, "{plan}");
    assert!(below[0].contains("metrics withheld"), "{plan}");
    for l in &below {
        assert!(
            !l.contains("output_rows") && !l.contains("selectivity"),
            "{l}"
        );
    }
    assert!(!plan.contains(&format!("output_rows={total}")), "{plan}");
}

#[tokio::test]
async fn explain_analyze_verbose_withholds_the_same_metrics() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    let plan = analyze(&mut p, "VERBOSE SELECT count(*) FROM police.residents").await;
    // each section of the output: the lines indented under a barrier
    let mut under: Option<usize> = None;
    let mut below = 0;
    for line in plan.lines() {
        let indent = line.len() - line.trim_start().len();
        if under.is_some_and(|i| indent <= i) {
            under = None;
        }
        if under.is_some() {
            below += 1;
            assert!(!line.contains("output_rows"), "{line}\n{plan}");
        }
        if line.contains("BarrierExec: police.residents") {
            assert!(!line.contains("output_rows"), "{line}");
            under = Some(indent);
        }
    }
    assert!(below >= 4, "{plan}");
}

#[tokio::test]
async fn explain_analyze_of_a_topic_through_definer_rights_shows_no_metrics() {
    let server = Server::start();
    let mut c = server.login("city_analyst").await;
    let plan = analyze(&mut c, "SELECT count(*) FROM topic.population").await;
    assert!(plan.contains("metrics withheld"), "{plan}");
    assert!(!plan.contains("output_rows"), "{plan}");
}

#[tokio::test]
async fn explain_analyze_as_admin_shows_every_metric() {
    let server = Server::start();
    let mut a = server.login("admin").await;
    let plan = analyze(&mut a, "SELECT count(*) FROM police.residents").await;
    assert!(!plan.contains("withheld"), "{plan}");
    assert!(
        plan.contains("DataSourceExec") && plan.contains("output_rows"),
        "{plan}"
    );
}

// ------------------------------------------------------------ 3. masks undone by a column

#[tokio::test]
async fn pudong_police_cannot_rebuild_an_id_number_from_the_date_of_birth() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    let b = p
        .query("SELECT id_card, CAST(birth_date AS VARCHAR) FROM police.residents LIMIT 20")
        .await
        .unwrap();
    for (id, birth) in column_strings(&b, 0).iter().zip(column_strings(&b, 1)) {
        assert_eq!(&id[6..14], "********", "{id}");
        assert!(birth.ends_with("-01-01"), "the year only: {birth}");
    }
}

#[tokio::test]
async fn check_warns_of_a_mask_that_another_column_undoes() {
    let dir = example_config("derivable", None);
    let security = std::fs::read_to_string(dir.join("security.toml")).unwrap();
    let undone = security.replace(", birth_date = \"mask_date_year\"", "");
    assert_ne!(
        undone, security,
        "the example masks birth_date for the police"
    );
    std::fs::write(dir.join("security.toml"), undone).unwrap();
    let out = Command::new(bund_bin())
        .args(["check", "--config"])
        .arg(&dir)
        .arg("--data-dir")
        .arg(example_data())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not an error: {text}");
    assert!(
        text.contains("warning: police.residents: id_card is masked with mask_id_card")
            && text.contains("birth_date")
            && text.contains("pudong_police"),
        "{text}"
    );
}

#[tokio::test]
async fn the_example_has_no_mask_that_another_column_undoes() {
    let dir = example_config("derivable-example", None);
    let out = Command::new(bund_bin())
        .args(["check", "--config"])
        .arg(&dir)
        .arg("--data-dir")
        .arg(example_data())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !text.contains("warning"), "{text}");
}

// ------------------------------------------------------------ 4. values in the audit

async fn audit_rows(server: &Server, filter: &str) -> Vec<Vec<String>> {
    let mut auditor = server.login("auditor").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let b = auditor
            .query(&format!(
                "SELECT rpc, outcome, coalesce(error, ''), coalesce(statement, ''), coalesce(statement_sha256, ''), CAST(statement_bytes AS VARCHAR) FROM system.audit_log WHERE {filter}"
            ))
            .await
            .unwrap();
        let rows: Vec<Vec<String>> = (0..b.iter().map(RecordBatch::num_rows).sum())
            .map(|i| (0..6).map(|c| column_strings(&b, c)[i].clone()).collect())
            .collect();
        if !rows.is_empty() || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_failed_cast_is_audited_without_the_values_it_quoted() {
    let server = Server::start();
    let mut a = server.login("admin").await;
    let sql =
        "SELECT CAST(id_card AS INT) FROM police.residents WHERE district_code = '310115' LIMIT 5";
    let (code, message) = refused(&mut a, sql).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let rows = audit_rows(
        &server,
        "statement LIKE 'SELECT CAST(id_card AS INT)%' AND outcome = 'error'",
    )
    .await;
    assert!(!rows.is_empty(), "the failure is audited");
    for r in &rows {
        let error = &r[2];
        assert!(error.contains("withheld"), "{error}");
        assert!(
            !error.contains("3101"),
            "an ID number in the audit: {error}"
        );
        assert!(
            !error.to_lowercase().contains("cannot cast string"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_failed_cast_of_masked_names_is_audited_without_them() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    let sql = "SELECT CAST(name AS INT) FROM police.residents";
    let _ = refused(&mut p, sql).await;
    let rows = audit_rows(
        &server,
        "statement = 'SELECT CAST(name AS INT) FROM police.residents' AND outcome = 'error'",
    )
    .await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r[2].contains("withheld") && !r[2].contains('*')),
        "{rows:?}"
    );
}

// ------------------------------------------------------------ 6. depth

#[tokio::test]
async fn eighty_ones_added_up_answer() {
    let server = Server::start();
    let mut c = server.client().await;
    let sql = format!("SELECT {}", vec!["1"; 80].join("+"));
    assert_eq!(outcome(&mut c, &sql).await, Ok(vec!["80".to_string()]));
}

#[tokio::test]
async fn a_hundred_ored_comparisons_as_bi_tools_send_them_answer() {
    let server = Server::start();
    let mut c = server.client().await;
    let ors = (0..100)
        .map(|i| format!("category = 'c{i}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let got = outcome(
        &mut c,
        &format!("SELECT count(*) FROM planning.poi WHERE {ors}"),
    )
    .await;
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn five_thousand_added_terms_are_invalid_argument_and_the_server_lives() {
    let mut server = Server::process_example();
    let mut c = server.client().await;
    let sql = format!("SELECT {}", vec!["1"; 5_000].join("+"));
    let (code, message) = refused(&mut c, &sql).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("nest too deeply"), "{message}");
    assert!(server.alive());
    still_serving(&server).await;
}

#[tokio::test]
async fn thousands_of_nested_parentheses_are_invalid_argument() {
    let mut server = Server::process_example();
    let mut c = server.client().await;
    let sql = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let (code, _) = refused(&mut c, &sql).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(server.alive());
}

#[tokio::test]
async fn thousands_of_nested_subqueries_are_invalid_argument() {
    let mut server = Server::process_example();
    let mut c = server.client().await;
    let sql = format!(
        "{}SELECT 1{}",
        "SELECT * FROM (".repeat(2_000),
        ")".repeat(2_000)
    );
    let (code, _) = refused(&mut c, &sql).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(server.alive());
}

#[tokio::test]
async fn a_union_of_thousands_of_selects_is_invalid_argument() {
    let mut server = Server::process_example();
    let mut c = server.client().await;
    let sql = vec!["SELECT 1"; 3_000].join(" UNION ALL ");
    let (code, _) = refused(&mut c, &sql).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(server.alive());
}

#[tokio::test]
async fn an_in_list_of_fifty_thousand_values_answers() {
    let server = Server::start();
    let mut c = server.client().await;
    let list = (0..50_000)
        .map(|i| format!("'P{i:07}'"))
        .collect::<Vec<_>>()
        .join(",");
    let got = outcome(
        &mut c,
        &format!("SELECT count(*) FROM planning.poi WHERE poi_id IN ({list})"),
    )
    .await;
    assert!(got.is_ok(), "{got:?}");
}

// ------------------------------------------------------------ 7. planning without limit

#[tokio::test]
async fn sixteen_doubling_ctes_are_refused_before_they_are_planned() {
    let server = Server::start();
    let mut c = server.client().await;
    let mut sql = "WITH a0 AS (SELECT poi_id FROM planning.poi)".to_string();
    for i in 0..16 {
        sql.push_str(&format!(
            ", a{} AS (SELECT * FROM a{i} UNION ALL SELECT * FROM a{i})",
            i + 1
        ));
    }
    sql.push_str(" SELECT count(*) FROM a16");
    let started = Instant::now();
    let (code, message) = refused(&mut c, &sql).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("operators"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_join_of_three_hundred_tables_is_refused() {
    let server = Server::start();
    let mut c = server.client().await;
    let tables = (0..300)
        .map(|i| format!("planning.poi p{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (code, message) = refused(&mut c, &format!("SELECT count(*) FROM {tables}")).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("deep"), "{message}");
}

#[tokio::test]
async fn planning_past_its_time_limit_is_deadline_exceeded() {
    let config = example_config("planning-timeout", Some("planning_timeout_secs = 1\n"));
    let server = Server::start_with(&config);
    let mut c = server.client().await;
    // a join of a hundred tables takes seconds to plan (each one a cross join)
    let tables = (0..150)
        .map(|i| format!("planning.poi p{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let started = Instant::now();
    let (code, _) = refused(&mut c, &format!("SELECT count(*) FROM {tables}")).await;
    assert_eq!(code, Code::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    still_serving(&server).await;
}

// ------------------------------------------------------------ 8. wedged

/// 200⁴ = 1.6 billion rows to count: minutes of work (a three-way join of the test data's
/// 200 points ends within a second, too soon to show anything).
const CROSS_JOIN: &str =
    "SELECT count(*) FROM planning.poi a, planning.poi b, planning.poi c, planning.poi d";

#[tokio::test]
async fn two_anonymous_cross_joins_leave_logins_and_other_queries_answering() {
    let config = example_config("wedge", Some("anonymous_query_timeout_secs = 20\n"));
    let server = Server::process(&config);
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut c = server.client().await;
        attackers.push(tokio::spawn(async move {
            c.query(CROSS_JOIN).await.map(|_| ())
        }));
    }
    wait_until_busy(server.pid(), 1.0, Duration::from_secs(30)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let mut p = server.login("pudong_police").await;
        let n = p
            .query("SELECT count(*) FROM police.residents")
            .await
            .unwrap();
        assert_eq!(column_strings(&n, 0).len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    for a in attackers {
        a.abort();
    }
}

#[tokio::test]
async fn a_query_past_its_deadline_stops_its_work_whether_or_not_anyone_reads() {
    let config = example_config(
        "deadline-unread",
        Some("anonymous_query_timeout_secs = 3\n"),
    );
    let server = Server::process(&config);
    let mut c = server.client().await;
    // GetFlightInfo, then DoGet without reading a single message
    let info = c
        .info(arrow_flight::sql::CommandStatementQuery {
            query: CROSS_JOIN.to_string(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let req = c.request(ticket);
    let unread = c.inner.do_get(req).await.unwrap();
    // It works, then stops at its 3 s deadline although nobody reads.
    wait_until_busy(server.pid(), 0.5, Duration::from_secs(30)).await;
    wait_until_idle(server.pid(), Duration::from_secs(20)).await;
    drop(unread);
}

#[tokio::test]
async fn sigterm_stops_the_server_while_cross_joins_run() {
    let server = Server::process_example();
    for _ in 0..2 {
        let mut c = server.client().await;
        tokio::spawn(async move {
            let _ = c.query(CROSS_JOIN).await;
        });
    }
    let mut a = server.login("admin").await;
    tokio::spawn(async move {
        let _ = a.query(CROSS_JOIN).await;
    });
    wait_until_busy(server.pid(), 1.0, Duration::from_secs(30)).await;
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------ 9. the audit trail

#[tokio::test]
async fn a_long_refused_statement_is_audited_as_prefix_length_and_hash() {
    let server = Server::start();
    let mut c = server.client().await;
    let sql = format!(
        "DELETE FROM planning.poi WHERE name = '{}'",
        "x".repeat(3 << 20)
    );
    let _ = refused(&mut c, &sql).await;
    let rows = audit_rows(&server, "statement LIKE 'DELETE FROM planning.poi%'").await;
    assert_eq!(rows.len(), 1, "{}", rows.len());
    assert!(rows[0][3].len() <= 4096, "{}", rows[0][3].len());
    assert_eq!(rows[0][4].len(), 64, "a SHA-256");
    assert_eq!(rows[0][5], sql.len().to_string());
}

#[tokio::test]
async fn an_address_past_its_audit_budget_is_refused_and_counted() {
    let config = example_config("audit-budget", Some("audit_records_per_minute = 100\n"));
    let server = Server::start_with(&config);
    // without credentials, an address has a tenth of a principal's budget: 10 a minute
    let mut c = server.client().await;
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(match c.query("SELECT 1").await {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        });
    }
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    // principals keep their own budgets
    still_serving(&server).await;
}

#[tokio::test]
async fn successful_statements_are_audited_when_planned() {
    let server = Server::start();
    let mut p = server.login("pudong_police").await;
    let info = p
        .info(arrow_flight::sql::CommandStatementQuery {
            query: "SELECT count(*) FROM police.residents WHERE sex = 'M'".into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    assert!(!info.endpoint.is_empty());
    let rows = audit_rows(
        &server,
        "rpc = 'GetFlightInfo(Statement)' AND statement = 'SELECT count(*) FROM police.residents WHERE sex = ''M''' AND outcome = 'ok'",
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[tokio::test]
async fn a_full_audit_disk_refuses_every_request_with_unavailable() {
    let config = example_config("audit-full", None);
    let audit = config.join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    std::os::unix::fs::symlink("/dev/full", audit.join("audit.jsonl")).unwrap();
    let server = Server::start_with(&config);
    let mut a = server.login("admin").await;
    let _ = a.query("SELECT 1").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let code = match a.query("SELECT 1").await {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        if code != Code::Ok || Instant::now() > deadline {
            break code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Code::Unavailable);
    // room again: served again, the backlog written first
    std::fs::remove_file(audit.join("audit.jsonl")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if a.query("SELECT 1").await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "still refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let written = std::fs::read_to_string(audit.join("audit.jsonl")).unwrap();
    assert!(written.lines().count() >= 2, "{written}");
}

// ------------------------------------------------------------ 10. memory

async fn sql_client(server: &Server) -> FlightSqlServiceClient<tonic::transport::Channel> {
    let mut client = FlightSqlServiceClient::new(server.channel().await);
    client
        .handshake("admin", "admin-demo")
        .await
        .expect("handshake");
    client
}

fn text_param(bytes: usize) -> RecordBatch {
    RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
        vec![std::sync::Arc::new(StringArray::from(vec![
            "x".repeat(bytes),
        ]))],
    )
    .unwrap()
}

#[tokio::test]
async fn parameters_past_the_limit_are_refused() {
    let server = Server::start();
    let mut client = sql_client(&server).await;
    let mut prepared = client
        .prepare(
            "SELECT count(*) FROM planning.poi WHERE name = ?".to_string(),
            None,
        )
        .await
        .unwrap();
    prepared.set_parameters(text_param(2 << 20)).unwrap();
    let err = prepared.execute().await.expect_err("refused");
    assert!(err.to_string().contains("max_parameter_kb"), "{err}");
}

#[tokio::test]
async fn bound_parameters_do_not_accumulate() {
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use arrow_flight::sql::{
        ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
        CommandPreparedStatementQuery, ProstMessageExt,
    };
    use futures::{StreamExt, TryStreamExt};
    use prost::Message;

    let server = Server::process_example();
    let mut client = sql_client(&server).await;
    let mut bind = async |n: usize| {
        for _ in 0..n {
            let action = arrow_flight::Action {
                r#type: "CreatePreparedStatement".into(),
                body: ActionCreatePreparedStatementRequest {
                    query: "SELECT count(*) FROM planning.poi WHERE name = ?".into(),
                    transaction_id: None,
                }
                .as_any()
                .encode_to_vec()
                .into(),
            };
            let result: Vec<arrow_flight::Result> = client
                .do_action(action)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let created: ActionCreatePreparedStatementResult = Any::decode(result[0].body.clone())
                .unwrap()
                .unpack()
                .unwrap()
                .unwrap();
            let cmd = CommandPreparedStatementQuery {
                prepared_statement_handle: created.prepared_statement_handle,
            };
            let data = FlightDataEncoderBuilder::new()
                .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd(
                    cmd.as_any().encode_to_vec(),
                )))
                .build(futures::stream::iter([Ok(text_param(900 << 10))]))
                .map(|r| r.unwrap());
            let _: Vec<_> = client
                .do_put(data)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        }
    };
    // the first round fills what is kept (at most 64 MiB of bound handles) and the
    // allocator's arenas; a second round of as many must not add to it
    bind(70).await;
    let (_, first) = memory_mib(server.pid());
    bind(70).await;
    let (_, second) = memory_mib(server.pid());
    assert!(second < first + 48, "{first} MiB → {second} MiB");
}

/// Plans GetFlightInfo keeps for their DoGet (`service/planned.rs`) are bounded by number
/// and weight: a client without credentials asking for FlightInfos of the heaviest
/// statements it may send, and never fetching them, does not grow the server's memory.
#[tokio::test]
async fn flight_infos_never_fetched_do_not_accumulate() {
    use arrow_flight::sql::CommandStatementQuery;

    let server = Server::process_example();
    let mut anonymous = server.client().await;
    // a union of 100 scans of an open dataset: hundreds of operators a plan
    let one = "SELECT name, category FROM planning.poi WHERE category = 'park'";
    let union = vec![one; 100].join(" UNION ALL ");
    let mut ask = async |n: usize| {
        for _ in 0..n {
            anonymous
                .info(CommandStatementQuery {
                    query: union.clone(),
                    transaction_id: None,
                })
                .await
                .expect("an anonymous FlightInfo");
        }
    };
    // the first rounds fill what is kept and the allocator's arenas (133 MiB after 25
    // FlightInfos, 149 after 50, here); more must not add to it (149-150 MiB after 75-100)
    ask(50).await;
    let (_, first) = memory_mib(server.pid());
    ask(25).await;
    let (_, second) = memory_mib(server.pid());
    assert!(second < first + 16, "{first} MiB → {second} MiB");
}

#[tokio::test]
async fn a_hundred_logins_of_unknown_users_at_once_stay_within_memory() {
    let server = Server::process_example();
    let (_, before) = memory_mib(server.pid());
    let mut logins = Vec::new();
    for i in 0..100 {
        let mut c = server.client().await;
        logins.push(tokio::spawn(async move {
            c.handshake_basic(&format!("nobody{i}:wrong"), true)
                .await
                .err()
                .map(|s| s.code())
        }));
    }
    for l in logins {
        let code = l.await.unwrap();
        assert!(
            matches!(code, Some(Code::Unauthenticated | Code::ResourceExhausted)),
            "{code:?}"
        );
    }
    let (peak, _) = memory_mib(server.pid());
    // a password check takes 19 MiB: a few at once, not a hundred
    assert!(peak < before + 400, "{before} MiB → peak {peak} MiB");
}

#[tokio::test]
async fn repeat_of_four_hundred_million_is_refused_without_allocating() {
    let server = Server::process_example();
    let (_, before) = memory_mib(server.pid());
    let mut c = server.client().await;
    let (code, message) = refused(&mut c, "SELECT repeat('x', 400000000)").await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("max_function_output_mb"), "{message}");
    let (peak, _) = memory_mib(server.pid());
    assert!(peak < before + 100, "{before} → {peak} MiB");
}

#[tokio::test]
async fn a_large_constant_repeated_on_every_row_is_refused() {
    let server = Server::start();
    let mut c = server.client().await;
    let big = "x".repeat(1 << 20);
    let (code, message) = refused(&mut c, &format!("SELECT '{big}' AS c FROM planning.poi")).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("KiB"), "{message}");
}

// ------------------------------------------------------------ all of them at once

/// One attacker: a client that sends `sql` again and again until `stop`.
fn attacker(
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut c: Raw,
    sql: String,
) -> tokio::task::JoinHandle<usize> {
    let stop = std::sync::Arc::clone(stop);
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = c.query(&sql).await;
            n += 1;
        }
        n
    })
}

/// The CI's hostile-client check: for half a minute, clients without credentials and two
/// of the example's principals send every kind of attack above at once, while two other
/// principals run ordinary queries. Those must all answer (their latencies are printed),
/// the server's memory must stay within its limit, and SIGTERM must stop it at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_every_attack_at_once_others_answer_memory_holds_and_sigterm_stops() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const LIMIT_MB: u64 = 1024;
    const ATTACK: Duration = Duration::from_secs(30);
    let config = example_config(
        "siege",
        Some(&format!(
            "memory_limit_mb = {LIMIT_MB}\nanonymous_query_timeout_secs = 10\nquery_timeout_secs = 30\n"
        )),
    );
    let mut server = Server::process(&config);
    let pid = server.pid();
    let (_, base) = memory_mib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let mut attacks = Vec::new();
    let statements: Vec<String> = vec![
        CROSS_JOIN.to_string(),
        format!("SELECT {}", vec!["1"; 5_000].join("+")),
        format!("SELECT {}1{}", "(".repeat(3_000), ")".repeat(3_000)),
        {
            let mut sql = "WITH a0 AS (SELECT poi_id FROM planning.poi)".to_string();
            for i in 0..16 {
                sql.push_str(&format!(
                    ", a{} AS (SELECT * FROM a{i} UNION ALL SELECT * FROM a{i})",
                    i + 1
                ));
            }
            sql + " SELECT count(*) FROM a16"
        },
        format!(
            "SELECT count(*) FROM {}",
            (0..300)
                .map(|i| format!("planning.poi p{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "SELECT repeat('x', 400000000)".to_string(),
        format!("SELECT '{}' FROM planning.poi", "x".repeat(1 << 20)),
        format!(
            "DELETE FROM planning.poi WHERE name = '{}'",
            "x".repeat(3 << 20)
        ),
        format!(
            "SELECT count(*) FROM planning.poi WHERE name LIKE '{}'",
            huge_pattern()
        ),
    ];
    // without credentials: every statement, two clients each
    for sql in statements {
        for _ in 0..2 {
            attacks.push(attacker(&stop, server.client().await, sql.clone()));
        }
    }
    // logins of users that do not exist
    for i in 0..4 {
        let mut c = server.client().await;
        let stop = Arc::clone(&stop);
        attacks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _ = c.handshake_basic(&format!("nobody{i}:wrong"), true).await;
                n += 1;
            }
            n
        }));
    }
    // principals that attack: oracles, EXPLAIN ANALYZE, failing casts, large parameters
    let hidden = admin_value(
        &server,
        "SELECT household_id FROM police.residents WHERE district_code <> '310115' LIMIT 1",
    )
    .await;
    for sql in [
        format!(
            "SELECT count(*) FROM police.residents WHERE (household_id = '{hidden}' AND household_id LIKE '{}') OR sex = 'zz'",
            huge_pattern()
        ),
        "EXPLAIN ANALYZE SELECT count(*) FROM police.residents WHERE sex = 'F'".to_string(),
        "SELECT CAST(name AS INT) FROM police.residents".to_string(),
        "SELECT * FROM police.residents".to_string(),
    ] {
        attacks.push(attacker(&stop, server.login("pudong_police").await, sql));
    }
    attacks.push(attacker(
        &stop,
        server.login("market_analyst").await,
        "SELECT * FROM market.enterprises a, market.enterprises b".to_string(),
    ));

    // ordinary work of two other principals, timed
    let mut ordinary = Vec::new();
    for (who, sql) in [
        (
            "admin",
            "SELECT count(*) FROM police.residents WHERE district_code = '310115'",
        ),
        (
            "city_analyst",
            "SELECT district_code, count(*) FROM open.residents_by_district GROUP BY district_code",
        ),
    ] {
        let mut c = server.login(who).await;
        let stop = Arc::clone(&stop);
        ordinary.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match c.query(sql).await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(e) => failures.push(format!("{who}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (latencies, failures)
        }));
    }
    tokio::time::sleep(ATTACK).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for o in ordinary {
        let (l, f) = o.await.unwrap();
        latencies.extend(l);
        failures.extend(f);
    }
    let mut attempts = 0;
    for a in attacks {
        // an attacker stuck in a long query is not waited for
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(15), a).await {
            attempts += n;
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let (peak, rss) = memory_mib(pid);
    // straight to standard error, past the test harness's capture: CI shows the figures
    report(format!(
        "siege: {} ordinary queries answered in {ATTACK:?} (p50 {:?}, p99 {:?}, max {:?}); {attempts} attack attempts; server memory {base} MiB at start, peak {peak} MiB, now {rss} MiB (memory_limit_mb {LIMIT_MB})",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    ));
    assert!(failures.is_empty(), "ordinary queries failed: {failures:?}");
    assert!(
        latencies.len() > 20,
        "too few answered: {}",
        latencies.len()
    );
    assert!(pct(0.99) < Duration::from_secs(10), "p99 {:?}", pct(0.99));
    assert!(peak < base + LIMIT_MB, "peak {peak} MiB past the limit");
    assert!(server.alive());
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        started.elapsed()
    );
}
