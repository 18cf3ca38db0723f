//! The files as written: serde structs that refuse unknown keys. Nothing here is validated
//! beyond TOML syntax and types; `catalog.rs` and `security.rs` turn them into checked types,
//! and the planner checks grants and policies against the datasets (`bund_planner`'s
//! `access`).

use std::collections::BTreeMap;

use datafusion::common::ScalarValue;
use serde::{Deserialize, Deserializer};

use crate::catalog::OpenLevel;
use crate::config::security::PrincipalKind;
use crate::sources::database::{DatabaseKind, UnsupportedTypes};

/// A word of a closed set as written: the value it names, or the unknown word itself. An
/// unknown word is kept rather than failing the whole file, so that the check that refuses
/// it names the entry and the field, beside every other problem of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Word<T> {
    Known(T),
    Unknown(String),
}

impl<'de, T: std::str::FromStr> Deserialize<'de> for Word<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.parse() {
            Ok(v) => Self::Known(v),
            Err(_) => Self::Unknown(text),
        })
    }
}

impl<T: Default> Default for Word<T> {
    fn default() -> Self {
        Self::Known(T::default())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalogFile {
    #[serde(default)]
    pub(crate) s3: Vec<RawS3>,
    #[serde(default)]
    pub(crate) database: Vec<RawDatabase>,
    #[serde(default)]
    pub(crate) bureau: Vec<RawBureau>,
    #[serde(default)]
    pub(crate) topic: Vec<RawTopic>,
    /// Open-data datasets (schema `open`): views like topics, aggregates where they read
    /// personal data.
    #[serde(default)]
    pub(crate) open: Vec<RawTopic>,
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

/// A bureau database: its kind, the environment variable holding its connection URL (the
/// file never holds the secret), pool size and timeouts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub(crate) name: String,
    pub(crate) kind: Word<DatabaseKind>,
    /// PostgreSQL, MySQL: the variable holding `postgres://user:password@host:port/db` or
    /// `mysql://user:password@host:port/db`.
    pub(crate) url_env: Option<String>,
    /// SQLite: the database file, relative to the data directory or absolute.
    pub(crate) path: Option<String>,
    #[serde(default = "default_pool_size")]
    pub(crate) pool_size: usize,
    #[serde(default = "default_connect_timeout")]
    pub(crate) connect_timeout_s: f64,
    #[serde(default = "default_statement_timeout")]
    pub(crate) statement_timeout_s: f64,
    /// `refuse` (default): a column of a type Bund cannot map fails the load; `text`: it is
    /// read as text.
    #[serde(default)]
    pub(crate) unsupported_types: Word<UnsupportedTypes>,
    /// Send safe filters to the database (default); false sends none (for comparisons).
    #[serde(default = "default_true")]
    pub(crate) filter_pushdown: bool,
}

fn default_pool_size() -> usize {
    4
}

fn default_connect_timeout() -> f64 {
    5.0
}

fn default_statement_timeout() -> f64 {
    300.0
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
    pub(crate) open_level: Word<OpenLevel>,
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
    /// A table (`schema.table` or `table`) or a query of a `[[database]]`.
    Database {
        database: String,
        table: Option<String>,
        query: Option<String>,
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
    pub(crate) open_level: Word<OpenLevel>,
    pub(crate) sql: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurityFile {
    /// Masking functions from the most restrictive to the least; decides which mask wins
    /// when several rules apply to one principal.
    pub(crate) mask_order: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) secret: Vec<RawSecret>,
    #[serde(default)]
    pub(crate) role: Vec<RawRole>,
    #[serde(default)]
    pub(crate) principal: Vec<RawPrincipal>,
    #[serde(default)]
    pub(crate) grant: Vec<RawGrant>,
    #[serde(default)]
    pub(crate) policy: Vec<RawPolicy>,
}

/// A named key for keyed functions (`mask_token`), read from an environment variable.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub(crate) name: String,
    pub(crate) env: String,
    /// `error` (default): loading fails when the variable is unset. `generate`: a random key
    /// for this process only, with a warning (tokens then change at every start).
    pub(crate) if_unset: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    pub(crate) id: String,
    /// Lower-case hex SHA-256 of the key (`bund new-api-key` prints both).
    pub(crate) sha256: String,
}

/// Datasets or whole schemas granted to roles and/or principals.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub datasets: Vec<String>,
    #[serde(default)]
    pub schemas: Vec<String>,
}

/// The policy of one dataset: rules per role, a default rule, restrictions for everyone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub id: String,
    pub dataset: String,
    /// Columns that must never be shown raw to a principal no rule names.
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Boolean SQL expressions ANDed to every principal's row filter.
    #[serde(default)]
    pub restrictions: Vec<String>,
    #[serde(default)]
    pub rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub principals: Vec<String>,
    /// The rule for principals that no other rule of the policy names.
    #[serde(default)]
    pub default: bool,
    pub row_filter: Option<String>,
    #[serde(default)]
    pub masks: BTreeMap<String, RawMask>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `"mask_phone"` or `{ function = "mask_keep", args = [3, 4] }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMask {
    Name(String),
    Call(RawMaskCall),
}

impl RawMask {
    /// The masking function's name.
    pub fn function(&self) -> &str {
        match self {
            Self::Name(f) => f,
            Self::Call(c) => &c.function,
        }
    }

    /// The arguments after the column, as literals.
    pub fn literal_args(&self) -> Result<Vec<ScalarValue>, String> {
        let Self::Call(c) = self else {
            return Ok(Vec::new());
        };
        c.args
            .iter()
            .map(|a| match a {
                toml::Value::String(s) => Ok(ScalarValue::Utf8(Some(s.clone()))),
                toml::Value::Integer(i) => Ok(ScalarValue::Int64(Some(*i))),
                toml::Value::Float(f) => Ok(ScalarValue::Float64(Some(*f))),
                toml::Value::Boolean(b) => Ok(ScalarValue::Boolean(Some(*b))),
                other => Err(format!(
                    "arguments must be strings, numbers or booleans, found {}",
                    other.type_str()
                )),
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaskCall {
    pub function: String,
    #[serde(default)]
    pub args: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipal {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) kind: Word<PrincipalKind>,
    pub(crate) password_hash: Option<String>,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub(crate) api_keys: Vec<RawApiKey>,
}
