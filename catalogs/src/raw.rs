//! The files as written: serde structs that refuse unknown keys. Nothing here is validated
//! beyond TOML syntax and types; `catalog.rs` and `security.rs` turn them into checked types.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalogFile {
    #[serde(default)]
    pub(crate) s3: Vec<RawS3>,
    #[serde(default)]
    pub(crate) bureau: Vec<RawBureau>,
    #[serde(default)]
    pub(crate) topic: Vec<RawTopic>,
}

/// Credentials and endpoint of one S3 bucket, each read from the environment variable named.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawS3 {
    pub(crate) bucket: String,
    pub(crate) endpoint_env: Option<String>,
    pub(crate) region_env: Option<String>,
    pub(crate) access_key_id_env: Option<String>,
    pub(crate) secret_access_key_env: Option<String>,
    #[serde(default)]
    pub(crate) allow_http: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBureau {
    pub(crate) id: String,
    pub(crate) name_zh: String,
    pub(crate) name_en: String,
    #[serde(default)]
    pub(crate) table: Vec<RawTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    pub(crate) open_level: String,
    pub(crate) source: RawSource,
    /// Declared schema; inferred from the files when absent.
    pub(crate) columns: Option<Vec<RawColumn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub(crate) enum RawSource {
    Parquet {
        location: String,
    },
    Csv {
        location: String,
        #[serde(default = "default_true")]
        has_header: bool,
        #[serde(default = "default_delimiter")]
        delimiter: String,
    },
    Ndjson {
        location: String,
    },
}

fn default_true() -> bool {
    true
}

fn default_delimiter() -> String {
    ",".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumn {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) data_type: String,
    #[serde(default = "default_true")]
    pub(crate) nullable: bool,
    pub(crate) description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopic {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) owner: String,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    pub(crate) open_level: String,
    pub(crate) sql: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurityFile {
    #[serde(default)]
    pub(crate) principal: Vec<RawPrincipal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipal {
    pub(crate) id: String,
    #[serde(default = "default_kind")]
    pub(crate) kind: String,
    pub(crate) password_hash: Option<String>,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, toml::Value>,
}

fn default_kind() -> String {
    "user".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerFile {
    pub(crate) max_concurrent_queries: Option<usize>,
    pub(crate) queue_timeout_secs: Option<u64>,
    pub(crate) query_timeout_secs: Option<u64>,
    pub(crate) session_ttl_secs: Option<u64>,
    pub(crate) ticket_ttl_secs: Option<u64>,
    pub(crate) prepared_ttl_secs: Option<u64>,
    pub(crate) memory_limit_mb: Option<u64>,
}
