//! bund-catalogs owns the bureaus' catalogs and their sources. `config/` is the typed model
//! of `catalog.toml` (bureaus, their sources, topic libraries and dataset metadata) and
//! `security.toml` (principals, roles, credentials, and grants and policies as data): files
//! are read into `Raw*` serde structs with unknown keys refused, then converted once into
//! validated types; every error names the file, the entry and the field, and all of them
//! are reported together. `sources/` opens what the catalog names: files on object storage
//! and databases (PostgreSQL, MySQL/MariaDB, SQLite, Flight SQL).
//!
//! It may import bund-udfs, DataFusion and object_store. Applying policies is the planner's
//! job, not this crate's: nothing here decides what a principal may see.

mod catalog;
mod config;
mod error;
mod sources;

pub use catalog::{
    AUDIT_LOG_TABLE, BUND_CATALOG, Bureau, Catalog, Dataset, DatasetKind, Environment, LoadOptions,
    OPEN_SCHEMA, OpenLevel, SYSTEM_SCHEMA, TOPIC_SCHEMA, ViewDefinition, audit_log_schema,
    session_config,
};
pub use config::files::{RawGrant, RawMask, RawPolicy, RawRule};
pub use config::security::{
    ANONYMOUS, AttrValue, Principal, PrincipalKind, SecurityCatalog, hash_password, sha256_hex,
};
pub use config::types::parse_type;
pub use error::{ConfigError, ConfigErrors, Error, Result};
pub use sources::database::fence::after_row_filter;
pub use sources::database::query::{
    AggregateFn, JoinSide, RemoteAggregate, RemoteQuery, inner_join,
};
pub use sources::database::{
    DatabaseKind, RemoteTable, SourceError, SourceErrorKind, UnsupportedTypes, source_error,
};
