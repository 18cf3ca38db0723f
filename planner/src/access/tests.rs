//! Unit tests of policy resolution: a catalog of two bureau tables and one topic library,
//! loaded the way `bund serve` loads it, with one principal per case resolved by id. Each
//! test states one property of the security contract (DESIGN.md, "Security contract";
//! README, "Security") and checks it twice where it can: on the resolved [`ScanPolicy`]
//! and on the rows a query returns. Configurations that must be refused are loaded from
//! variants of a small valid file and checked for the file, entry and field they name.
//! The last tests snapshot the plan of the rewrite (`planner/src/snapshots/`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bund_catalogs::LoadOptions;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::logical_expr::{Expr, col, in_list, lit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::collect;

use crate::tests::{big_stack, scratch};
use crate::{Engine, Error, PlannerSettings, ScanPolicy};

const RESIDENTS: &str = "police.residents";
const CASES: &str = "police.cases";

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

[[bureau.table]]
name = "cases"
description = "Cases by district."
open_level = "not_open"
source = { kind = "parquet", location = "cases/" }

[[topic]]
name = "population"
description = "Residents as the population topic library shows them."
owner = "police"
open_level = "not_open"
sql = "SELECT id_card, name, phone, district, n FROM police.residents"
"#;

/// One role per rule, principals holding one or two of them, and principals granted the
/// topic library but not the table it reads.
const SECURITY: &str = r#"
[[role]]
id = "admin"
[[role]]
id = "north"
[[role]]
id = "south"
[[role]]
id = "officer"
[[role]]
id = "resident"
[[role]]
id = "counter"
[[role]]
id = "namer"
[[role]]
id = "no_phone"
[[role]]
id = "plain"
[[role]]
id = "nobody"
[[role]]
id = "topic_reader"

[[principal]]
id = "admin1"
roles = ["admin"]
[[principal]]
id = "north1"
roles = ["north"]
[[principal]]
id = "south1"
roles = ["south"]
[[principal]]
id = "both1"
roles = ["north", "south"]
[[principal]]
id = "admin_north1"
roles = ["admin", "north"]
[[principal]]
id = "admin_namer1"
roles = ["admin", "namer"]
[[principal]]
id = "north_no_phone1"
roles = ["north", "no_phone"]
[[principal]]
id = "officer_ab"
roles = ["officer"]
attributes = { districts = ["A", "B"] }
[[principal]]
id = "officer_none"
roles = ["officer"]
[[principal]]
id = "officer_empty"
roles = ["officer"]
attributes = { districts = [] }
[[principal]]
id = "officer_quote"
roles = ["officer"]
attributes = { districts = ["O'Brien"] }
[[principal]]
id = "officer_inject"
roles = ["officer"]
attributes = { districts = ["') OR 1=1 --"] }
[[principal]]
id = "resident_quote"
roles = ["resident"]
attributes = { home = "O'Brien" }
[[principal]]
id = "resident_inject"
roles = ["resident"]
attributes = { home = "x' OR 'a'='a" }
[[principal]]
id = "counter2"
roles = ["counter"]
attributes = { below = 2 }
[[principal]]
id = "plain1"
roles = ["plain"]
[[principal]]
id = "nobody1"
roles = ["nobody"]
[[principal]]
id = "topic_a"
roles = ["topic_reader", "officer"]
attributes = { districts = ["A"] }
[[principal]]
id = "topic_b"
roles = ["topic_reader"]
[[principal]]
id = "north_reader1"
roles = ["north", "topic_reader"]

[[grant]]
roles = ["admin", "north", "south", "namer", "no_phone", "resident", "counter", "plain"]
datasets = ["police.residents", "police.cases"]

[[grant]]
principals = ["officer_ab", "officer_none", "officer_empty", "officer_quote", "officer_inject"]
datasets = ["police.residents"]

# The topic only: its readers are not granted the table it reads.
[[grant]]
roles = ["topic_reader"]
datasets = ["topic.population"]

[[policy]]
id = "residents"
dataset = "police.residents"
sensitive = ["id_card"]
restrictions = ["district <> 'Z'"]

  [[policy.rule]]
  roles = ["admin"]

  [[policy.rule]]
  roles = ["north"]
  row_filter = "district = 'A'"
  masks = { phone = "mask_phone" }

  [[policy.rule]]
  roles = ["south"]
  row_filter = "district = 'B'"
  masks = { phone = "mask_null" }

  [[policy.rule]]
  roles = ["officer"]
  row_filter = "district IN ${principal.districts}"
  masks = { id_card = "mask_id_card" }

  [[policy.rule]]
  roles = ["resident"]
  row_filter = "district = ${principal.home}"

  [[policy.rule]]
  roles = ["counter"]
  row_filter = "n < ${principal.below}"

  [[policy.rule]]
  roles = ["namer"]
  masks = { name = "mask_name_cn" }

  [[policy.rule]]
  roles = ["no_phone"]
  deny = ["phone"]

  [[policy.rule]]
  default = true
  deny = ["id_card"]
  masks = { name = "mask_name_cn" }

# No default rule: a principal no rule names sees no row.
[[policy]]
id = "cases"
dataset = "police.cases"

  [[policy.rule]]
  roles = ["north"]
  row_filter = "district = 'A'"
"#;

/// Districts of residents 0..=7: resident 5 lives where the restriction hides everyone, 6
/// and 7 where a spliced attribute would break out of its quotes.
const DISTRICTS: [&str; 8] = ["A", "A", "B", "B", "C", "Z", "O'Brien", "') OR 1=1 --"];
const NAMES: [&str; 8] = [
    "张三丰",
    "李小龙",
    "王大锤",
    "赵子龙",
    "孙悟空",
    "周杰伦",
    "吴承恩",
    "郑成功",
];

fn id_card(n: usize) -> String {
    format!("31011519900101{n:03}X")
}

fn phone(n: usize) -> String {
    format!("1381234{n:04}")
}

fn write_parquet(dir: &Path, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    std::fs::create_dir_all(dir).expect("data dir");
    let file = std::fs::File::create(dir.join("part-0.parquet")).expect("parquet file");
    let mut w = ArrowWriter::try_new(file, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

fn write_data(dir: &Path) {
    let n = DISTRICTS.len();
    write_parquet(
        &dir.join("residents"),
        vec![
            (
                "id_card",
                Arc::new(StringArray::from_iter_values((0..n).map(id_card))),
            ),
            ("name", Arc::new(StringArray::from(NAMES.to_vec()))),
            (
                "phone",
                Arc::new(StringArray::from_iter_values((0..n).map(phone))),
            ),
            ("district", Arc::new(StringArray::from(DISTRICTS.to_vec()))),
            ("n", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ],
    );
    write_parquet(
        &dir.join("cases"),
        vec![
            ("district", Arc::new(StringArray::from(vec!["A", "B"]))),
            ("n", Arc::new(Int64Array::from(vec![0, 1]))),
        ],
    );
}

/// Writes the catalog, the data and `security` to a new directory and loads it.
async fn load(security: &str) -> (PathBuf, Result<Engine, bund_catalogs::Error>) {
    let dir = scratch();
    std::fs::write(dir.join("catalog.toml"), CATALOG).expect("catalog.toml");
    std::fs::write(dir.join("security.toml"), security).expect("security.toml");
    write_data(&dir.join("data"));
    let engine = Engine::load(
        &LoadOptions::new(dir.clone(), dir.join("data")),
        PlannerSettings::default(),
    )
    .await;
    (dir, engine)
}

/// Loads a configuration that must be refused; every problem it reports.
async fn refused(security: &str) -> Vec<bund_catalogs::ConfigError> {
    let (dir, engine) = load(security).await;
    let _ = std::fs::remove_dir_all(&dir);
    match engine {
        Ok(_) => panic!("loaded:\n{security}"),
        Err(bund_catalogs::Error::Invalid(errors)) => errors.0,
        Err(e) => panic!("refused for another reason: {e}"),
    }
}

/// The fixture and its directory, loaded once per test binary.
async fn fixture() -> &'static (PathBuf, Engine) {
    static FIXTURE: OnceLock<(PathBuf, Engine)> = OnceLock::new();
    if let Some(f) = FIXTURE.get() {
        return f;
    }
    let (dir, engine) = load(SECURITY).await;
    let engine = engine.unwrap_or_else(|e| panic!("fixture: {e}"));
    let _ = FIXTURE.set((dir, engine));
    FIXTURE.get().expect("set above")
}

async fn engine() -> &'static Engine {
    &fixture().await.1
}

/// The policy a principal's scans of a dataset get.
fn policy(engine: &Engine, who: &str, dataset: &str) -> Arc<ScanPolicy> {
    let principal = engine
        .catalog()
        .security
        .principal(who)
        .unwrap_or_else(|| panic!("{who} in the fixture"));
    let access = engine.access(&principal).expect("access");
    Arc::clone(
        access
            .policy(dataset)
            .unwrap_or_else(|| panic!("{dataset} has a policy for {who}")),
    )
}

/// Runs a statement; its rows as text (`NULL` for nulls), or the error's text.
async fn rows(engine: &Engine, who: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let principal = engine
        .catalog()
        .security
        .principal(who)
        .unwrap_or_else(|| panic!("{who} in the fixture"));
    let planned = engine
        .plan(&principal, sql, None)
        .await
        .map_err(|e| e.to_string())?;
    let batches = collect(planned.physical, planned.task_ctx)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for b in &batches {
        for row in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, row).expect("displayable")
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The residents (`n`) a principal sees through `from` (a dataset or a view of one).
async fn visible_n(engine: &Engine, who: &str, from: &str) -> Vec<i64> {
    let sql = format!("SELECT n FROM {from} ORDER BY n");
    rows(engine, who, &sql)
        .await
        .unwrap_or_else(|e| panic!("{who}: {sql}: {e}"))
        .iter()
        .map(|r| r[0].parse().expect("n"))
        .collect()
}

/// One column of a query's rows.
async fn column(engine: &Engine, who: &str, sql: &str) -> Vec<String> {
    rows(engine, who, sql)
        .await
        .unwrap_or_else(|e| panic!("{who}: {sql}: {e}"))
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect()
}

/// The restriction of the residents' policy, as it is resolved for everyone.
fn restriction() -> Expr {
    col("district").not_eq(lit("Z"))
}

/// The function of a resolved mask (`mask_phone(phone) AS phone` → `mask_phone`).
fn mask_function(p: &ScanPolicy, column: &str) -> Option<String> {
    let e = p.masks.get(column)?;
    match e.clone().unalias() {
        Expr::ScalarFunction(f) => Some(f.name().to_string()),
        other => panic!("a mask of {column} that is not a function call: {other}"),
    }
}

/// Every resident except the one the restriction hides.
const ALL_BUT_RESTRICTED: [i64; 7] = [0, 1, 2, 3, 4, 6, 7];

// ---------------------------------------------------------------------------------------
// Several rules: row filters ORed, restrictions ANDed.

#[test]
fn rules_of_two_roles_are_ored_into_one_row_filter() {
    big_stack(async {
        let e = engine().await;
        assert_eq!(visible_n(e, "north1", RESIDENTS).await, [0, 1]);
        assert_eq!(visible_n(e, "south1", RESIDENTS).await, [2, 3]);
        assert_eq!(
            visible_n(e, "both1", RESIDENTS).await,
            [0, 1, 2, 3],
            "the union of both roles' rows"
        );
        let p = policy(e, "both1", RESIDENTS);
        let expected = col("district")
            .eq(lit("A"))
            .or(col("district").eq(lit("B")))
            .and(restriction());
        assert_eq!(
            p.row_filter.as_ref(),
            Some(&expected),
            "(north OR south) AND restriction, got {:?}",
            p.row_filter.as_ref().map(ToString::to_string)
        );
        assert_eq!(
            p.applied,
            [
                "residents/north#2",
                "residents/south#3",
                "residents/restrictions"
            ]
        );
    });
}

#[test]
fn a_rule_without_a_row_filter_admits_every_row_when_ored_with_another() {
    big_stack(async {
        let e = engine().await;
        assert_eq!(
            visible_n(e, "admin_north1", RESIDENTS).await,
            ALL_BUT_RESTRICTED
        );
        let p = policy(e, "admin_north1", RESIDENTS);
        assert_eq!(p.row_filter, Some(restriction()));
    });
}

#[test]
fn restrictions_are_anded_for_a_rule_without_a_row_filter() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "admin1", RESIDENTS);
        assert_eq!(p.row_filter, Some(restriction()));
        assert!(p.masks.is_empty() && p.denied.is_empty(), "{p:?}");
        assert_eq!(visible_n(e, "admin1", RESIDENTS).await, ALL_BUT_RESTRICTED);
        // a user predicate that asks for the restricted row gets nothing
        assert_eq!(
            column(
                e,
                "admin1",
                "SELECT count(*) FROM police.residents WHERE district = 'Z'"
            )
            .await,
            ["0"]
        );
    });
}

#[test]
fn restrictions_are_anded_for_the_default_rule() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "plain1", RESIDENTS);
        assert_eq!(p.row_filter, Some(restriction()));
        assert_eq!(visible_n(e, "plain1", RESIDENTS).await, ALL_BUT_RESTRICTED);
    });
}

// ---------------------------------------------------------------------------------------
// Masks: the most restrictive wins.

#[test]
fn the_mask_earlier_in_the_default_mask_order_wins() {
    big_stack(async {
        let e = engine().await;
        // mask_null comes before mask_phone in DEFAULT_MASK_ORDER
        let null = crate::DEFAULT_MASK_ORDER
            .iter()
            .position(|f| *f == "mask_null");
        let phone = crate::DEFAULT_MASK_ORDER
            .iter()
            .position(|f| *f == "mask_phone");
        assert!(null < phone, "{:?}", crate::DEFAULT_MASK_ORDER);
        let p = policy(e, "both1", RESIDENTS);
        assert_eq!(mask_function(&p, "phone").as_deref(), Some("mask_null"));
        let phones = column(e, "both1", "SELECT phone FROM police.residents").await;
        assert_eq!(phones, ["NULL"; 4]);
        // each role alone keeps its own mask
        assert_eq!(
            mask_function(&policy(e, "north1", RESIDENTS), "phone").as_deref(),
            Some("mask_phone")
        );
    });
}

#[test]
fn the_mask_order_of_security_toml_decides_which_mask_wins() {
    big_stack(async {
        let security = format!(
            "mask_order = [\"mask_phone\", \"mask_null\", \"mask_id_card\", \"mask_name_cn\"]\n{SECURITY}"
        );
        let (dir, e) = load(&security).await;
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        let p = policy(&e, "both1", RESIDENTS);
        assert_eq!(mask_function(&p, "phone").as_deref(), Some("mask_phone"));
        let phones = column(&e, "both1", "SELECT phone FROM police.residents ORDER BY n").await;
        assert_eq!(
            phones,
            ["138****0000", "138****0001", "138****0002", "138****0003"]
        );
        drop(e);
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn a_mask_wins_over_a_rule_that_leaves_the_column_raw() {
    big_stack(async {
        let e = engine().await;
        // admin leaves every column raw; namer masks name, north masks phone
        let p = policy(e, "admin_namer1", RESIDENTS);
        assert_eq!(mask_function(&p, "name").as_deref(), Some("mask_name_cn"));
        let names = column(
            e,
            "admin_namer1",
            "SELECT name FROM police.residents ORDER BY n",
        )
        .await;
        assert_eq!(names.len(), ALL_BUT_RESTRICTED.len());
        for (shown, raw) in names.iter().zip(NAMES) {
            assert_ne!(shown, raw, "{names:?}");
            assert!(shown.contains('*'), "{names:?}");
        }
        let p = policy(e, "admin_north1", RESIDENTS);
        assert_eq!(mask_function(&p, "phone").as_deref(), Some("mask_phone"));
        let phones = column(
            e,
            "admin_north1",
            "SELECT phone FROM police.residents ORDER BY n",
        )
        .await;
        assert_eq!(phones.first().map(String::as_str), Some("138****0000"));
        assert!(!phones.contains(&phone(0)), "{phones:?}");
    });
}

#[test]
fn a_denied_column_wins_over_any_mask() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "north_no_phone1", RESIDENTS);
        assert!(p.denied.contains("phone"), "{p:?}");
        assert!(!p.masks.contains_key("phone"), "{p:?}");
        let header = rows(
            e,
            "north_no_phone1",
            "SELECT * FROM police.residents LIMIT 1",
        )
        .await
        .expect("runs");
        assert_eq!(header[0].len(), 4, "id_card, name, district, n: {header:?}");
        // the denied column fails as a column that does not exist
        let denied = rows(e, "north_no_phone1", "SELECT phone FROM police.residents")
            .await
            .expect_err("phone is denied");
        let absent = rows(e, "north_no_phone1", "SELECT phonf FROM police.residents")
            .await
            .expect_err("phonf does not exist");
        assert_eq!(denied.replace("phone", "?"), absent.replace("phonf", "?"));
    });
}

// ---------------------------------------------------------------------------------------
// Attributes: typed literals; missing or empty means no rows.

#[test]
fn a_missing_attribute_admits_no_rows_without_an_error() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "officer_none", RESIDENTS);
        assert_eq!(p.row_filter, Some(lit(false).and(restriction())));
        assert_eq!(visible_n(e, "officer_none", RESIDENTS).await, [0i64; 0]);
    });
}

#[test]
fn an_empty_list_attribute_admits_no_rows() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "officer_empty", RESIDENTS);
        assert_eq!(p.row_filter, Some(lit(false).and(restriction())));
        assert_eq!(visible_n(e, "officer_empty", RESIDENTS).await, [0i64; 0]);
    });
}

#[test]
fn a_list_attribute_becomes_an_in_list_of_its_values() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "officer_ab", RESIDENTS);
        let expected = in_list(col("district"), vec![lit("A"), lit("B")], false).and(restriction());
        assert_eq!(p.row_filter, Some(expected));
        assert_eq!(visible_n(e, "officer_ab", RESIDENTS).await, [0, 1, 2, 3]);
    });
}

#[test]
fn a_list_value_that_looks_like_sql_matches_only_itself() {
    big_stack(async {
        let e = engine().await;
        assert_eq!(visible_n(e, "officer_inject", RESIDENTS).await, [7]);
        assert_eq!(visible_n(e, "officer_quote", RESIDENTS).await, [6]);
        let p = policy(e, "officer_inject", RESIDENTS);
        // a list of one value is compared with it
        let expected = col("district").eq(lit("') OR 1=1 --")).and(restriction());
        assert_eq!(p.row_filter, Some(expected));
    });
}

#[test]
fn a_scalar_attribute_is_bound_as_a_typed_literal() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "resident_quote", RESIDENTS);
        assert_eq!(
            p.row_filter,
            Some(col("district").eq(lit("O'Brien")).and(restriction()))
        );
        assert_eq!(visible_n(e, "resident_quote", RESIDENTS).await, [6]);
        // `x' OR 'a'='a` spliced into quotes would admit every row; bound, it admits none
        assert_eq!(visible_n(e, "resident_inject", RESIDENTS).await, [0i64; 0]);
        // an integer attribute is an integer literal
        let p = policy(e, "counter2", RESIDENTS);
        assert_eq!(
            p.row_filter,
            Some(col("n").lt(lit(2i64)).and(restriction()))
        );
        assert_eq!(visible_n(e, "counter2", RESIDENTS).await, [0, 1]);
    });
}

// ---------------------------------------------------------------------------------------
// Deny by default.

#[test]
fn an_ungranted_dataset_fails_exactly_like_a_table_that_does_not_exist() {
    big_stack(async {
        let e = engine().await;
        for (real, made_up) in [
            (
                "SELECT * FROM police.residents",
                "SELECT * FROM police.resident5",
            ),
            (
                "SELECT id_card FROM police.residents WHERE n = 1",
                "SELECT id_card FROM police.resident5 WHERE n = 1",
            ),
            (
                "SELECT count(*) FROM topic.population",
                "SELECT count(*) FROM topic.p0pulation",
            ),
            (
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM police.residents)",
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM police.resident5)",
            ),
        ] {
            let a = rows(e, "nobody1", real).await.expect_err(real);
            let b = rows(e, "nobody1", made_up).await.expect_err(made_up);
            assert_eq!(
                a,
                b.replace("resident5", "residents")
                    .replace("p0pulation", "population"),
                "{real} / {made_up}"
            );
        }
        let principal = e.catalog().security.principal("nobody1").expect("nobody1");
        let access = e.access(&principal).expect("access");
        assert!(access.datasets.is_empty(), "{:?}", access.datasets);
        let err = e
            .plan(&principal, "SELECT * FROM police.residents", None)
            .await
            .expect_err("not granted");
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    });
}

#[test]
fn an_ungranted_dataset_is_absent_from_information_schema() {
    big_stack(async {
        let e = engine().await;
        let sql = "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                   WHERE table_schema <> 'information_schema' ORDER BY 1";
        assert_eq!(
            column(e, "admin1", sql).await,
            ["police.cases", "police.residents"]
        );
        assert_eq!(column(e, "nobody1", sql).await, Vec::<String>::new());
        assert_eq!(column(e, "topic_a", sql).await, ["topic.population"]);
    });
}

#[test]
fn a_granted_principal_no_rule_names_gets_the_default_rule() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "plain1", RESIDENTS);
        assert_eq!(p.applied, ["residents/default", "residents/restrictions"]);
        assert!(p.denied.contains("id_card") && p.denied.len() == 1, "{p:?}");
        assert_eq!(mask_function(&p, "name").as_deref(), Some("mask_name_cn"));
        let out = rows(e, "plain1", "SELECT * FROM police.residents ORDER BY n")
            .await
            .expect("runs");
        assert_eq!(out.len(), ALL_BUT_RESTRICTED.len());
        assert_eq!(out[0].len(), 4, "name, phone, district, n: {out:?}");
        assert_eq!(out[0][1], phone(0), "phone is not masked by the default");
        assert_ne!(out[0][0], NAMES[0]);
    });
}

#[test]
fn a_principal_no_rule_names_sees_no_row_of_a_policy_without_a_default_rule() {
    big_stack(async {
        let e = engine().await;
        let p = policy(e, "plain1", CASES);
        assert_eq!(p.row_filter, Some(lit(false)));
        assert_eq!(p.applied, ["cases/no-rule"]);
        assert_eq!(visible_n(e, "plain1", CASES).await, [0i64; 0]);
        assert_eq!(visible_n(e, "north1", CASES).await, [0]);
    });
}

#[test]
fn a_personal_dataset_without_a_policy_is_refused_at_load() {
    big_stack(async {
        // the valid file of the refusal cases, less its one policy
        let security = VALID.split("[[policy]]").next().expect("grants");
        let errors = refused(security).await;
        let found = errors.iter().find(|e| e.field == "policy");
        let Some(found) = found else {
            panic!("no error about the missing policy: {errors:?}");
        };
        assert!(found.file.ends_with("security.toml"), "{found}");
        assert!(
            found.message.contains("police.residents") && found.message.contains("personal"),
            "{found}"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    });
}

#[test]
fn a_dataset_with_sensitive_columns_and_no_default_rule_is_refused_at_load() {
    big_stack(async {
        let security = SECURITY.replace(
            "  [[policy.rule]]\n  default = true\n  deny = [\"id_card\"]\n  masks = { name = \"mask_name_cn\" }\n",
            "",
        );
        assert_ne!(security, SECURITY, "the default rule was removed");
        let errors = refused(&security).await;
        let ok = errors.iter().any(|e| {
            e.file.ends_with("security.toml")
                && e.entry == "policy \"residents\""
                && e.field == "rule"
                && e.message.contains("no default rule")
        });
        assert!(ok, "{errors:?}");
    });
}

// ---------------------------------------------------------------------------------------
// Topic libraries: the caller's policy on the bureau tables they read.

#[test]
fn a_topic_applies_the_invoking_principals_policy_to_its_bureau_table() {
    big_stack(async {
        let e = engine().await;
        let sql = "SELECT id_card, name, n FROM topic.population ORDER BY n";
        // topic_a: the officer rule (district A, ID numbers masked)
        let a = rows(e, "topic_a", sql)
            .await
            .expect("topic_a reads the topic");
        let a_n: Vec<&str> = a.iter().map(|r| r[2].as_str()).collect();
        assert_eq!(a_n, ["0", "1"]);
        assert_eq!(a[0][0], "310115********000X", "raw {}", id_card(0));
        assert_eq!(a[0][1], NAMES[0], "the officer rule leaves names raw");
        // topic_b: the default rule (every district, ID numbers denied, names masked)
        let b = rows(e, "topic_b", sql)
            .await
            .expect("topic_b reads the topic");
        let b_n: Vec<i64> = b.iter().map(|r| r[2].parse().expect("n")).collect();
        assert_eq!(b_n, ALL_BUT_RESTRICTED);
        assert!(
            b.iter().all(|r| r[0] == "NULL"),
            "a denied column is NULL inside a view: {b:?}"
        );
        assert!(b.iter().all(|r| r[1].contains('*')), "names masked: {b:?}");
        // the audit trail names the rule of the caller
        let planned = e
            .plan(
                &e.catalog().security.principal("topic_a").expect("topic_a"),
                sql,
                None,
            )
            .await
            .expect("plans");
        assert!(
            planned.touched.policies.contains("residents/officer#4"),
            "{:?}",
            planned.touched
        );
        assert!(planned.touched.datasets.contains(RESIDENTS));
    });
}

#[test]
fn a_topic_policy_applies_on_top_of_the_callers_policy_on_the_table() {
    big_stack(async {
        let security = format!(
            "{SECURITY}
[[policy]]
id = \"population\"
dataset = \"topic.population\"

  [[policy.rule]]
  default = true
  row_filter = \"n <> 0\"
  masks = {{ district = \"mask_null\" }}
  deny = [\"phone\"]
"
        );
        let (dir, e) = load(&security).await;
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        let sql = "SELECT id_card, district, n FROM topic.population ORDER BY n";
        // topic_a: the officer rule on the table (district A, ID numbers masked), then the
        // topic's default rule (n <> 0, district masked)
        let a = rows(&e, "topic_a", sql).await.expect("runs");
        assert_eq!(
            a,
            [[
                "310115********001X".to_string(),
                "NULL".to_string(),
                "1".to_string()
            ]]
        );
        // topic_b: the table's default rule (every district but Z, ID numbers denied), then
        // the topic's
        let b = rows(&e, "topic_b", sql).await.expect("runs");
        let b_n: Vec<i64> = b.iter().map(|r| r[2].parse().expect("n")).collect();
        assert_eq!(b_n, [1, 2, 3, 4, 6, 7]);
        assert!(b.iter().all(|r| r[0] == "NULL" && r[1] == "NULL"), "{b:?}");
        // the topic's denied column does not exist for its readers
        let denied = rows(&e, "topic_a", "SELECT phone FROM topic.population")
            .await
            .expect_err("phone is denied");
        let absent = rows(&e, "topic_a", "SELECT phonf FROM topic.population")
            .await
            .expect_err("phonf does not exist");
        assert_eq!(denied.replace("phone", "?"), absent.replace("phonf", "?"));
        drop(e);
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn grants_of_two_roles_add_up() {
    big_stack(async {
        let e = engine().await;
        let sql = "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                   WHERE table_schema <> 'information_schema' ORDER BY 1";
        assert_eq!(
            column(e, "north_reader1", sql).await,
            ["police.cases", "police.residents", "topic.population"]
        );
        // the same rule applies to the table read directly and through the topic
        assert_eq!(visible_n(e, "north_reader1", RESIDENTS).await, [0, 1]);
        assert_eq!(
            visible_n(e, "north_reader1", "topic.population").await,
            [0, 1]
        );
    });
}

#[test]
fn a_topic_grant_is_enough_to_read_the_topic_but_not_the_table_it_reads() {
    big_stack(async {
        let e = engine().await;
        for who in ["topic_a", "topic_b"] {
            let direct = rows(e, who, "SELECT n FROM police.residents")
                .await
                .expect_err("the table is not granted");
            let absent = rows(e, who, "SELECT n FROM police.resident5")
                .await
                .expect_err("no such table");
            assert_eq!(direct, absent.replace("resident5", "residents"), "{who}");
            assert!(
                !visible_n(e, who, "topic.population").await.is_empty(),
                "{who} reads the topic"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// Load-time validation: every problem names the file, the entry and the field.

/// A valid file that each case below breaks in one place.
const VALID: &str = r#"
[[role]]
id = "officer"

[[principal]]
id = "o1"
roles = ["officer"]
attributes = { home = "A", districts = ["A"] }

[[grant]]
roles = ["officer"]
datasets = ["police.residents", "police.cases"]

[[policy]]
id = "residents"
dataset = "police.residents"
sensitive = ["id_card"]

  [[policy.rule]]
  default = true
  deny = ["id_card"]
"#;

struct Case {
    what: &'static str,
    /// Text put before the valid file (top-level keys such as `mask_order`).
    before: &'static str,
    /// Text put after it.
    after: &'static str,
    entry: &'static str,
    field: &'static str,
    message: &'static str,
}

/// A policy of `police.cases` whose one rule is `rule` (TOML lines).
macro_rules! cases_rule {
    ($rule:expr) => {
        concat!(
            "\n[[policy]]\nid = \"cases\"\ndataset = \"police.cases\"\n\n  [[policy.rule]]\n",
            $rule,
            "\n"
        )
    };
}

const CASES_RULE: &str = "policy \"cases\" rule #1";

const INVALID: &[Case] = &[
    Case {
        what: "unknown role in a grant",
        before: "",
        after: "\n[[grant]]\nroles = [\"ghost\"]\ndatasets = [\"police.cases\"]\n",
        entry: "grant #2",
        field: "roles",
        message: "unknown role `ghost`",
    },
    Case {
        what: "unknown principal in a grant",
        before: "",
        after: "\n[[grant]]\nprincipals = [\"ghost\"]\ndatasets = [\"police.cases\"]\n",
        entry: "grant #2",
        field: "principals",
        message: "unknown principal `ghost`",
    },
    Case {
        what: "unknown dataset in a grant",
        before: "",
        after: "\n[[grant]]\nroles = [\"officer\"]\ndatasets = [\"police.ghost\"]\n",
        entry: "grant #2",
        field: "datasets",
        message: "unknown dataset `police.ghost`",
    },
    Case {
        what: "unknown role in a rule",
        before: "",
        after: cases_rule!("  roles = [\"ghost\"]"),
        entry: CASES_RULE,
        field: "roles",
        message: "unknown role `ghost`",
    },
    Case {
        what: "unknown mask function",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  masks = { district = \"mask_bogus\" }"),
        entry: CASES_RULE,
        field: "masks.district",
        message: "`mask_bogus` is not a masking function",
    },
    Case {
        what: "a function that is not a mask",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  masks = { district = \"upper\" }"),
        entry: CASES_RULE,
        field: "masks.district",
        message: "`upper` is not a masking function",
    },
    Case {
        what: "mask not in mask_order",
        before: "mask_order = [\"mask_null\"]\n",
        after: cases_rule!("  roles = [\"officer\"]\n  masks = { district = \"mask_phone\" }"),
        entry: CASES_RULE,
        field: "masks.district",
        message: "`mask_phone` is not in mask_order",
    },
    Case {
        what: "mask_order naming a function that is not a mask",
        before: "mask_order = [\"mask_null\", \"upper\"]\n",
        after: "",
        entry: "",
        field: "mask_order",
        message: "`upper` is not a masking function",
    },
    Case {
        what: "mask_order naming a function twice",
        before: "mask_order = [\"mask_null\", \"mask_null\"]\n",
        after: "",
        entry: "",
        field: "mask_order",
        message: "`mask_null` is listed twice",
    },
    Case {
        what: "mask that changes the column's type",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  masks = { n = \"mask_phone\" }"),
        entry: CASES_RULE,
        field: "masks.n",
        message: "mask_phone",
    },
    Case {
        what: "mask of a column the dataset does not have",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  masks = { ghost = \"mask_null\" }"),
        entry: CASES_RULE,
        field: "masks.ghost",
        message: "has no column `ghost`",
    },
    Case {
        what: "deny of a column the dataset does not have",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  deny = [\"ghost\"]"),
        entry: CASES_RULE,
        field: "deny",
        message: "has no column `ghost`",
    },
    Case {
        what: "a column both masked and denied by one rule",
        before: "",
        after: cases_rule!(
            "  roles = [\"officer\"]\n  deny = [\"district\"]\n  masks = { district = \"mask_null\" }"
        ),
        entry: CASES_RULE,
        field: "masks.district",
        message: "mask it or deny it, not both",
    },
    Case {
        what: "row filter that is not boolean",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n + 1\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "must be a boolean expression",
    },
    Case {
        what: "row filter with a scalar subquery",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n = (SELECT 1)\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a subquery",
    },
    Case {
        what: "row filter with EXISTS",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"EXISTS (SELECT 1)\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a subquery",
    },
    Case {
        what: "row filter with IN (subquery)",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n IN (SELECT 1)\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a subquery",
    },
    Case {
        what: "row filter with an aggregate",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"count(n) > 0\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "an aggregate function",
    },
    Case {
        what: "row filter with a window function",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"row_number() OVER () > 1\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a window function",
    },
    Case {
        what: "row filter with a volatile function",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"random() < 0.5\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a volatile function",
    },
    Case {
        what: "row filter with a query parameter",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n = $1\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "attribute reference",
    },
    Case {
        what: "row filter with a positional parameter",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n = ?\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "a parameter",
    },
    Case {
        what: "row filter over a column the dataset does not have",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"ghost = 1\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "does not plan",
    },
    Case {
        what: "row filter with a reference that is not an attribute",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"district = ${user.home}\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "is not an attribute reference",
    },
    Case {
        what: "row filter that is not boolean once a principal's attribute is bound",
        before: "",
        after: cases_rule!("  roles = [\"officer\"]\n  row_filter = \"${principal.home}\""),
        entry: CASES_RULE,
        field: "row_filter",
        message: "for principal `o1`: must be a boolean expression",
    },
    Case {
        what: "attribute reference inside quotes",
        before: "",
        after: cases_rule!(
            "  roles = [\"officer\"]\n  row_filter = \"district = '${principal.home}'\""
        ),
        entry: CASES_RULE,
        field: "row_filter",
        message: "`${principal.home}` is inside quotes",
    },
    Case {
        what: "list attribute used as one value",
        before: "",
        after: cases_rule!(
            "  roles = [\"officer\"]\n  row_filter = \"district = ${principal.districts}\""
        ),
        entry: CASES_RULE,
        field: "row_filter",
        message: "attribute `districts` is a list",
    },
    Case {
        what: "restriction that uses an attribute",
        before: "",
        after: "\n[[policy]]\nid = \"cases\"\ndataset = \"police.cases\"\nrestrictions = [\"district = ${principal.home}\"]\n",
        entry: "policy \"cases\"",
        field: "restrictions[0]",
        message: "cannot use ${principal.",
    },
    Case {
        what: "restriction that is not boolean",
        before: "",
        after: "\n[[policy]]\nid = \"cases\"\ndataset = \"police.cases\"\nrestrictions = [\"n * 2\"]\n",
        entry: "policy \"cases\"",
        field: "restrictions[0]",
        message: "must be a boolean expression",
    },
    Case {
        what: "restriction with a subquery",
        before: "",
        after: "\n[[policy]]\nid = \"cases\"\ndataset = \"police.cases\"\nrestrictions = [\"EXISTS (SELECT 1)\"]\n",
        entry: "policy \"cases\"",
        field: "restrictions[0]",
        message: "a subquery",
    },
    Case {
        what: "rule that names no one",
        before: "",
        after: cases_rule!("  row_filter = \"n > 0\""),
        entry: CASES_RULE,
        field: "roles",
        message: "names no role and no principal",
    },
    Case {
        what: "default rule that names a role",
        before: "",
        after: cases_rule!("  default = true\n  roles = [\"officer\"]"),
        entry: CASES_RULE,
        field: "default",
        message: "remove its roles and principals",
    },
    Case {
        what: "two default rules",
        before: "",
        after: concat!(
            cases_rule!("  default = true"),
            "\n  [[policy.rule]]\n  default = true\n"
        ),
        entry: "policy \"cases\" rule #2",
        field: "default",
        message: "a policy has one default rule",
    },
    Case {
        what: "default rule that shows a sensitive column raw",
        before: "",
        after: "\n[[policy]]\nid = \"cases\"\ndataset = \"police.cases\"\nsensitive = [\"district\"]\n\n  [[policy.rule]]\n  default = true\n",
        entry: "policy \"cases\"",
        field: "sensitive",
        message: "shows sensitive column `district` raw",
    },
    Case {
        what: "two rules whose masks mask_order cannot rank",
        before: "",
        after: concat!(
            "\n[[role]]\nid = \"clerk\"\n",
            cases_rule!(
                "  roles = [\"officer\"]\n  masks = { district = { function = \"mask_keep\", args = [1, 0] } }"
            ),
            "\n  [[policy.rule]]\n  roles = [\"clerk\"]\n  masks = { district = { function = \"mask_keep\", args = [0, 1] } }\n"
        ),
        entry: "policy \"cases\"",
        field: "rule",
        message: "which mask_order cannot rank",
    },
    Case {
        what: "policy of an unknown dataset",
        before: "",
        after: "\n[[policy]]\nid = \"ghost\"\ndataset = \"police.ghost\"\n",
        entry: "policy \"ghost\"",
        field: "dataset",
        message: "unknown dataset `police.ghost`",
    },
    Case {
        what: "second policy of one dataset",
        before: "",
        after: "\n[[policy]]\nid = \"residents2\"\ndataset = \"police.residents\"\n",
        entry: "policy \"residents2\"",
        field: "dataset",
        message: "already has a policy",
    },
    Case {
        what: "duplicate policy id",
        before: "",
        after: "\n[[policy]]\nid = \"residents\"\ndataset = \"police.cases\"\n",
        entry: "policy \"residents\"",
        field: "id",
        message: "duplicate policy id",
    },
    Case {
        what: "anonymous granted data that is not unconditionally open",
        before: "",
        after: "\n[[grant]]\nroles = [\"anonymous\"]\ndatasets = [\"police.cases\"]\n",
        entry: "grant #2",
        field: "datasets",
        message: "not unconditionally open",
    },
];

#[test]
fn the_valid_configuration_of_the_refusal_cases_loads() {
    big_stack(async {
        let (dir, e) = load(VALID).await;
        let _ = std::fs::remove_dir_all(dir);
        if let Err(e) = e {
            panic!("{e}");
        }
    });
}

#[test]
fn every_invalid_entry_is_refused_naming_its_file_entry_and_field() {
    big_stack(async {
        let mut failures = Vec::new();
        for case in INVALID {
            let security = format!("{}{VALID}{}", case.before, case.after);
            let (dir, loaded) = load(&security).await;
            let _ = std::fs::remove_dir_all(dir);
            let errors = match loaded {
                Ok(_) => {
                    failures.push(format!("{}: loaded", case.what));
                    continue;
                }
                Err(bund_catalogs::Error::Invalid(errors)) => errors.0,
                Err(e) => {
                    failures.push(format!("{}: refused for another reason: {e}", case.what));
                    continue;
                }
            };
            let named = errors.iter().any(|e| {
                e.file.ends_with("security.toml")
                    && e.entry == case.entry
                    && e.field == case.field
                    && e.message.contains(case.message)
            });
            if !named {
                let got: Vec<String> = errors
                    .iter()
                    .map(|e| format!("[{}] [{}] {}", e.entry, e.field, e.message))
                    .collect();
                failures.push(format!(
                    "{}: expected [{}] [{}] …{}…, got {got:?}",
                    case.what, case.entry, case.field, case.message
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    });
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    big_stack(async {
        let security = format!(
            "{VALID}\n[[grant]]\nroles = [\"ghost\"]\ndatasets = [\"police.cases\"]\n{}",
            cases_rule!("  roles = [\"officer\"]\n  row_filter = \"n + 1\"")
        );
        let errors = refused(&security).await;
        let fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.entry.as_str(), e.field.as_str()))
            .collect();
        assert!(fields.contains(&("grant #2", "roles")), "{errors:?}");
        assert!(fields.contains(&(CASES_RULE, "row_filter")), "{errors:?}");
    });
}

// ---------------------------------------------------------------------------------------
// Plan snapshots of the rewrite (planner/src/snapshots/): the plan after the secure-scan
// rule alone, before the optimizer moves anything.

/// The statement's plan after the security rewrite, with the fixture's directory redacted.
async fn secured_plan(who: &str, sql: &str) -> String {
    let (dir, e) = fixture().await;
    let principal = e.catalog().security.principal(who).expect("principal");
    let plan = e.sql_plan(&principal, sql).await.expect("plans");
    let (plan, _) = e.secure(&principal, plan).expect("rewrites");
    plan.display_indent()
        .to_string()
        .replace(&dir.display().to_string(), "[config]")
}

#[test]
fn the_rewrite_puts_row_filter_and_masks_behind_two_barriers() {
    big_stack(async {
        let plan = secured_plan(
            "officer_ab",
            "SELECT id_card, phone FROM police.residents WHERE n > 0",
        )
        .await;
        insta::assert_snapshot!(plan, @r#"
        Projection: police.residents.id_card, police.residents.phone
          Filter: police.residents.n > Int64(0)
            SecurityBarrier: police.residents
              Projection: mask_id_card(police.residents.id_card) AS id_card, police.residents.name AS name, police.residents.phone AS phone, police.residents.district AS district, police.residents.n AS n
                RowFilterBarrier: police.residents
                  Filter: police.residents.district IN ([Utf8("A"), Utf8("B")]) AND police.residents.district != Utf8("Z")
                    TableScan: police.residents
        "#);
    });
}

#[test]
fn the_rewrite_ors_the_rules_of_two_roles_and_ands_the_restriction() {
    big_stack(async {
        let plan = secured_plan("both1", "SELECT name, phone FROM police.residents").await;
        insta::assert_snapshot!(plan, @r#"
        Projection: police.residents.name, police.residents.phone
          SecurityBarrier: police.residents
            Projection: police.residents.id_card AS id_card, police.residents.name AS name, mask_null(police.residents.phone) AS phone, police.residents.district AS district, police.residents.n AS n
              RowFilterBarrier: police.residents
                Filter: (police.residents.district = Utf8("A") OR police.residents.district = Utf8("B")) AND police.residents.district != Utf8("Z")
                  TableScan: police.residents
        "#);
    });
}

#[test]
fn the_rewrite_applies_the_callers_default_rule_inside_a_topic() {
    big_stack(async {
        let plan = secured_plan("topic_b", "SELECT id_card, name FROM topic.population").await;
        insta::assert_snapshot!(plan, @r#"
        Projection: topic.population.id_card, topic.population.name
          SubqueryAlias: topic.population
            Projection: police.residents.id_card, police.residents.name, police.residents.phone, police.residents.district, police.residents.n
              SecurityBarrier: police.residents
                Projection: Utf8(NULL) AS id_card, mask_name_cn(police.residents.name) AS name, police.residents.phone AS phone, police.residents.district AS district, police.residents.n AS n
                  RowFilterBarrier: police.residents
                    Filter: police.residents.district != Utf8("Z")
                      TableScan: police.residents
        "#);
    });
}
