//! Plan tests of the security core: a small catalog (one bureau table in a Parquet file,
//! one principal under a row filter and a mask) loaded the way `bund serve` loads it, and
//! statements planned and run in process. A property of the barrier is a property of the
//! plan: these tests assert it on the plan, and run the query where the outcome matters.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bund_catalogs::{LoadOptions, Principal};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::{collect, displayable};

use crate::{Engine, Error, PlannerSettings};

/// The argon2 hash of `officer-demo` is not needed: principals are resolved by id here.
const CATALOG: &str = r#"
[[bureau]]
id = "police"
name_zh = "公安局"
name_en = "Police"

[[bureau.table]]
name = "residents"
description = "Residents."
tags = ["personal"]
open_level = "not_open"
source = { kind = "parquet", location = "residents/" }
"#;

const SECURITY: &str = r#"
[[role]]
id = "officer"

[[role]]
id = "admin"

[[principal]]
id = "officer1"
roles = ["officer"]
attributes = { districts = ["A"] }

[[principal]]
id = "admin1"
roles = ["admin"]

# A policy whose row filter fails on every row: its error text would quote a raw value.
[[role]]
id = "broken"

[[principal]]
id = "broken1"
roles = ["broken"]

[[grant]]
roles = ["officer", "admin", "broken"]
datasets = ["police.residents"]

[[policy]]
id = "residents"
dataset = "police.residents"
sensitive = ["id_card"]

  [[policy.rule]]
  roles = ["admin"]

  [[policy.rule]]
  roles = ["officer"]
  row_filter = "district IN ${principal.districts}"
  masks = { id_card = "mask_id_card" }

  [[policy.rule]]
  roles = ["broken"]
  row_filter = "CAST(household AS BIGINT) > 0"
  masks = { id_card = "mask_id_card" }

  [[policy.rule]]
  default = true
  deny = ["id_card"]
"#;

/// Ten residents: A1..A5 in district A (visible to officer1), B1..B5 in district B.
fn write_data(dir: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_card", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("household", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
    ]));
    let ids: Vec<String> = (0..10).map(|i| format!("3101151990010{i:04}X")).collect();
    let districts: Vec<&str> = (0..10).map(|i| if i < 5 { "A" } else { "B" }).collect();
    let households: Vec<String> = (0..10)
        .map(|i| format!("{}{}", districts[i], i % 5 + 1))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(districts)),
            Arc::new(StringArray::from(households)),
            Arc::new(Int64Array::from_iter_values(0..10)),
        ],
    )
    .expect("batch");
    let out = dir.join("residents");
    std::fs::create_dir_all(&out).expect("data dir");
    let file = std::fs::File::create(out.join("part-0.parquet")).expect("parquet file");
    let mut w = ArrowWriter::try_new(file, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// A fresh directory for a fixture, named like the end-to-end tests' scratch directories
/// (`bund-test-<pid>-…`) so that their harness clears it once this process has ended.
pub(crate) fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bund-test-{}-planner-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub(crate) struct Fixture {
    pub(crate) engine: Engine,
}

impl Fixture {
    pub(crate) fn principal(&self, id: &str) -> Arc<Principal> {
        self.engine
            .catalog()
            .security
            .principal(id)
            .unwrap_or_else(|| panic!("{id} in the fixture"))
    }

    /// The physical plan of a statement as EXPLAIN shows it.
    pub(crate) async fn physical(&self, who: &str, sql: &str) -> String {
        let planned = self
            .engine
            .plan(&self.principal(who), sql, None)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        displayable(planned.physical.as_ref())
            .indent(true)
            .to_string()
    }

    /// Runs a statement; the result as a table, or the error's text.
    pub(crate) async fn run(&self, who: &str, sql: &str) -> Result<String, String> {
        let planned = match self.engine.plan(&self.principal(who), sql, None).await {
            Ok(p) => p,
            Err(e) => return Err(e.to_string()),
        };
        match collect(planned.physical, planned.task_ctx).await {
            Ok(batches) => Ok(pretty_format_batches(&batches)
                .map(|t| t.to_string())
                .unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) async fn plan_error(&self, who: &str, sql: &str) -> Error {
        match self.engine.plan(&self.principal(who), sql, None).await {
            Ok(_) => panic!("{sql} was planned"),
            Err(e) => e,
        }
    }
}

/// The fixture, loaded once per test binary (each test runs it on its own runtime).
pub(crate) async fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    if let Some(f) = FIXTURE.get() {
        return f;
    }
    let dir = scratch();
    std::fs::write(dir.join("catalog.toml"), CATALOG).expect("catalog.toml");
    std::fs::write(dir.join("security.toml"), SECURITY).expect("security.toml");
    write_data(&dir.join("data"));
    let engine = Engine::load(
        &LoadOptions::new(dir.clone(), dir.join("data")),
        PlannerSettings::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("fixture catalog: {e}"));
    let _ = FIXTURE.set(Fixture { engine });
    FIXTURE.get().expect("set above")
}

/// Runs a test on a thread with the stack of a query thread (`bund-server`'s executor):
/// planning recurses over expression trees, and the test harness's threads have 2 MiB.
pub(crate) fn big_stack<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::Builder::new()
        .stack_size(128 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(128 << 20)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(fut)
        })
        .expect("test thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The lines of a plan from the first that contains `from`, trimmed.
fn lines_from<'a>(plan: &'a str, from: &str) -> Vec<&'a str> {
    plan.lines()
        .skip_while(|l| !l.contains(from))
        .map(str::trim)
        .collect()
}

#[test]
fn the_row_filter_runs_alone_and_moved_predicates_run_on_its_survivors() {
    big_stack(async {
        let f = fixture().await;
        let plan = f
            .physical(
                "officer1",
                "SELECT n FROM police.residents WHERE household = 'B1' OR n > 7",
            )
            .await;
        let below = lines_from(&plan, "BarrierExec: police.residents");
        // barrier, masks/projection, the moved predicate, the row filter's barrier, then the
        // row filter alone: evaluated by the Parquet reader as the scan's predicate
        // (`pushdown_filters`), or a `FilterExec` of its own where a source cannot.
        let filter_moved = below
            .iter()
            .position(|l| l.starts_with("FilterExec") && l.contains("household") && l.contains('B'))
            .unwrap_or_else(|| panic!("moved predicate below the barrier:\n{plan}"));
        let fence = below
            .iter()
            .position(|l| l.starts_with("RowFilterBarrierExec: police.residents"))
            .unwrap_or_else(|| panic!("row filter barrier:\n{plan}"));
        assert!(filter_moved < fence, "{plan}");
        // Below the row filter's barrier, nothing of the user's: not in a filter, and not in
        // the scan's predicate, which also decides which row groups and pages are read (by
        // the user's predicate, the time of an answer would depend on hidden rows: a
        // household of another district, compared by value, made the scan read the row
        // groups whose range spans it, 247 ms on 10 M residents, where a value outside every
        // range read none, 19 ms, though both answers were empty).
        let mut row_filter_seen = false;
        for line in &below[fence + 1..] {
            let evaluated = if line.starts_with("FilterExec") {
                line.split(", projection=").next().unwrap_or(line)
            } else if line.starts_with("DataSourceExec") {
                line.split(", predicate=")
                    .nth(1)
                    .and_then(|p| p.split(", pruning_predicate=").next())
                    .unwrap_or_default()
            } else {
                continue;
            };
            assert!(
                !evaluated.contains("household") && !evaluated.contains(" n@"),
                "below the row filter's barrier only the row filter is evaluated:\n{plan}"
            );
            row_filter_seen |= evaluated.contains("district@");
        }
        assert!(
            row_filter_seen,
            "the row filter runs below its barrier:\n{plan}"
        );
    });
}

#[test]
fn a_failing_like_on_a_hidden_row_is_no_oracle() {
    big_stack(async {
        let f = fixture().await;
        let huge = "_".repeat(20_000);
        // B1 exists but is hidden from officer1; ZZ does not exist at all
        let hidden = format!(
            "SELECT count(*) FROM police.residents WHERE (household = 'B1' AND household LIKE '{huge}') OR n = 100"
        );
        let absent = hidden.replace("'B1'", "'ZZ'");
        let a = f.run("officer1", &hidden).await;
        let b = f.run("officer1", &absent).await;
        assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "same outcome whether the hidden row exists: {a:?} / {b:?}"
        );
        assert!(
            a.as_ref()
                .err()
                .is_some_and(|e| e.contains("LIKE pattern cannot be used")),
            "refused while planning: {a:?}"
        );
    });
}

#[test]
fn moved_predicates_never_see_hidden_rows_even_when_they_match_them() {
    big_stack(async {
        let f = fixture().await;
        // household B1 is in district B: the moved predicate matches only a hidden row
        let out = f
            .run(
                "officer1",
                "SELECT count(*) AS c FROM police.residents WHERE household = 'B1'",
            )
            .await
            .expect("runs");
        assert!(out.contains("| 0 "), "{out}");
        let out = f
            .run(
                "officer1",
                "SELECT count(*) AS c FROM police.residents WHERE household = 'A1'",
            )
            .await
            .expect("runs");
        assert!(out.contains("| 1 "), "{out}");
    });
}

#[test]
fn without_a_row_filter_there_is_no_row_filter_barrier() {
    big_stack(async {
        let f = fixture().await;
        let plan = f
            .physical(
                "admin1",
                "SELECT n FROM police.residents WHERE household = 'B1'",
            )
            .await;
        assert!(!plan.contains("RowFilterBarrierExec"), "{plan}");
    });
}

#[test]
fn an_error_below_the_barrier_reaches_the_user_without_its_values() {
    big_stack(async {
        let f = fixture().await;
        let err = f
            .run("broken1", "SELECT n FROM police.residents")
            .await
            .expect_err("the row filter fails");
        assert!(err.contains("security policy of police.residents"), "{err}");
        for value in ["A1", "B1", "A2", "B2", "A3", "B3", "A4", "B4", "A5", "B5"] {
            assert!(!err.contains(value), "{err}");
        }
    });
}

#[test]
fn explain_analyze_shows_no_metrics_at_or_below_a_barrier() {
    big_stack(async {
        let f = fixture().await;
        let out = f
            .run(
                "officer1",
                "EXPLAIN ANALYZE SELECT count(*) FROM police.residents WHERE n >= 0",
            )
            .await
            .expect("runs");
        let below = lines_from(&out, "BarrierExec: police.residents");
        assert!(below.len() > 2, "{out}");
        assert!(below[0].contains("metrics withheld"), "{out}");
        for line in &below {
            assert!(
                !line.contains("output_rows") && !line.contains("selectivity"),
                "a metric below the barrier: {line}\n{out}"
            );
        }
        // above it: the visible rows only (5 of 10)
        let above: Vec<&str> = out
            .lines()
            .take_while(|l| !l.contains("BarrierExec: police.residents"))
            .collect();
        assert!(above.iter().any(|l| l.contains("output_rows")), "{out}");
        assert!(!out.contains("output_rows=10"), "{out}");
    });
}

#[test]
fn explain_analyze_shows_every_metric_where_no_policy_applies() {
    big_stack(async {
        let f = fixture().await;
        let out = f
            .run(
                "admin1",
                "EXPLAIN ANALYZE SELECT count(*) FROM police.residents",
            )
            .await
            .expect("runs");
        assert!(!out.contains("withheld"), "{out}");
        assert!(
            out.contains("DataSourceExec") && out.contains("output_rows=10"),
            "{out}"
        );
    });
}

#[test]
fn a_chain_of_operators_past_the_limit_is_refused_before_it_is_parsed() {
    big_stack(async {
        let f = fixture().await;
        let depth = f.engine.limits().max_expression_depth;
        let chain = format!("SELECT {}", vec!["1"; depth + 10].join("+"));
        let e = f.plan_error("admin1", &chain).await;
        assert!(matches!(e, Error::Limit { .. }), "{e}");
        assert!(e.to_string().contains("IN (…)"), "says what to do: {e}");
        // what BI tools send for a filter list still plans
        let ors = (0..100)
            .map(|i| format!("n = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        f.physical(
            "admin1",
            &format!("SELECT n FROM police.residents WHERE {ors}"),
        )
        .await;
        let list = (0..20_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        f.physical(
            "admin1",
            &format!("SELECT n FROM police.residents WHERE n IN ({list})"),
        )
        .await;
    });
}

#[test]
fn thousands_of_nested_parentheses_are_refused_by_the_parser() {
    big_stack(async {
        let f = fixture().await;
        let nested = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let e = f.plan_error("admin1", &nested).await;
        assert!(
            matches!(e, Error::Syntax { .. } | Error::Limit { .. }),
            "{e}"
        );
    });
}

#[test]
fn a_cte_doubled_sixteen_times_is_refused_before_it_is_expanded() {
    big_stack(async {
        let f = fixture().await;
        let mut sql = "WITH a0 AS (SELECT n FROM police.residents)".to_string();
        for i in 0..16 {
            sql.push_str(&format!(
                ", a{} AS (SELECT * FROM a{i} UNION ALL SELECT * FROM a{i})",
                i + 1
            ));
        }
        sql.push_str(" SELECT count(*) FROM a16");
        let started = std::time::Instant::now();
        let e = f.plan_error("admin1", &sql).await;
        assert!(matches!(e, Error::Limit { .. }), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "refused without expanding: {:?}",
            started.elapsed()
        );
    });
}

#[test]
fn a_join_of_hundreds_of_tables_is_refused() {
    big_stack(async {
        let f = fixture().await;
        let tables = (0..300)
            .map(|i| format!("police.residents r{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let e = f
            .plan_error("admin1", &format!("SELECT count(*) FROM {tables}"))
            .await;
        assert!(matches!(e, Error::Limit { .. }), "{e}");
    });
}

#[test]
fn planning_stops_at_its_deadline() {
    big_stack(async {
        let f = fixture().await;
        let past = std::time::Instant::now();
        let e = f
            .engine
            .plan_until(
                &f.principal("officer1"),
                "SELECT n FROM police.residents",
                None,
                Some(past),
            )
            .await
            .expect_err("past its deadline");
        assert!(matches!(e, Error::Timeout), "{e}");
    });
}

#[test]
fn a_plan_analysed_without_a_statement_scope_is_refused() {
    use datafusion::common::config::ConfigOptions;
    use datafusion::optimizer::AnalyzerRule;
    big_stack(async {
        let f = fixture().await;
        let plan = f
            .engine
            .sql_plan(&f.principal("officer1"), "SELECT n FROM police.residents")
            .await
            .expect("planned");
        // every statement's session is a copy of one; the copy carries the principal
        let rule = crate::rewrite::ScopedSecureScan::new(Arc::clone(f.engine.catalog()));
        let e = rule
            .analyze(plan, &ConfigOptions::default())
            .expect_err("no principal, no plan");
        assert!(e.to_string().contains("without a principal's scope"), "{e}");
    });
}

#[test]
fn now_is_the_statements_start() {
    big_stack(async {
        let f = fixture().await;
        let out = f
            .run(
                "officer1",
                "SELECT now() >= TIMESTAMP '2026-01-01T00:00:00Z' AS started",
            )
            .await
            .expect("now() is planned");
        assert!(out.contains("true"), "{out}");
        let out = f
            .run("officer1", "SELECT now() = now() AS same")
            .await
            .expect("now() is planned");
        assert!(out.contains("true"), "{out}");
    });
}

#[test]
fn joins_give_their_thread_back_between_batches() {
    big_stack(async {
        let f = fixture().await;
        let plan = f
            .physical(
                "admin1",
                "SELECT count(*) FROM police.residents a, police.residents b",
            )
            .await;
        let join = plan
            .lines()
            .position(|l| l.trim_start().starts_with("CrossJoinExec"))
            .expect("a cross join");
        let above = plan.lines().nth(join - 1).unwrap_or_default();
        assert!(above.trim_start().starts_with("CooperativeExec"), "{plan}");
    });
}

#[test]
fn repeat_of_a_huge_count_is_refused_while_planning() {
    big_stack(async {
        let f = fixture().await;
        let e = f
            .run("officer1", "SELECT repeat('x', 400000000)")
            .await
            .expect_err("refused");
        assert!(e.contains("max_function_output_mb"), "{e}");
    });
}

#[test]
fn functions_that_amplify_a_column_are_bounded_per_batch() {
    big_stack(async {
        let f = fixture().await;
        for sql in [
            "SELECT repeat(household, 100000000) FROM police.residents",
            "SELECT lpad(household, 100000000) FROM police.residents",
            "SELECT replace(household, '', repeat('y', 10000000)) FROM police.residents",
            "SELECT regexp_replace(household, '', repeat('y', 10000000), 'g') FROM police.residents",
        ] {
            let e = f.run("officer1", sql).await.expect_err(sql);
            // refused where the function runs, or, for a constant folded while planning,
            // as a constant too large to become a column
            assert!(
                e.contains("max_function_output_mb") || e.contains("at most 8 KiB"),
                "{sql}: {e}"
            );
        }
        // ordinary uses run
        let out = f
            .run(
                "officer1",
                "SELECT lpad(household, 5, '*') AS p, repeat('ab', 2) AS r FROM police.residents WHERE household = 'A1'",
            )
            .await
            .expect("runs");
        assert!(out.contains("***A1") && out.contains("abab"), "{out}");
    });
}

#[test]
fn concatenation_is_bounded_and_keeps_its_meaning() {
    big_stack(async {
        let f = fixture().await;
        let out = f
            .run(
                "officer1",
                "SELECT household || '-' || district AS h, NULL || household AS n FROM police.residents WHERE household = 'A1'",
            )
            .await
            .expect("runs");
        assert!(out.contains("A1-A"), "{out}");
        assert!(
            out.lines()
                .any(|l| l.contains("A1-A") && l.trim_end().ends_with("|   |")),
            "NULL || x is NULL: {out}"
        );
        let plan = f
            .physical(
                "officer1",
                "SELECT household || district AS h FROM police.residents",
            )
            .await;
        assert!(plan.contains("bounded_concat"), "{plan}");
        // a value doubled CTE after CTE fails once it passes the limit
        let mut sql =
            "WITH a0 AS (SELECT repeat(household, 500000) AS s FROM police.residents WHERE household = 'A1')"
                .to_string();
        for i in 0..40 {
            sql.push_str(&format!(", a{} AS (SELECT s || s AS s FROM a{i})", i + 1));
        }
        sql.push_str(" SELECT length(s) FROM a40");
        let e = f.run("officer1", &sql).await.expect_err("refused");
        assert!(e.contains("max_function_output_mb"), "{e}");
    });
}

#[test]
fn a_large_constant_made_into_a_column_is_refused_but_may_be_compared() {
    big_stack(async {
        let f = fixture().await;
        let big = "x".repeat(20_000);
        let e = f
            .run(
                "officer1",
                &format!("SELECT '{big}' AS c FROM police.residents"),
            )
            .await
            .expect_err("refused");
        assert!(e.contains("KiB"), "{e}");
        let out = f
            .run(
                "officer1",
                &format!("SELECT count(*) AS c FROM police.residents WHERE household = '{big}' OR household IN ('{big}', 'A1')"),
            )
            .await
            .expect("comparisons do not count");
        assert!(out.contains("| 1 "), "{out}");
    });
}
