//! How long the security rewrite takes (a bench binary that prints figures, not a test).
//!
//!   cargo bench -p bund-planner --bench rewrite
//!
//! Loads the Shanghai example (config `examples/shanghai`, data from `BUND_BENCH_DATA` or
//! `examples/shanghai/data`; create it with `bund example-data --out examples/shanghai/data`)
//! and, for a three-way join of datasets under policies, times the rewrite alone and the
//! whole planning (SQL → physical plan), median and p90 over many runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bund_catalogs::LoadOptions;
use bund_planner::{Engine, PlannerSettings};

const RUNS: usize = 2_000;

/// city_analyst: topics (residents ⋈ contributions, enterprises ⟕ licences) and an open
/// aggregate, joined; five bureau scans under policies, tokens and masks.
const JOIN3: &str = "SELECT p.district_code, count(*) AS n \
    FROM topic.population p \
    JOIN topic.legal_entity e ON p.employer_uscc = e.uscc \
    JOIN open.residents_by_district r ON r.district_code = p.district_code AND r.sex = p.sex \
    GROUP BY p.district_code";

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let config_dir = root.join("examples/shanghai");
    let data_dir = std::env::var_os("BUND_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir.join("data"));
    assert!(
        data_dir.join("MANIFEST.json").exists(),
        "no example data in {}: run `bund example-data --out {}` (or set BUND_BENCH_DATA)",
        data_dir.display(),
        data_dir.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = rt
        .block_on(Engine::load(
            &LoadOptions::new(config_dir, data_dir),
            PlannerSettings::default(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let principal = engine
        .catalog()
        .security
        .principal("city_analyst")
        .expect("city_analyst in the example");

    let mut rewrite = Vec::with_capacity(RUNS);
    let mut whole = Vec::with_capacity(RUNS);
    let mut scans = 0;
    rt.block_on(async {
        for _ in 0..RUNS {
            let plan = engine.sql_plan(&principal, JOIN3).await.expect("sql plan");
            let t = Instant::now();
            let (_, touched) = engine.secure(&principal, plan).expect("rewrite");
            rewrite.push(t.elapsed());
            scans = touched.datasets.len();
            let t = Instant::now();
            engine.plan(&principal, JOIN3, None).await.expect("plan");
            whole.push(t.elapsed());
        }
    });
    let (r50, r90) = stats(rewrite);
    let (w50, w90) = stats(whole);
    println!("three-way join as city_analyst ({scans} datasets under the rewrite), {RUNS} runs:");
    println!("  security rewrite alone:        median {r50:.3} ms   p90 {r90:.3} ms");
    println!("  whole planning (SQL→physical): median {w50:.3} ms   p90 {w90:.3} ms");
}
