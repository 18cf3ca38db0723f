//! Every function called through SQL, the way users call it: each query with the value it
//! gives or a part of the error it fails with. The unit tests next to each function call it
//! directly; these check that planning (signatures, coercions, constant folding) leads to
//! the same results.

use crate::testing::sql_value;

/// Queries and the value each gives, as [`sql_value`] renders it.
const GIVES: &[(&str, &str)] = &[
    // mask_keep, mask_id_card, mask_phone
    ("SELECT mask_keep('13812341234', 3, 4)", "138****1234"),
    ("SELECT mask_keep('上海市黄浦区', 2, 1, '#')", "上海###区"),
    (
        "SELECT mask_id_card('310101198503121236')",
        "310101********1236",
    ),
    ("SELECT mask_id_card(NULL)", "NULL"),
    ("SELECT mask_phone('+8613912345678')", "+86139****5678"),
    // mask_email
    (
        "SELECT mask_email('zhangwei@example.cn')",
        "z***@example.cn",
    ),
    // mask_name_cn
    ("SELECT mask_name_cn('张三丰')", "张**"),
    ("SELECT mask_name_cn('欧阳娜娜', 'first_last')", "欧阳*娜"),
    // mask_address_cn
    (
        "SELECT mask_address_cn('上海市黄浦区南京东路100号5楼', 'district')",
        "上海市黄浦区****",
    ),
    // mask_date_year
    ("SELECT mask_date_year(DATE '1985-03-12')", "1985-01-01"),
    ("SELECT mask_date_year('1985-03-12')", "1985-01-01"),
    (
        "SELECT CAST(mask_date_year(TIMESTAMP '2001-02-28 10:11:12') AS VARCHAR)",
        "2001-01-01T00:00:00",
    ),
    ("SELECT mask_date_year(NULL)", "NULL"),
    // mask_round
    ("SELECT mask_round(123456, 10000)", "120000"),
    (
        "SELECT mask_round(CAST(8765.43 AS DECIMAL(10, 2)), 1000)",
        "8000.00",
    ),
    // mask_null
    ("SELECT mask_null(42)", "NULL"),
    (
        "SELECT arrow_typeof(mask_null(DATE '2020-01-02'))",
        "Date32",
    ),
    // id_card_*
    ("SELECT id_card_valid('310101198503121236')", "true"),
    ("SELECT id_card_valid('31010419900701008x')", "false"),
    ("SELECT id_card_birth('310101198503121236')", "1985-03-12"),
    ("SELECT id_card_birth('310101198503121230')", "NULL"),
    ("SELECT id_card_sex('31010419900701008X')", "F"),
    (
        "SELECT district_name(id_card_region('310108198008081550'))",
        "闸北区",
    ),
    (
        "SELECT id_card_age('310101198503121236', DATE '2025-03-11')",
        "39",
    ),
    (
        "SELECT id_card_age('310101198503121236', '2025-03-11')",
        "39",
    ),
    (
        "SELECT id_card_age('310101198503121236', TIMESTAMP '2025-03-11 23:59:59')",
        "39",
    ),
    (
        "SELECT id_card_age('310101198503121236', CAST(DATE '2025-03-11' AS DATE))",
        "39",
    ),
    (
        "SELECT id_card_upgrade('110105491231002')",
        "11010519491231002X",
    ),
    // uscc_*
    ("SELECT uscc_valid('91310000MA1FL2B37C')", "true"),
    ("SELECT uscc_valid('91310000MA1FL2B37C', true)", "true"),
    ("SELECT uscc_valid('91310104132260588N')", "false"),
    (
        "SELECT district_name(uscc_region('91310115MA1H7K4D9D'))",
        "浦东新区",
    ),
    (
        "SELECT uscc_entity_type('12310110425023718W')",
        "public_institution",
    ),
    // district_name, phone_valid
    ("SELECT district_name('310101')", "黄浦区"),
    ("SELECT district_name('310115', 'en')", "Pudong New Area"),
    ("SELECT phone_valid('+8613812341234')", "true"),
    ("SELECT phone_valid('17921234567')", "false"),
    // The coordinate transforms take numbers of any type and give a struct.
    (
        "SELECT get_field(wgs84_to_gcj02(121, 31), 'lon') > 120",
        "true",
    ),
    (
        "SELECT get_field(gcj02_to_wgs84(121, 31), 'lon') > 120",
        "true",
    ),
    (
        "SELECT get_field(gcj02_to_bd09(121, 31), 'lon') > 120",
        "true",
    ),
    (
        "SELECT get_field(bd09_to_gcj02(121, 31), 'lon') > 120",
        "true",
    ),
    ("SELECT arrow_typeof(wgs84_to_gcj02(121.5, 31.2))", POINT),
    ("SELECT arrow_typeof(gcj02_to_wgs84(121.5, 31.2))", POINT),
    ("SELECT arrow_typeof(gcj02_to_bd09(121.5, 31.2))", POINT),
    ("SELECT arrow_typeof(bd09_to_gcj02(121.5, 31.2))", POINT),
    // geo_distance_m
    (
        "SELECT round(geo_distance_m(121.4737, 31.2304, 121.4997, 31.2397))",
        "2680",
    ),
];

/// Queries that fail, and a part of the message each fails with.
const FAILS: &[(&str, &str)] = &[
    // mask_keep
    ("SELECT mask_keep('abc')", "mask_keep"),
    ("SELECT mask_keep('abc', 'x', 1)", "mask_keep"),
    ("SELECT mask_keep('abc', 1, 2, '*', 5)", "mask_keep"),
    // mask_name_cn
    (
        "SELECT mask_name_cn('张三', 'full')",
        "unknown style \"full\"",
    ),
    // mask_address_cn
    ("SELECT mask_address_cn('上海市')", "mask_address_cn"),
    (
        "SELECT mask_address_cn('上海市', 'city')",
        "unknown level \"city\"",
    ),
    // mask_date_year
    ("SELECT mask_date_year(42)", "mask_date_year"),
    (
        "SELECT mask_date_year(DATE '1985-03-12', 1)",
        "mask_date_year",
    ),
    // mask_round
    ("SELECT mask_round('abc', 10)", "mask_round"),
    ("SELECT mask_round(5)", "mask_round"),
    ("SELECT mask_round(5, 'x')", "mask_round"),
    // mask_null
    ("SELECT mask_null(1, 2)", "mask_null"),
    // id_card_age
    ("SELECT id_card_age('310101198503121236')", "id_card_age"),
    // district_name
    (
        "SELECT district_name('310101', 'fr')",
        "unknown lang \"fr\"",
    ),
    // The coordinate transforms take two numbers.
    ("SELECT wgs84_to_gcj02('a', 'b')", "wgs84_to_gcj02"),
    ("SELECT gcj02_to_wgs84('a', 'b')", "gcj02_to_wgs84"),
    ("SELECT gcj02_to_bd09('a', 'b')", "gcj02_to_bd09"),
    ("SELECT bd09_to_gcj02('a', 'b')", "bd09_to_gcj02"),
    ("SELECT wgs84_to_gcj02(121.0)", "wgs84_to_gcj02"),
    ("SELECT gcj02_to_wgs84(121.0)", "gcj02_to_wgs84"),
    ("SELECT gcj02_to_bd09(121.0)", "gcj02_to_bd09"),
    ("SELECT bd09_to_gcj02(121.0)", "bd09_to_gcj02"),
    // geo_distance_m
    ("SELECT geo_distance_m(1, 2, 3)", "geo_distance_m"),
];

/// The type of the coordinate transforms' results, as `arrow_typeof` writes it.
const POINT: &str = "Struct(\"lon\": Float64, \"lat\": Float64)";

#[tokio::test]
async fn every_query_gives_its_value_or_fails_naming_the_problem() {
    let mut wrong = Vec::new();
    for (sql, want) in GIVES {
        match sql_value(sql).await {
            Ok(got) if got == *want => {}
            got => wrong.push(format!("{sql}\n  want {want:?}\n  got  {got:?}")),
        }
    }
    for (sql, part) in FAILS {
        match sql_value(sql).await {
            Err(e) if e.to_string().contains(part) => {}
            got => wrong.push(format!(
                "{sql}\n  want an error with {part:?}\n  got  {got:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
