//! `bund check` and `bund serve` on bad configuration: every error listed, nothing served.

use std::process::Command;

use crate::harness::{bund_bin, example_config, example_data, scratch_dir};

fn check(config: &std::path::Path) -> (i32, String) {
    let out = Command::new(bund_bin())
        .args(["check", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(example_data())
        .output()
        .expect("run bund check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_example_config_is_valid() {
    let (code, text) = check(&example_config("check-ok", None));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("10 datasets") && text.contains("5 principals"),
        "{text}"
    );
}

#[test]
fn check_lists_every_error_with_file_entry_and_field() {
    let dir = example_config("check-bad", Some("max_concurrent_queries = 0\n"));
    let catalog = std::fs::read_to_string(dir.join("catalog.toml")).unwrap();
    let catalog = catalog
        // a missing location
        .replace(
            "location = \"planning/poi/\"",
            "location = \"planning/nowhere/\"",
        )
        // topic SQL that does not plan
        .replace(
            "JOIN hrss.contributions c ON c.id_card = r.id_card",
            "JOIN hrss.contributions c ON c.no_such = r.id_card",
        )
        // an unknown open level
        .replace("open_level = \"conditional\"", "open_level = \"sometimes\"")
        // a bad declared type
        .replace(
            "type = \"decimal(12,2)\", nullable = false, description = \"Contribution base, CNY\"",
            "type = \"money\", nullable = false, description = \"Contribution base, CNY\"",
        );
    let catalog = format!(
        "{catalog}\n[[topic]]\nname = \"population\"\ndescription = \"again\"\nowner = \"police\"\nopen_level = \"not_open\"\nsql = \"SELECT 1\"\n"
    );
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let (code, text) = check(&dir);
    assert_eq!(code, 1, "{text}");
    for expected in [
        "bureau \"planning\" table \"poi\": field `location`: missing files",
        "topic \"population\": field `sql`: does not plan",
        "bureau \"market\" table \"enterprises\": field `open_level`: unknown open level `sometimes`",
        "bureau \"hrss\" table \"contributions\": field `columns`: column `base`: unknown column type `money`",
        "topic \"population\": field `name`: duplicate topic name",
        "server.toml: field `max_concurrent_queries`: must be at least 1",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn unknown_keys_and_bad_hashes_are_refused() {
    let dir = example_config("check-keys", None);
    let catalog = std::fs::read_to_string(dir.join("catalog.toml"))
        .unwrap()
        .replacen("name_en = ", "colour = \"red\"\nname_en = ", 1);
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let security = std::fs::read_to_string(dir.join("security.toml"))
        .unwrap()
        .replacen(
            "password_hash = \"$argon2id",
            "password_hash = \"plain-text-",
            1,
        );
    std::fs::write(dir.join("security.toml"), security).unwrap();
    let (code, text) = check(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("catalog.toml") && text.contains("unknown field `colour`"),
        "{text}"
    );
    assert!(
        text.contains("principal \"admin\": field `password_hash`: not a PHC hash string"),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_bad_config_before_listening() {
    let dir = scratch_dir("serve-bad");
    std::fs::write(dir.join("catalog.toml"), "[[bureau]]\nid = \"Police\"\n").unwrap();
    let out = Command::new(bund_bin())
        .args(["serve", "--flight-addr", "127.0.0.1:0", "--config"])
        .arg(&dir)
        .output()
        .expect("run bund serve");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("serving"), "{stdout}");
    assert!(
        stderr.contains("security.toml") && stderr.contains("catalog.toml"),
        "{stderr}"
    );
}

#[test]
fn security_catalog_errors_name_file_entry_and_field() {
    let dir = example_config("check-security", None);
    let security = std::fs::read_to_string(dir.join("security.toml")).unwrap();
    let security = security
        // a mask function that does not exist, and a mask of an unknown column
        .replace(
            "masks = { id_card = \"mask_id_card\", phone = \"mask_phone\", name = \"mask_name_cn\", birth_date = \"mask_date_year\" }",
            "masks = { id_card = \"mask_everything\", shoe_size = \"mask_phone\", name = \"mask_name_cn\" }",
        )
        ;
    // Personal data (the licences) without a policy.
    let security = security[..security.find("# Licences are held by").unwrap()].to_string();
    let security = format!(
        r#"{security}
[[grant]]
roles = ["anonymous"]
datasets = ["police.residents"]

[[grant]]
roles = ["ghost"]
datasets = ["police.nowhere"]

[[policy]]
id = "poi"
dataset = "planning.poi"
sensitive = ["name"]

  [[policy.rule]]
  roles = ["admin"]
  row_filter = "count(*) > 1"

  [[policy.rule]]
  roles = ["city_analyst"]
  masks = {{ name = {{ function = "mask_keep", args = [1, 0] }} }}

  [[policy.rule]]
  roles = ["market_analyst"]
  masks = {{ name = {{ function = "mask_keep", args = [2, 0] }} }}

  [[policy.rule]]
  roles = ["police_officer"]
  row_filter = "category"
  masks = {{ category = {{ function = "mask_token", args = ["no_such_key"] }} }}
"#
    );
    std::fs::write(dir.join("security.toml"), security).unwrap();
    let (code, text) = check(&dir);
    assert_eq!(code, 1, "{text}");
    for expected in [
        "policy \"residents\" rule #2: field `masks.id_card`: `mask_everything` is not a masking function",
        "policy \"residents\" rule #2: field `masks.shoe_size`: police.residents has no column `shoe_size`",
        "policy \"poi\" rule #4: field `row_filter`: must be a boolean expression, is Utf8",
        "licence.licences is tagged `personal` but has no policy",
        "grant #7: field `datasets`: police.residents is not unconditionally open",
        "grant #8: field `roles`: unknown role `ghost`",
        "grant #8: field `datasets`: unknown dataset `police.nowhere`",
        "policy \"poi\" rule #1: field `row_filter`: a row filter cannot use an aggregate function",
        "policy \"poi\": field `rule`: the dataset has sensitive columns but no default rule",
        "mask column `name` as mask_keep(1, 0) and mask_keep(2, 0), which mask_order cannot rank",
        "policy \"poi\" rule #4: field `masks.category`: mask_token key `no_such_key` is not declared",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn database_entries_are_checked_like_everything_else() {
    let dir = example_config("check-databases", None);
    let catalog = std::fs::read_to_string(dir.join("catalog.toml"))
        .unwrap()
        // the example's SQLite file, misspelt
        .replace(
            "path = \"licence/licences/licences.sqlite\"",
            "path = \"licence/licences/licenses.sqlite\"",
        );
    let catalog = format!(
        r#"{catalog}
[[database]]
name = "no_url"
kind = "postgres"

[[database]]
name = "unset_url"
kind = "postgres"
url_env = "BUND_TEST_DOES_NOT_EXIST_URL"

[[database]]
name = "oracle_db"
kind = "oracle"

[[bureau]]
id = "dbcheck"
name_zh = "检查"
name_en = "Checks"

[[bureau.table]]
name = "nowhere"
description = "An unknown database."
open_level = "not_open"
source = {{ kind = "database", database = "nowhere", table = "t" }}

[[bureau.table]]
name = "both"
description = "Table and query at once."
open_level = "not_open"
source = {{ kind = "database", database = "licence_db", table = "licences", query = "SELECT 1" }}
"#
    );
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let (code, text) = check(&dir);
    assert_eq!(code, 1, "{text}");
    for expected in [
        "database \"licence_db\": field `path`: missing file",
        "database \"no_url\": field `url_env`: name the environment variable",
        "database \"unset_url\": field `url_env`: environment variable `BUND_TEST_DOES_NOT_EXIST_URL` is not set",
        "database \"oracle_db\": field `kind`: unknown database kind `oracle`",
        "bureau \"dbcheck\" table \"nowhere\": field `source.database`: unknown database `nowhere`",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}
