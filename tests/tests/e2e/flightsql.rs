//! A Flight SQL service as a bureau database: a second `bund` (the district platform)
//! serves the example, and the city's `bund` reads its residents through Flight SQL — the
//! filter sent in the SQL (the district's audit log shows what arrived) and masks applied by
//! the city. The district going down is in `conformance.rs`, with every other kind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::databases::{people_policy, rows, scans_sql};
use crate::harness::{Raw, Server, append_config, bureau_entries, example_config, row_count};

const URL_ENV: &str = "BUND_TEST_DISTRICT_URL";

/// The example plus bureau `district`, whose `people` are the district platform's
/// `police.residents`, and `by_district`, a query the platform runs.
fn config() -> PathBuf {
    let dir = example_config("config-flightsql", None);
    let catalog = bureau_entries(
        "district",
        &[(
            "district_platform",
            &format!("kind = \"flightsql\"\nurl_env = \"{URL_ENV}\"\nconnect_timeout_s = 2"),
        )],
        &[
            (
                "people",
                r#"kind = "database", database = "district_platform", table = "police.residents""#,
                "",
            ),
            (
                "by_district",
                r#"kind = "database", database = "district_platform", query = "SELECT district_code, count(*) AS n FROM police.residents GROUP BY district_code""#,
                "",
            ),
        ],
    );
    append_config(
        &dir,
        &catalog,
        &people_policy("district", "district_people"),
    );
    dir
}

async fn remote_sql(c: &mut Raw, sql: &str) -> Vec<String> {
    scans_sql(c, sql, "FlightSqlScanExec: source=district_platform sql=").await
}

#[tokio::test]
async fn a_flight_sql_service_is_a_bureau_database() {
    let district = Server::start();
    let url = format!("grpc://admin:admin-demo@{}", district.addr);
    let city = Server::start_with_env(&config(), &[(URL_ENV, &url)]);
    let mut admin = city.login("admin").await;
    let mut there = district.login("admin").await;

    // The same rows as on the platform, the filter sent in the SQL.
    let query = "SELECT count(*) FROM district.people WHERE district_code = '310115'";
    let want = rows(
        &mut there,
        "SELECT count(*) FROM police.residents WHERE district_code = '310115'",
    )
    .await;
    assert_eq!(rows(&mut admin, query).await, want);
    let sent = r#"SELECT "district_code" AS "district_code" FROM "police"."residents" WHERE (("district_code" = '310115'))"#;
    assert_eq!(remote_sql(&mut admin, query).await, vec![sent.to_string()]);

    // The platform's audit log: the statement arrived as sent, from the city's account.
    let mut auditor = district.login("auditor").await;
    let lookup = format!(
        "SELECT principal FROM system.audit_log WHERE statement = '{}'",
        sent.replace('\'', "''")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while row_count(&auditor.query(&lookup).await.unwrap()) == 0 {
        assert!(Instant::now() < deadline, "not in the platform's audit log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows(&mut auditor, &lookup).await[0], vec!["admin"]);

    // An aggregate over integer and date columns runs on the platform; grouping by text
    // (collation unknown) does not.
    let agg = "SELECT count(*), min(birth_date), max(birth_date) FROM district.people WHERE district_code = '310101'";
    assert_eq!(
        remote_sql(
            &mut admin,
            "SELECT count(*), min(birth_date) FROM district.people"
        )
        .await,
        vec![
            r#"SELECT COUNT(*) AS "c0", MIN("birth_date") AS "c1" FROM "police"."residents""#
                .to_string()
        ]
    );
    assert_eq!(
        rows(&mut admin, agg).await,
        rows(
            &mut there,
            &agg.replace("district.people", "police.residents")
        )
        .await
    );
    let grouped = "SELECT district_code, count(*) FROM district.people GROUP BY district_code";
    assert!(
        remote_sql(&mut admin, grouped)
            .await
            .iter()
            .all(|s| !s.contains("GROUP BY")),
        "{grouped}"
    );

    // A query source.
    let total: u64 = rows(&mut admin, "SELECT n FROM district.by_district")
        .await
        .iter()
        .map(|r| r[0].parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, crate::harness::RESIDENTS);

    // The city's policy: the officer's row filter is sent, the mask stays in the city.
    let mut police = city.login("pudong_police").await;
    let masked = rows(
        &mut police,
        "SELECT id_card FROM district.people ORDER BY id_card LIMIT 1",
    )
    .await;
    assert!(masked[0][0].contains("********"), "{masked:?}");
    let sent = remote_sql(&mut police, "SELECT id_card FROM district.people").await;
    assert_eq!(
        sent,
        vec![r#"SELECT "id_card" AS "id_card", "district_code" AS "district_code" FROM "police"."residents" WHERE (("district_code" = '310115'))"#.to_string()]
    );
    let all = rows(&mut auditor, "SELECT statement FROM system.audit_log").await;
    assert!(all.iter().all(|r| !r[0].contains("mask_")), "{all:?}");
    // The platform going down and coming back: the conformance suite, for every kind.
}
