//! bund-catalogs owns Bund's typed catalog files: `catalog.toml` (bureaus, their file
//! sources, topic libraries and dataset metadata), `security.toml` (principals and their
//! credentials) and `server.toml` (limits). Files are read into `Raw*` serde structs with
//! unknown keys refused, then converted once into validated types; every error names the
//! file, the entry and the field, and all of them are reported together.
//!
//! It may import bund-udfs, DataFusion and object_store. Beyond object storage, its only
//! network use is the bureau databases of `database/` (connections to read their tables).

mod catalog;
mod database;
mod derivable;
mod error;
mod policy;
mod raw;
mod sealed;
mod security;
mod server;
mod source;
mod types;

pub use catalog::{
    AUDIT_LOG_TABLE, BUND_CATALOG, Bureau, Catalog, Dataset, DatasetKind, LoadOptions, OPEN_SCHEMA,
    OpenLevel, SYSTEM_SCHEMA, TOPIC_SCHEMA, audit_log_schema, session_config,
};
pub use database::query::{AggregateFn, JoinSide, RemoteAggregate, RemoteQuery, inner_join};
pub use database::{DatabaseKind, RemoteTable, SourceError, SourceErrorKind, source_error};
pub use derivable::derivable_masks;
pub use error::{ConfigError, ConfigErrors, Error, Result};
pub use policy::{Access, DEFAULT_MASK_ORDER, ScanPolicy, VisibleDataset};
pub use sealed::{DatasetScan, SealedTable};
pub use security::{ANONYMOUS, AttrValue, Principal, SecurityCatalog, hash_password, sha256_hex};
pub use server::{MAX_EXPRESSION_DEPTH, ServerSettings};
pub use types::parse_type;
