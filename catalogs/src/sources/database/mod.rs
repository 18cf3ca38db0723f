//! Bureau databases as sources: `[[database]]` entries in catalog.toml and tables whose
//! source is `{ kind = "database", database = "…", table = "…" }` (or `query = "…"`).
//!
//! Each table is a [`RemoteTable`]: its schema is declared or read from the database's
//! catalog at load, and a scan sends one SQL statement that carries the columns read, the
//! filters that are safe to run remotely (see [`dialect`]) and the limit; rows stream back
//! and are decoded straight into Arrow arrays. Nothing else reaches the remote SQL: no
//! function call, so no mask and no policy-only function ever does.
//!
//! A source that is down fails only the scans that need it, within its connect timeout,
//! with a [`SourceError`] that names the database and never its credentials; connections
//! are made lazily and again after a failure, so the source recovers by itself.

mod copy;
pub(crate) mod dialect;
mod exec;
pub(crate) mod fence;
pub(crate) mod flightsql;
pub(crate) mod mysql;
mod pool;
pub(crate) mod postgres;
pub(crate) mod query;
pub(crate) mod sqlite;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;

pub(crate) use dialect::Dialect;

use crate::config::files::{RawDatabase, Word};

/// A failure of a database source, as the client should read it: which source, what
/// happened, never the connection string.
#[derive(Debug, Clone)]
pub struct SourceError {
    /// The `[[database]]` name.
    pub source: String,
    pub kind: SourceErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Cannot connect, or the connection broke: try again later.
    Unavailable,
    /// The database cancelled the statement after its statement timeout.
    Timeout,
    /// The database refused or failed the statement.
    Remote,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SourceErrorKind::Unavailable => write!(
                f,
                "data source `{}` is unavailable: {}",
                self.source, self.message
            ),
            SourceErrorKind::Timeout => write!(
                f,
                "data source `{}` cancelled the query: {}",
                self.source, self.message
            ),
            SourceErrorKind::Remote => write!(
                f,
                "data source `{}` failed the query: {}",
                self.source, self.message
            ),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<SourceError> for DataFusionError {
    fn from(e: SourceError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// Finds a [`SourceError`] inside a DataFusion error, through contexts and wrappers.
pub fn source_error(e: &DataFusionError) -> Option<&SourceError> {
    match e {
        DataFusionError::External(inner) => inner.downcast_ref::<SourceError>(),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            source_error(inner)
        }
        DataFusionError::Shared(inner) => source_error(inner),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            datafusion::arrow::error::ArrowError::ExternalError(inner) => inner
                .downcast_ref::<DataFusionError>()
                .and_then(source_error),
            _ => None,
        },
        _ => None,
    }
}

/// What kind of database a `[[database]]` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
    /// Another Flight SQL service.
    FlightSql,
}

impl std::str::FromStr for DatabaseKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::Mysql),
            "sqlite" => Ok(Self::Sqlite),
            "flightsql" => Ok(Self::FlightSql),
            _ => Err(()),
        }
    }
}

/// What a database's columns of types Bund cannot map become (`unsupported_types`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnsupportedTypes {
    /// The load fails naming the column (the default).
    #[default]
    Refuse,
    /// The column is read as text.
    Text,
}

impl std::str::FromStr for UnsupportedTypes {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "text" => Ok(Self::Text),
            _ => Err(()),
        }
    }
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Sqlite => "sqlite",
            Self::FlightSql => "flightsql",
        }
    }
}

/// The checked settings of one `[[database]]` entry. The connection URL (with its
/// password) is kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct DatabaseSettings {
    pub(crate) name: String,
    pub(crate) kind: DatabaseKind,
    /// The connection URL (PostgreSQL, MySQL) or the file (SQLite).
    url: String,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) unsupported_as_text: bool,
    pub(crate) filter_pushdown: bool,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    /// Checks one entry; errors are (field, message) and never contain the URL.
    pub(crate) fn from_raw(
        raw: &RawDatabase,
        data_dir: &std::path::Path,
        env: &crate::Environment,
    ) -> Result<Self, (&'static str, String)> {
        let kind = match &raw.kind {
            Word::Known(kind) => *kind,
            Word::Unknown(other) => {
                return Err((
                    "kind",
                    format!(
                        "unknown database kind `{other}`; use postgres, mysql (also for MariaDB), sqlite or flightsql"
                    ),
                ));
            }
        };
        let url = match (kind, &raw.url_env, &raw.path) {
            (
                DatabaseKind::Postgres | DatabaseKind::Mysql | DatabaseKind::FlightSql,
                Some(var),
                None,
            ) => env.var(var).ok_or_else(|| {
                (
                    "url_env",
                    format!("environment variable `{var}` is not set"),
                )
            })?,
            (DatabaseKind::Postgres | DatabaseKind::Mysql | DatabaseKind::FlightSql, _, _) => {
                let scheme = match kind {
                    DatabaseKind::Postgres => "postgres",
                    DatabaseKind::Mysql => "mysql",
                    _ => "grpc",
                };
                return Err((
                    "url_env",
                    format!(
                        "name the environment variable that holds the connection URL ({scheme}://user:password@host:port/db), and no path"
                    ),
                ));
            }
            (DatabaseKind::Sqlite, None, Some(path)) => {
                let p = std::path::Path::new(path);
                let p = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    data_dir.join(p)
                };
                if !p.is_file() {
                    return Err((
                        "path",
                        format!("missing file: {} does not exist", p.display()),
                    ));
                }
                p.to_string_lossy().into_owned()
            }
            (DatabaseKind::Sqlite, _, _) => {
                return Err((
                    "path",
                    "give the database file's path (relative to the data directory), and no url_env".into(),
                ));
            }
        };
        if raw.pool_size == 0 {
            return Err(("pool_size", "must be at least 1".into()));
        }
        if raw.connect_timeout_s <= 0.0 || !raw.connect_timeout_s.is_finite() {
            return Err(("connect_timeout_s", "must be a positive number".into()));
        }
        if raw.statement_timeout_s <= 0.0 || !raw.statement_timeout_s.is_finite() {
            return Err(("statement_timeout_s", "must be a positive number".into()));
        }
        let unsupported_as_text = match &raw.unsupported_types {
            Word::Known(u) => *u == UnsupportedTypes::Text,
            Word::Unknown(other) => {
                return Err((
                    "unsupported_types",
                    format!("`{other}`: use refuse (the default) or text"),
                ));
            }
        };
        Ok(Self {
            name: raw.name.clone(),
            kind,
            url,
            pool_size: raw.pool_size,
            connect_timeout: Duration::from_secs_f64(raw.connect_timeout_s),
            statement_timeout: Duration::from_secs_f64(raw.statement_timeout_s),
            unsupported_as_text,
            filter_pushdown: raw.filter_pushdown,
        })
    }
}

impl DatabaseSettings {
    /// An error of this source, named after it.
    pub(crate) fn error(&self, kind: SourceErrorKind, message: impl Into<String>) -> SourceError {
        SourceError {
            source: self.name.clone(),
            kind,
            message: message.into(),
        }
    }

    /// A column's Arrow type and whether it is read as text: `mapped` when Bund maps the
    /// remote type, text where `unsupported_types = "text"`, else an error naming it.
    pub(crate) fn column_type(
        &self,
        column: &str,
        remote_type: &str,
        mapped: Option<datafusion::arrow::datatypes::DataType>,
    ) -> Result<(datafusion::arrow::datatypes::DataType, bool), SourceError> {
        match mapped {
            Some(dt) => Ok((dt, false)),
            None if self.unsupported_as_text => {
                Ok((datafusion::arrow::datatypes::DataType::Utf8, true))
            }
            None => Err(SourceError {
                source: self.name.clone(),
                kind: SourceErrorKind::Remote,
                message: format!(
                    "column `{column}` has type {remote_type}, which Bund cannot map to Arrow; declare the column's type, or set unsupported_types = \"text\" on the database to read such columns as text"
                ),
            }),
        }
    }
}

/// One connected (or connectable) database of some kind: its settings, its dialect, and
/// how its tables are described and read. Each kind implements it in its own module
/// (`postgres.rs`, `mysql.rs`, `sqlite.rs`, `flightsql.rs`) and [`open`] is the one place
/// that chooses the kind; everything else reads a database through this trait.
#[async_trait]
pub(crate) trait Database: fmt::Debug + Send + Sync {
    fn settings(&self) -> &DatabaseSettings;

    /// What the database evaluates exactly as Bund does, and how its SQL is written.
    fn dialect(&self) -> &'static dyn Dialect;

    /// The name of its scans in EXPLAIN (`PostgresScanExec`, …).
    fn scan_name(&self) -> &'static str;

    /// The columns of a table or a query: their Arrow fields and how each is read.
    async fn describe(
        &self,
        source: &RemoteSource,
    ) -> Result<Vec<(datafusion::arrow::datatypes::Field, RemoteColumn)>, SourceError>;

    /// Starts reading one statement's rows into `builder`'s channel; stops early when the
    /// receiver is gone (the query was cancelled).
    fn read(self: Arc<Self>, scan: Scan, builder: &mut RecordBatchReceiverStreamBuilder);

    /// The `[[database]]` name.
    fn name(&self) -> &str {
        &self.settings().name
    }
}

/// One statement a scan reads: its SQL, and the schema and size of the batches it becomes
/// (`batch_size` rows where the database sends rows, as it sends them otherwise).
pub(crate) struct Scan {
    pub(crate) sql: String,
    pub(crate) schema: SchemaRef,
    pub(crate) batch_size: usize,
}

/// Prepares the connection pool of one `[[database]]` entry; connects nothing yet.
pub(crate) fn open(
    settings: DatabaseSettings,
) -> Result<Arc<dyn Database>, (&'static str, String)> {
    Ok(match settings.kind {
        DatabaseKind::Postgres => Arc::new(postgres::PgDatabase::new(settings)?),
        DatabaseKind::Mysql => Arc::new(mysql::MysqlDatabase::new(settings)?),
        DatabaseKind::FlightSql => Arc::new(flightsql::FlightSqlDatabase::new(settings)?),
        DatabaseKind::Sqlite => Arc::new(sqlite::SqliteDatabase::new(settings)),
    })
}

/// What a remote table reads: a table (optionally schema-qualified) or a query.
#[derive(Debug, Clone)]
pub(crate) enum RemoteSource {
    Table(Vec<String>),
    Query(String),
}

impl RemoteSource {
    /// The FROM item of the SQL Bund sends.
    pub(crate) fn sql_from_item(&self, dialect: &dyn Dialect) -> String {
        match self {
            Self::Table(parts) => parts
                .iter()
                .map(|p| dialect.quote_ident(p))
                .collect::<Vec<_>>()
                .join("."),
            Self::Query(q) => format!("({q}) AS bund_source"),
        }
    }

    /// The FROM item without an alias (a join gives its own).
    pub(crate) fn join_item(&self, dialect: &dyn Dialect) -> String {
        match self {
            Self::Table(_) => self.sql_from_item(dialect),
            Self::Query(q) => format!("({q})"),
        }
    }
}

/// How one column is read: its remote name and whether it is fetched as text because its
/// remote type has no Arrow counterpart (`unsupported_types = "text"`), and for MySQL
/// which function turns it into text.
#[derive(Debug, Clone)]
pub(crate) struct RemoteColumn {
    pub(crate) name: String,
    pub(crate) as_text: bool,
    pub(crate) text_fn: Option<&'static str>,
    /// The database compares this column's text byte for byte: SQLite's BINARY collation,
    /// a deterministic PostgreSQL collation, a binary MySQL collation that does not pad,
    /// read from the database at load. False where it is not, where it is unknown (a
    /// computed column of a query, a database that was down at load) and always for Flight
    /// SQL services: such a column
    /// is only compared for equality where a match keeps the row, and never grouped, joined
    /// or ordered in the database.
    pub(crate) exact_text: bool,
}

/// A table of a database source.
#[derive(Debug)]
pub struct RemoteTable {
    pub(crate) database: Arc<dyn Database>,
    pub(crate) source: RemoteSource,
    pub(crate) schema: SchemaRef,
    pub(crate) columns: Vec<RemoteColumn>,
}

impl RemoteTable {
    /// The SQL a scan with these columns, filters and limit sends (golden-tested).
    pub fn scan_sql(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<String> {
        dialect::select_sql(self, projection, filters, limit)
    }

    pub fn database_name(&self) -> &str {
        self.database.name()
    }
}

#[async_trait]
impl TableProvider for RemoteTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Inexact even where the database evaluates a filter exactly like DataFusion: Bund
    /// filters the rows again, so a remote collation or a rounding difference can only
    /// make the source send more rows, never change the answer.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if dialect::remote_safe(self, f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let pushed: Vec<Expr> = filters
            .iter()
            .filter(|f| dialect::remote_safe(self, f))
            .cloned()
            .collect();
        let sql = self.scan_sql(projection, &pushed, limit)?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let batch_size = state.config().batch_size();
        Ok(Arc::new(exec::RemoteScanExec::new(
            Arc::clone(&self.database),
            sql,
            schema,
            batch_size,
        )))
    }
}

/// Why a database table could not be loaded.
pub(crate) enum TableLoadError {
    /// The entry is wrong: (field, message).
    Config(&'static str, String),
    /// The database could not be asked (down, refused): the table is left out for now.
    Unavailable(String),
}

/// The provider of one table entry whose source is a database. With declared columns it
/// is built without asking the database (a warning says when it cannot be reached);
/// otherwise the columns are read from the database.
pub(crate) async fn remote_table(
    databases: &std::collections::HashMap<String, Arc<dyn Database>>,
    database: &str,
    table: Option<&str>,
    query: Option<&str>,
    declared: Option<SchemaRef>,
) -> Result<(Arc<RemoteTable>, Option<String>), TableLoadError> {
    let Some(db) = databases.get(database) else {
        return Err(TableLoadError::Config(
            "source.database",
            format!("unknown database `{database}`; declare it with [[database]]"),
        ));
    };
    let source = match (table, query) {
        (Some(t), None) => {
            let parts: Vec<String> = t.split('.').map(str::to_string).collect();
            if parts.is_empty() || parts.len() > 2 || parts.iter().any(String::is_empty) {
                return Err(TableLoadError::Config(
                    "source.table",
                    format!("`{t}`: write table or schema.table"),
                ));
            }
            RemoteSource::Table(parts)
        }
        (None, Some(q)) => {
            let q = q.trim().trim_end_matches(';').trim();
            if q.is_empty() {
                return Err(TableLoadError::Config("source.query", "empty query".into()));
            }
            RemoteSource::Query(q.to_string())
        }
        _ => {
            return Err(TableLoadError::Config(
                "source",
                "give either table or query".into(),
            ));
        }
    };
    match declared {
        Some(schema) => {
            for f in schema.fields() {
                db.dialect().reads(f.data_type()).map_err(|e| {
                    TableLoadError::Config("columns", format!("column `{}`: {e}", f.name()))
                })?;
            }
            // Check that the database answers, without making the table depend on it; what
            // it says of the columns' collations is kept.
            let (described, warning) = match db.describe(&source).await {
                Ok(cols) => (cols, None),
                Err(e) if e.kind == SourceErrorKind::Unavailable => {
                    (Vec::new(), Some(e.to_string()))
                }
                Err(e) => return Err(TableLoadError::Config("source", e.to_string())),
            };
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let remote = described
                        .iter()
                        .map(|(_, c)| c)
                        .find(|c| c.name == *f.name());
                    RemoteColumn {
                        name: f.name().clone(),
                        // not comparable as the text it is read as (PostgreSQL json, uuid)
                        as_text: remote.is_some_and(|c| c.as_text && c.text_fn.is_none()),
                        text_fn: None,
                        exact_text: remote.is_some_and(|c| c.exact_text),
                    }
                })
                .collect();
            let table = RemoteTable {
                database: Arc::clone(db),
                source,
                schema,
                columns,
            };
            Ok((Arc::new(table), warning))
        }
        None => match db.describe(&source).await {
            Ok(cols) => {
                let schema = postgres::schema_of(&cols);
                let table = RemoteTable {
                    database: Arc::clone(db),
                    source,
                    schema,
                    columns: cols.into_iter().map(|(_, c)| c).collect(),
                };
                Ok((Arc::new(table), None))
            }
            Err(e) if e.kind == SourceErrorKind::Unavailable => {
                Err(TableLoadError::Unavailable(e.to_string()))
            }
            Err(e) => Err(TableLoadError::Config("source", e.to_string())),
        },
    }
}
